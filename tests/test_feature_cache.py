"""The frozen-feature cache: the cached path gives the full model's output, damaged entries are
computed again, keys follow the frozen weights, and SpecAugment on cached features is seeded."""

import json

import numpy as np
import pytest
import torch

from phonex.english_phones import english_vocabulary
from phonex.feature_cache import (
    INDEX_FILE,
    FeatureCache,
    FromCache,
    collate,
    forward_cached,
    mask_features,
    model_key,
)
from phonex.models import tiny_config
from phonex.whisper_ctc import WhisperEncoderForCTC

VOCAB = english_vocabulary()


@pytest.fixture
def model():
    torch.manual_seed(0)
    config = tiny_config("whisper-tiny-test", VOCAB, encoder_layers=3, attn_implementation="eager")
    return WhisperEncoderForCTC(config).eval()


def _waves(seconds=(0.6, 0.9, 0.45), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for s in seconds:
        t = np.arange(int(16000 * s)) / 16000
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t)
        out.append((tone + 0.05 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def _full_logits(model, wave):
    with torch.no_grad():
        return model(torch.from_numpy(wave)[None]).logits[0]


@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 0.0), ("float16", 1e-3)])
def test_cached_path_gives_the_full_models_output(model, tmp_path, dtype, tolerance):
    cache = FeatureCache(model, trainable_blocks=2, root=tmp_path, dtype=dtype)
    assert cache.first_block == 1
    for wave in _waves():
        features = cache.get(wave)
        assert features.dtype == np.dtype(dtype) and isinstance(features, np.memmap)
        with torch.no_grad():
            cached = forward_cached(model, collate([features]), cache.first_block).logits[0]
        full = _full_logits(model, wave)
        assert cached.shape == full.shape
        assert float((cached - full).abs().max()) <= tolerance


def test_padded_batch_matches_each_clip_alone(model, tmp_path):
    cache = FeatureCache(model, trainable_blocks=1, root=tmp_path, dtype="float32")
    waves = _waves()
    labels = [[3, 4, 5], [6, 7], [8, 9, 10, 11]]
    batch = collate(cache.build(waves), labels)
    assert batch.labels[1].tolist() == [6, 7, -100, -100]
    with torch.no_grad():
        out = forward_cached(model, batch, cache.first_block)
    for i, wave in enumerate(waves):
        frames = int(batch.frames[i])
        assert torch.allclose(out.logits[i, :frames], _full_logits(model, wave), atol=1e-4)
    wrapper = FromCache(model, cache.first_block)  # what DDP wraps: the model's own weights
    assert [id(p) for p in wrapper.parameters()] == [id(p) for p in model.parameters()]
    model.train()
    loss = wrapper(batch.hidden, batch.frames, batch.labels).loss
    loss.backward()
    assert torch.isfinite(loss) and model.lm_head.weight.grad is not None


def test_damaged_entries_are_computed_again(model, tmp_path, capsys):
    wave = _waves()[0]
    cache = FeatureCache(model, trainable_blocks=2, root=tmp_path)
    good = np.array(cache.get(wave))
    (checksum,) = cache.entries
    npy = cache.folder / f"{checksum}.npy"
    damages = {
        "bytes changed": lambda: npy.write_bytes(npy.read_bytes()[:-8] + b"\x00" * 8),
        "truncated": lambda: npy.write_bytes(npy.read_bytes()[:100]),
        "missing": npy.unlink,
        "wrong shape": lambda: np.save(npy, good[:-1]),
    }
    for what, damage in damages.items():
        damage()
        fresh = FeatureCache(model, trainable_blocks=2, root=tmp_path)  # a new process
        assert np.array_equal(fresh.get(wave), good), what
        assert np.array_equal(np.load(npy), good), what
    index = cache.folder / INDEX_FILE
    entries = json.loads(index.read_text())
    entries["entries"][checksum]["sha256"] = "0" * 64
    index.write_text(json.dumps(entries))
    before = npy.stat().st_mtime_ns
    assert np.array_equal(FeatureCache(model, 2, root=tmp_path).get(wave), good)
    assert npy.stat().st_mtime_ns != before  # recomputed, not trusted
    index.write_text("{broken")
    fresh = FeatureCache(model, trainable_blocks=2, root=tmp_path)
    assert "computed again" in capsys.readouterr().err and not fresh.entries
    assert np.array_equal(fresh.get(wave), good)
    assert checksum in json.loads(index.read_text())["entries"]


def test_key_follows_the_frozen_weights_only(model):
    key = model_key(model, 2)
    assert model_key(model, 1) != key
    with torch.no_grad():
        model.encoder.layers[2].fc1.weight.add_(1.0)  # a trained block: same frozen prefix
        model.lm_head.weight.add_(1.0)
    assert model_key(model, 2) == key
    with torch.no_grad():
        model.encoder.layers[1].fc1.weight.add_(1e-3)
    assert model_key(model, 2) != key


def test_mask_features_is_seeded_and_stays_inside_each_clip(model, tmp_path):
    cache = FeatureCache(model, trainable_blocks=1, root=tmp_path)
    batch = collate(cache.build(_waves(seconds=(2.0, 1.0))))
    masked = [mask_features(batch, np.random.default_rng(seed), time_prob=0.3, time_length=5,
                            feature_prob=0.2, feature_length=4) for seed in (1, 1, 2)]  # fmt: skip
    assert torch.equal(masked[0].hidden, masked[1].hidden)
    assert not torch.equal(masked[0].hidden, masked[2].hidden)
    zero_frames = (masked[0].hidden == 0).all(-1)
    zero_channels = (masked[0].hidden[:, :50] == 0).all(1)
    assert zero_frames[0].any() and zero_frames[1, : int(batch.frames[1])].any()
    assert zero_channels.any()
    changed = masked[0].hidden != batch.hidden
    assert not changed[1, int(batch.frames[1]) :].any()  # padding left as it was
    assert torch.equal(batch.hidden, collate(cache.build(_waves(seconds=(2.0, 1.0)))).hidden)
