"""Probes on real speech: TIMIT frame labels, speaker folds, pooled folds, the peak, log-mel."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from phonex import probe
from phonex import probe_curves as pc
from phonex import timit_frames as tf
from phonex.config import SHARED_DATA_DIR
from phonex.intervals import Interval
from phonex.phonesets import TIMIT39
from phonex.timit import Unit


def test_units_sharing_outer_times_divide_their_span_equally():
    units = [Unit("sil", 0.0, 0.1), Unit("iy", 0.1, None), Unit("ah", None, 0.4),
             Unit("n", 0.4, 0.5)]  # fmt: skip
    got = [(i.label, round(i.start, 3), round(i.end, 3)) for i in tf.unit_intervals(units)]
    assert got == [("sil", 0.0, 0.1), ("iy", 0.1, 0.25), ("ah", 0.25, 0.4), ("n", 0.4, 0.5)]


def test_frames_under_silence_carry_no_label_and_contexts_name_silence():
    intervals = [Interval("sil", 0.0, 0.04), Interval("b", 0.04, 0.08), Interval("iy", 0.08, 0.12)]
    phones, contexts = tf.clip_labels(intervals, frames=7, frame_seconds=0.02)
    assert phones.tolist() == ["", "", "b", "b", "iy", "iy", ""]
    assert contexts[2] == "sil-b+iy" and contexts[0] == ""


def _timit_tree(root: Path) -> Path:
    """Four speakers (two women, two men), each an SA1 and an SX sentence of 0.5 s."""
    for speaker in ("dr1-fabc0", "dr2-mdef0", "dr3-fghi0", "dr4-mjkl0"):
        folder = root / speaker
        folder.mkdir(parents=True)
        sx9 = "0 1600 h#\n1600 2400 bcl\n2400 3200 b\n3200 6400 ix\n6400 8000 h#\n"
        for name, phn in (("sa1", "0 1600 h#\n1600 4000 sh\n4000 6400 iy\n6400 8000 h#\n"),
                          ("sx9", sx9)):  # fmt: skip
            wave = np.random.default_rng(0).normal(0, 0.05, 8000).astype(np.float32)
            sf.write(folder / f"{name}.wav", wave, 16000)
            (folder / f"{name}.phn").write_text(phn)
            (folder / f"{name}.txt").write_text("0 8000 Bee.\n")
    return root


def test_timit_clips_fold_merge_and_leave_the_shared_sentences_out(tmp_path):
    clips = tf.timit_clips(_timit_tree(tmp_path))
    assert [r.id for r in clips.rows] == ["dr1-fabc0_sx9", "dr2-mdef0_sx9", "dr3-fghi0_sx9",
                                          "dr4-mjkl0_sx9"]  # fmt: skip
    # bcl + b is one stop "b" over both, ix folds to ih, the silences fill the edges
    assert clips.intervals[0] == [Interval("sil", 0.0, 0.1), Interval("b", 0.1, 0.2),
                                  Interval("ih", 0.2, 0.4), Interval("sil", 0.4, 0.5)]  # fmt: skip
    assert len(tf.timit_clips(tmp_path, keep_sa=True).rows) == 8


def test_speaker_folds_test_every_speaker_once_one_woman_and_one_man_each():
    speakers = [s for s in ("dr1-fa0", "dr2-fb0", "dr3-mc0", "dr4-md0") for _ in range(3)]
    folds = tf.speaker_folds(speakers, folds=2, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(12))
    for fold in folds:
        names = {speakers[i] for i in fold}
        assert len(names) == 2 and {tf._sex(n) for n in names} == {"f", "m"}
        assert all(speakers[i] in names for i in fold)  # whole speakers, never split
    with pytest.raises(ValueError, match="5 folds of 4 speakers"):
        tf.speaker_folds(speakers, folds=5)


def _states(seed: int = 0):
    """8 clips of 50 frames; layer 1 encodes the phone, layer 0 is noise; 1 frame in 5 silent."""
    rng = np.random.default_rng(seed)
    phones = rng.choice(list("aeiptk"), size=400).astype(object)
    phones[::5] = probe.NO_LABEL
    codes = np.eye(6)[["aeiptk".index(p) if p else 0 for p in phones]]
    layers = [rng.normal(size=(400, 6)), codes * 3 + rng.normal(size=(400, 6)) * 0.3]
    states = probe.HiddenStates([x.astype(np.float16) for x in layers], np.arange(0, 401, 50),
                                [str(i) for i in range(8)], 0.02)  # fmt: skip
    contexts = np.array([f"{p}@{i % 7}" if p else "" for i, p in enumerate(phones)], dtype=object)
    return states, probe.FrameLabels(phones, contexts, np.repeat(np.arange(8), 50))


def test_pooled_folds_test_every_clip_once_and_find_the_phone_layer():
    states, labels = _states()
    folds = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5]), np.array([6, 7])]
    results = pc.probe_folds(states, labels, folds, max_iter=30)
    assert sorted(set(results.clips)) == list(range(8))
    assert len(results.truth) == np.sum(labels.phones != probe.NO_LABEL) == 320
    table = results.table.set_index(["task", "layer"])
    assert table.loc[("phone", 1), "accuracy"] > 0.95
    assert table.loc[("phone", 0), "accuracy"] < 0.4
    assert (table.folds == 4).all() and (table.test_frames == 320).all()
    for _, row in results.table.iterrows():
        assert row.ci_low <= row.accuracy <= row.ci_high
    assert results.best_layer == 1
    peak = pc.peak_layer(results)
    assert peak["layer"] == peak["layer_low"] == peak["layer_high"] == 1 and peak["share"] == 1
    best = pc.best_layers({"m": results}, "toy").iloc[0]
    assert (best.layer, best.layers) == (1, 2) and best.accuracy == table.loc[("phone", 1),
                                                                             "accuracy"]  # fmt: skip


def test_peak_interval_spans_layers_that_tie():
    clips = np.repeat(np.arange(20), 10)
    rng = np.random.default_rng(0)
    hits = {(k, "phone"): rng.random(200) < 0.6 for k in range(3)}  # three equally good layers
    results = probe.ProbeResults(None, np.array([]), {}, hits, clips)
    peak = pc.peak_layer(results)
    assert peak["layer_low"] < peak["layer_high"] and peak["share"] < 0.9


def test_a_subset_reads_only_its_clips_frames():
    states, labels = _states()
    part, picked = pc.subset(states, labels, np.array([5, 2]))
    assert part.ids == ["5", "2"] and part.offsets.tolist() == [0, 50, 100]
    np.testing.assert_array_equal(part.layers[1][np.arange(50)], states.clip(5, 1))
    assert set(picked.clips) == {2, 5} and part.layers[0].shape == (100, 6)


def test_log_mel_baseline_averages_pairs_of_whisper_frames_to_the_encoder_rate(tmp_path):
    from phonex.models import load_model
    from phonex.phonemes import Vocabulary

    whisper = load_model("whisper-tiny-test", Vocabulary.build(["a b"]))
    wave = np.random.default_rng(0).normal(0, 0.1, 16000 + 480).astype(np.float32)
    sf.write(tmp_path / "x.wav", wave, 16000)
    row = type("Row", (), {"id": "x", "audio": str(tmp_path / "x.wav")})()
    states = pc.log_mel_states(pc.LogMel(whisper), [row])
    with torch.no_grad():
        encoder = whisper.model(torch.from_numpy(wave)[None], output_hidden_states=True)
        mel = whisper.model.log_mel(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))[0]
    frames = encoder.hidden_states[0].shape[1]
    assert len(states.layers) == 1 and states.layers[0].shape == (frames, 80)
    np.testing.assert_allclose(states.clip(0, 0)[3], mel[:, 6:8].mean(1).numpy(), atol=2e-3)
    assert states.frame_seconds == pytest.approx(0.02)


def test_labels_and_states_of_other_clips_are_refused():
    states, _ = _states()
    clips = tf.LabelledClips([type("Row", (), {"id": "other"})()], [[]], "test")
    with pytest.raises(ValueError, match="different clips"):
        tf.label_clips(states, clips)


def test_forced_alignment_labels_fold_to_timit_39_and_failures_are_reported(tiny_corpus):
    from dataclasses import replace

    from phonex.models import load_model
    from phonex.phonemes import Vocabulary

    rows = [r for r in tiny_corpus[1] if r.augmentation == "none"][:3]
    loaded = load_model("tiny-test", Vocabulary.build(r.phones for r in rows))
    broken = replace(rows[0], id="broken", audio=str(Path(rows[0].audio).with_name("no.wav")))
    clips, skipped = tf.aligned_clips(loaded, [*rows, broken], name="tiny")
    assert [r.id for r in clips.rows] == [r.id for r in rows] and list(skipped) == ["broken"]
    assert clips.source == "forced alignment by tiny"
    for intervals, row in zip(clips.intervals, clips.rows):
        assert {i.label for i in intervals} <= set(TIMIT39)
        assert intervals[0].start == 0 and intervals[-1].end == pytest.approx(row.duration, 0.01)


def test_curves_of_a_tiny_model_and_the_log_mel_baseline_on_espeak_clips(tiny_corpus, tmp_path):
    from phonex.models import load_model, random_init
    from phonex.phonemes import Vocabulary

    rows = [r for r in tiny_corpus[1] if r.augmentation == "none"]
    whisper = load_model("whisper-tiny-test", Vocabulary.build(r.phones for r in rows))
    clips, _ = tf.aligned_clips(whisper, rows[:8])
    folds = tf.speaker_folds([r.speaker for r in clips.rows], folds=2)
    models = {"whisper": whisper, "random": random_init(whisper), "log-mel": pc.LogMel(whisper)}
    results = pc.curves(models, clips, folds, tmp_path, max_iter=5)
    table = pc.curve_table(results)
    assert list(table.model.unique()) == list(models)
    assert sorted(table[table.model == "whisper"].layer.unique()) == [0, 1, 2]
    assert table[table.model == "log-mel"].layer.unique().tolist() == [0]
    fig = pc.plot_probe_curves(table, "tiny")
    assert len(fig.axes[0].lines) >= 5


def test_real_timit_frames_are_labelled_in_39_classes():
    folder = SHARED_DATA_DIR / "timit-sample-dev"
    if not folder.is_dir():
        pytest.skip(f"shared corpus not present: {folder}")
    clips = tf.timit_clips(folder)
    assert len(clips.rows) == 64 and len(set(clips.speakers)) == 8
    labels = {i.label for intervals in clips.intervals for i in intervals}
    assert labels <= set(TIMIT39) and len(labels) > 35
    folds = tf.speaker_folds(clips.speakers, 4)
    assert all(len({clips.speakers[i] for i in f}) == 2 for f in folds)


def test_accuracy_by_class_reads_timit_39_labels_and_espeak_phones():
    truth = np.array(["aa", "aa", "b", "s", "æ", "k"], dtype=object)
    said = np.array(["aa", "ae", "b", "z", "æ", "k"], dtype=object)
    results = probe.ProbeResults(None, truth, {0: said}, {}, np.zeros(6, int))
    by_class = probe.accuracy_by_class(results, 0)
    assert by_class.frames.to_dict() == {"fricative": 1, "stop": 2, "vowel": 3}
    assert by_class.accuracy.to_dict() == {"fricative": 0.0, "stop": 1.0, "vowel": 2 / 3}


def test_frame_agreement_counts_phone_frames_of_the_reference_only():
    row = type("Row", (), {"id": "a"})()
    truth = [Interval("sil", 0.0, 0.04), Interval("b", 0.04, 0.08), Interval("iy", 0.08, 0.16)]
    late = [Interval("sil", 0.0, 0.06), Interval("b", 0.06, 0.10), Interval("iy", 0.10, 0.16)]
    reference = tf.LabelledClips([row], [truth], "hand")
    # frames 2-7 are phones in the reference; the late labelling calls frame 2 silence and
    # frame 4 b: 4 of 6 agree
    got = tf.frame_agreement(reference, tf.LabelledClips([row], [late], "aligner"))
    assert got == {"agreement": 4 / 6, "frames": 6, "clips": 1}
    assert tf.frame_agreement(reference, tf.LabelledClips([], [], "none"))["clips"] == 0
