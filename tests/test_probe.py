"""Layer-wise probes: cached hidden states, frame labels, probes against known answers."""

import numpy as np
import pytest
import torch

from phonex import probe
from phonex.intervals import Interval
from phonex.models import load_model, random_init
from phonex.phonemes import Vocabulary


@pytest.fixture(scope="module")
def clean_rows(tiny_corpus):
    _, rows = tiny_corpus
    return [r for r in rows if r.augmentation == "none"]


@pytest.fixture(scope="module")
def loaded(clean_rows):
    return load_model("tiny-test", Vocabulary.build(r.phones for r in clean_rows))


def test_frame_labels_take_the_phone_under_each_frame_centre():
    intervals = [Interval("k", 0.05, 0.10), Interval("æ", 0.10, 0.19), Interval("t", 0.19, 0.25)]
    phones, contexts = probe.frame_labels(intervals, frames=14, frame_seconds=0.02)
    # centres 0.01, 0.03, 0.05, 0.07, 0.09, 0.11, ..., 0.27
    assert phones.tolist() == ["", "", "k", "k", "k", "æ", "æ", "æ", "æ", "t", "t", "t", "", ""]
    assert contexts[2] == "#-k+æ" and contexts[5] == "k-æ+t" and contexts[9] == "æ-t+#"


