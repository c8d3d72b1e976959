"""Describing voices: pitch and rate on signals with known answers, and the round-trip tools."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from phonex import prosody, roundtrip
from phonex.audio import load_audio, mel_spectrogram
from phonex.config import AudioConfig
from phonex.corpus import read_manifest
from phonex.tts import ENGINES, Voice, load_voice_grid

SR = 16000


def glide(f_start: float, f_end: float, seconds: float = 1.0) -> np.ndarray:
    """A harmonic-rich tone whose pitch glides exponentially from f_start to f_end."""
    t = np.arange(int(SR * seconds)) / SR
    f0 = f_start * (f_end / f_start) ** (t / seconds)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


def test_pitch_and_its_range_in_semitones():
    flat = prosody.describe(glide(200, 200), SR, "a b | c d")
    assert flat["f0_median_hz"] == pytest.approx(200, rel=0.02)
    assert flat["f0_range_semitones"] < 0.3 and flat["voiced_share"] > 0.8
    assert flat["phones_per_s"] == pytest.approx(4.0, rel=0.05)  # "|" is not a phone
    octave = prosody.describe(glide(110, 220), SR)
    assert 9 < octave["f0_range_semitones"] < 12  # 5-95 % of a one-octave glide: 10.8
    assert np.isnan(octave["phones_per_s"])  # no phones given


def test_noise_and_silence_have_no_pitch():
    noise = np.random.default_rng(0).normal(scale=0.1, size=SR).astype(np.float32)
    described = prosody.describe(noise, SR, "a")
    assert np.isnan(described["f0_median_hz"]) and described["voiced_share"] < 0.1
    padded = np.r_[np.zeros(SR // 2), glide(150, 150, 0.5), np.zeros(SR // 2)].astype(np.float32)
    assert prosody.describe(padded, SR)["speech_s"] == pytest.approx(0.5, abs=0.06)


def test_every_engine_is_reported_with_a_reason_when_absent():
    report = roundtrip.engine_report()
    assert list(report.engine) == list(ENGINES)
    assert all(why for ok, why in zip(report.available, report.why) if not ok)


def test_griffin_lim_round_trip_writes_clips_once(tiny_corpus, tmp_path):
    _, rows = tiny_corpus
    rows = [r for r in rows if r.augmentation == "none"][:2]
    vocoded = roundtrip.vocode_rows(rows, tmp_path, n_iter=8, progress=False)
    for row, new in zip(rows, vocoded):
        wave, original = load_audio(new.audio), load_audio(row.audio)
        assert new.augmentation == "griffin-lim" and new.id == row.id and not new.alignment
        assert abs(len(wave) - len(original)) < 0.02 * SR  # hop rounding at 22.05 kHz
        n = min(len(wave), len(original))
        mels = [mel_spectrogram(x[:n], AudioConfig()).ravel() for x in (wave, original)]
        assert np.corrcoef(*mels)[0, 1] > 0.8  # the same sounds, phases aside
    stamp = [p.stat().st_mtime_ns for p in tmp_path.rglob("*.wav")]
    roundtrip.vocode_rows(rows, tmp_path, progress=False)
    assert [p.stat().st_mtime_ns for p in tmp_path.rglob("*.wav")] == stamp


def test_summarize_gives_top_k_and_phone_error_rate_per_group(tiny_corpus):
    _, rows = tiny_corpus
    rows = [r for r in rows if r.augmentation == "none"][:4]
    results = pd.DataFrame({
        "id": [r.id for r in rows], "engine": ["a", "a", "b", "b"],
        "rank": [1, 0, 2, 1], "phones": [rows[0].phones, "", rows[2].phones, rows[3].phones],
    })  # fmt: skip
    summary = roundtrip.summarize(results, rows, ["engine"]).set_index("engine")
    assert summary.loc["a", "top1"] == 0.5 and summary.loc["b", "top1"] == 0.5
    assert summary.loc["b", "top2"] == 1.0 and summary.loc["b", "per"] == 0.0
    assert summary.loc["a", "per"] == pytest.approx(0.5, abs=0.2)  # one clip all deleted


def test_real_time_factor_of_espeak():
    rtf = roundtrip.real_time_factor(Voice("espeak", "en-us"), ["Zyrtec", "amoxicillin"])
    assert rtf["texts"] == 2 and rtf["audio_s"] > 0.5 and 0 < rtf["rtf"] < 1


def test_split_for_engines_trains_on_some_engines_and_tests_on_the_rest(tiny_corpus):
    _, rows = tiny_corpus
    rows = [replace(r, engine="flite") if "nyc" in r.speaker else r for r in rows]
    split = roundtrip.split_for_engines(rows, ["espeak"], dev=0.3)
    assert {r.split for r in split if r.engine == "flite"} == {"test"}
    heard = [r for r in split if r.engine == "espeak"]
    assert {r.split for r in heard} == {"train", "dev"} and len(split) == len(rows)
    names = {split_: {r.text for r in heard if r.split == split_} for split_ in ("train", "dev")}
    assert not names["train"] & names["dev"]  # dev holds out names, to choose the checkpoint
    with pytest.raises(ValueError, match="no clips of"):
        roundtrip.split_for_engines(rows, ["piper"])


def test_train_on_engines_gives_a_model_the_recognizer_loads(tiny_corpus, train_config, tmp_path):
    from phonex.recognize import Recognizer

    _, rows = tiny_corpus
    rows = [replace(r, engine="flite") if "nyc" in r.speaker else r for r in rows]
    best = roundtrip.train_on_engines(rows, ["espeak"], tmp_path / "run", train_config(),
                                      progress=False)  # fmt: skip
    assert (tmp_path / "run" / "manifest.jsonl").is_file()
    trained = [r for r in rows if r.engine == "espeak"]
    recognizer = Recognizer(best, sorted({r.text for r in trained}))
    # the head knows every phone it was trained on: names the training clips say are spellable
    train_names = {r.text for r in read_manifest(tmp_path / "run" / "manifest.jsonl")
                   if r.split == "train"}  # fmt: skip
    assert train_names <= set(recognizer.words)


def test_summarize_of_nothing_recognised_has_the_columns_and_no_rows():
    summary = roundtrip.summarize(pd.DataFrame(), [], ["engine", "condition"])
    assert summary.empty
    assert {"engine", "condition", "top1", "top5", "mrr", "clips", "per"} <= set(summary.columns)


def test_usable_engines_names_each_absent_engine_with_why():
    report = pd.DataFrame({"engine": ["espeak", "piper", "flite"], "available": [True, False, True],
                           "why": ["", "install the extra", ""]})  # fmt: skip
    used, absent = roundtrip.usable_engines(["flite", "piper", "espeak", "festivalx"], report)
    assert used == ["flite", "espeak"]
    assert absent["piper"] == "install the extra" and "unknown engine" in absent["festivalx"]


TWO_ENGINES = ["espeak-ng + piper", "espeak-ng + flite"]


@pytest.mark.parametrize(
    ("engines", "from_scratch", "kept", "skipped"),
    [
        (["espeak"], False, [], ["espeak-ng only"]),
        (["espeak", "piper"], False, ["espeak-ng only"], ["espeak-ng + piper"]),
        (["espeak", "piper", "flite"], False, ["espeak-ng only", *TWO_ENGINES], []),
        (["espeak", "piper"], True, ["espeak only", "piper only"], []),
        (["espeak"], True, [], ["espeak only"]),
    ],
)
def test_unheard_configurations_keep_only_sets_with_an_engine_left_to_test(
    engines, from_scratch, kept, skipped
):
    configs, why = roundtrip.unheard_configurations(engines, from_scratch)
    assert list(configs) == kept and list(why) == skipped
    assert all(set(engines) - set(trained) for trained in configs.values())
    assert all("no unheard engine" in reason for reason in why.values())


def test_every_engine_but_one_needs_three_others():
    configs, _ = roundtrip.unheard_configurations(["espeak", "piper", "flite", "festival"])
    assert configs["all but piper"] == ["espeak", "flite", "festival"]
    assert len(configs) == 1 + 3 + 3


def test_unheard_engine_table_tests_each_set_on_the_engines_it_did_not_hear(
    tiny_corpus, train_config, tmp_path
):
    _, rows = tiny_corpus
    rows = [r for r in rows if r.augmentation == "none"]
    rows = [replace(r, engine="flite") if "nyc" in r.speaker else r for r in rows]
    words = sorted({r.text for r in rows})
    cfg = train_config()
    start = roundtrip.train_on_engines(rows, ["espeak"], tmp_path / "start", cfg, progress=False)
    cfg = roundtrip.engine_training_config(cfg, steps=2, start_from=start)
    assert cfg.model.name == str(start) and cfg.train.max_steps == 2
    configs, _ = roundtrip.unheard_configurations(["espeak", "flite"])
    table = roundtrip.unheard_engine_table(rows, configs, words, tmp_path / "runs", cfg,
                                           heard=["espeak"], progress=False)  # fmt: skip
    assert list(table.trained_on) == ["espeak-ng only"] and list(table.engine) == ["flite"]
    assert table.clips.iloc[0] == sum(r.engine == "flite" for r in rows)
    assert not (tmp_path / "runs").exists()  # the starting model is used as it is
    nothing = roundtrip.unheard_engine_table(rows, {}, words, tmp_path / "runs", cfg)
    assert nothing.empty and "trained_on" in nothing.columns


def test_engine_voice_grid_leaves_out_voices_an_installed_engine_lacks(tmp_path, monkeypatch):
    flite = ENGINES["flite"]
    monkeypatch.setattr(type(flite), "available", lambda self: (True, ""))
    monkeypatch.setattr(type(flite), "voices", staticmethod(lambda: ("slt", "rms")))
    path, missing = roundtrip.engine_voice_grid(["espeak", "flite"], tmp_path / "grid.yaml")
    assert set(missing) == {"flite:awb", "flite:kal16"}
    assert all("without voice" in why for why in missing.values())
    grid = load_voice_grid("engines", path)
    assert {v.name for v in grid.voices if v.engine == "flite"} == {"slt", "rms"}
    assert {v.engine for v in grid.voices} == {"espeak", "flite"}
    assert set(grid.test_speakers) == {v.speaker for v in grid.voices}  # all test voices still