def test_hidden_states_are_every_layer_of_the_model_cached_and_reread(loaded, clean_rows, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    from phonex.audio import load_audio
    from phonex.data import normalize_wave

    rows = clean_rows[:3]
    states = probe.extract_hidden_states(loaded, rows, tmp_path, progress=False)
    assert len(states.layers) == loaded.model.config.num_hidden_layers + 1
    assert isinstance(states.layers[0], np.memmap) and states.ids == [r.id for r in rows]
    wave = load_audio(rows[1].audio, 16000)
    loaded.model.eval()  # as extraction runs it (no dropout)
    with torch.no_grad():
        direct = loaded.model(torch.from_numpy(normalize_wave(wave))[None],
                              output_hidden_states=True).hidden_states  # fmt: skip
    for layer, expected in enumerate(direct):
        np.testing.assert_allclose(
            states.clip(1, layer), expected[0].numpy(), rtol=1e-2, atol=1e-2
        )
    assert states.frames(1) == direct[0].shape[1] and states.frame_seconds == pytest.approx(0.02)

    def no_model(*_, **__):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(probe, "clip_hidden_states", no_model)
    again = probe.extract_hidden_states(loaded, rows, tmp_path, progress=False)
    np.testing.assert_array_equal(again.layers[2], states.layers[2])
    with pytest.raises(AssertionError, match="cache"):  # other weights are another cache entry
        probe.extract_hidden_states(random_init(loaded, seed=1), rows, tmp_path, progress=False)


def test_a_run_killed_midway_leaves_no_cache_entry(loaded, clean_rows, tmp_path, monkeypatch):
    calls = []
    real = probe.clip_hidden_states

    def dies_on_the_second_clip(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(probe, "clip_hidden_states", dies_on_the_second_clip)
    with pytest.raises(KeyboardInterrupt):
        probe.extract_hidden_states(loaded, clean_rows[:3], tmp_path, progress=False)
    assert not list(tmp_path.glob("*/meta.json"))
    monkeypatch.setattr(probe, "clip_hidden_states", real)
    states = probe.extract_hidden_states(loaded, clean_rows[:3], tmp_path, progress=False)
    assert len(states.ids) == 3 and len(list(tmp_path.glob("*/meta.json"))) == 1


def synthetic_states(phones: np.ndarray, clips: np.ndarray, seed: int):
    """Layer 0: noise; layer 1: the phone's one-hot code plus a little noise."""
    rng = np.random.default_rng(seed)
    classes = sorted(set(phones))
    onehot = np.eye(len(classes))[[classes.index(p) for p in phones]]
    layers = [rng.normal(size=onehot.shape), onehot * 3 + rng.normal(size=onehot.shape) * 0.3]
    offsets = np.r_[0, np.cumsum(np.bincount(clips))]
    states = probe.HiddenStates([x.astype(np.float16) for x in layers], offsets,
                                [str(i) for i in range(len(offsets) - 1)], 0.02)  # fmt: skip
    contexts = np.array(
        [f"{phones[max(i - 1, 0)]}-{p}" for i, p in enumerate(phones)], dtype=object
    )
    return states, probe.FrameLabels(phones.astype(object), contexts, clips)


def test_a_probe_finds_the_layer_that_encodes_phones():
    rng = np.random.default_rng(0)
    phones = rng.choice(list("aeiouptk"), size=1600, p=[0.3] + [0.1] * 7)
    clips = np.repeat(np.arange(40), 40)
    train, train_labels = synthetic_states(phones[:800], clips[:800], seed=1)
    test, test_labels = synthetic_states(phones[800:], clips[800:] - 20, seed=2)
    results = probe.probe_layers(train, train_labels, test, test_labels, progress=False)
    table = results.table.set_index(["task", "layer"])
    assert table.loc[("phone", 1), "accuracy"] > 0.97
    assert table.loc[("phone", 0), "accuracy"] < table.loc[("phone", 0), "majority"] + 0.1
    assert table.loc[("phone", 1), "majority"] == pytest.approx(np.mean(phones[800:] == "a"))
    for _, row in results.table.iterrows():
        assert row.ci_low <= row.accuracy <= row.ci_high
    assert results.best_layer == 1
    assert table.loc[("phone", 1), "selectivity"] > 0.3  # contexts are memorised far worse
    by_class = probe.accuracy_by_class(results, 1)
    assert set(by_class.index) == {"vowel", "stop"} and by_class.frames.sum() == 800


def test_control_task_gives_each_context_one_random_training_label():
    train = probe.FrameLabels(np.array(["a", "a", "b", ""], dtype=object),
                              np.array(["#-a+a", "a-a+b", "a-b+#", ""], dtype=object),
                              np.zeros(4, int))  # fmt: skip
    test = probe.FrameLabels(np.array(["c"], dtype=object), np.array(["#-c+#"], dtype=object),
                             np.zeros(1, int))  # fmt: skip
    control = probe.control_task(train, test, seed=3)
    assert set(control) == {"#-a+a", "a-a+b", "a-b+#", "#-c+#"}
    assert set(control.values()) <= {"a", "b"}
    assert control == probe.control_task(train, test, seed=3)


def test_bootstrap_interval_resamples_clips():
    correct = np.r_[np.ones(50), np.zeros(50)]
    assert probe.bootstrap_ci(np.ones(100), np.repeat(np.arange(10), 10)) == (1.0, 1.0)
    low, high = probe.bootstrap_ci(correct, np.repeat(np.arange(10), 10))
    assert low < 0.5 < high and high - low > 0.3  # 10 clips, each all right or all wrong
    low, high = probe.bootstrap_ci(correct, np.arange(100) % 10)  # every clip half right
    assert low == high == 0.5


def test_probe_a_tiny_model_on_espeak_clips_with_disjoint_voices(loaded, clean_rows, tmp_path):
    train_rows = [r for r in clean_rows if r.split == "train"][:6]
    test_rows = [r for r in clean_rows if r.split == "test"][:3]
    assert not {r.speaker for r in train_rows} & {r.speaker for r in test_rows}
    train = probe.extract_hidden_states(loaded, train_rows, tmp_path, progress=False)
    test = probe.extract_hidden_states(loaded, test_rows, tmp_path, progress=False)
    train_labels = probe.label_frames(train, train_rows)
    test_labels = probe.label_frames(test, test_rows)
    assert len(train_labels.phones) == train.offsets[-1]
    assert set(train_labels.phones) - {""} <= {p for r in train_rows for p in r.phones.split()}
    results = probe.probe_layers(
        train, train_labels, test, test_labels, max_iter=10, progress=False
    )
    assert sorted(results.table.layer.unique()) == list(range(len(train.layers)))
    assert set(results.table.task) == {"phone", "control"}


def test_speech2text_encoder_layers_are_probed_too(tmp_path):
    from transformers import (
        Speech2TextConfig,
        Speech2TextFeatureExtractor,
        Speech2TextForConditionalGeneration,
    )

    config = Speech2TextConfig(
        d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, conv_channels=16,
        vocab_size=10, input_feat_per_channel=16, max_source_positions=200,
    )  # fmt: skip
    model = Speech2TextForConditionalGeneration(config)
    features = Speech2TextFeatureExtractor(feature_size=16, num_mel_bins=16)
    states = probe.clip_hidden_states(model, np.random.default_rng(0).normal(size=16000) * 0.1,
                                      features)  # fmt: skip
    assert len(states) == 3 and states[0].shape[1] == 16
    assert states[0].shape[0] == pytest.approx(1 / 0.04, abs=2)  # 40 ms frames after subsampling
    with pytest.raises(ValueError, match="processor"):
        probe.clip_hidden_states(model, np.zeros(16000, np.float32))


def test_a_model_without_hidden_states_is_named():
    with pytest.raises(ValueError, match="Linear has no hidden states"):
        probe.encoder_of(torch.nn.Linear(2, 2))


def test_clips_without_a_reference_are_force_aligned_or_refused(loaded, clean_rows):
    from dataclasses import replace

    row = replace(clean_rows[0], alignment="")
    with pytest.raises(ValueError, match="no reference alignment"):
        probe.reference_phones(row)
    intervals = probe.reference_phones(row, loaded)  # untrained, but a valid path all the same
    assert [i.label for i in intervals] == row.phones.replace("|", " ").split()
