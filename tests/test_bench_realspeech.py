"""The real-speech benchmark's scoring: TIMIT PER per label set, targets, absent engines."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_realspeech
from baselines import System

from phonex.corpus import Utterance

# TIMIT-61 labels of "she had" (closures and silences included) and the same phones two ways
REFERENCE = ["h#", "sh", "iy", "hv", "ae", "dcl", "d", "h#"]
AS_TIMIT39 = ["sh", "iy", "hh", "ae", "d"]
AS_ESPEAK = ["ʃ", "iː", "h", "æ", "d"]


class Stub(System):
    """A system that hears the same phones in every clip, in one label set."""

    def __init__(self, phones: list[str], labels: str):
        self.heard, self.labels = phones, labels

    def raw_phones(self, wave):
        return list(self.heard), self.labels


def _timit_rows(n: int) -> list[tuple[Utterance, list[str]]]:
    row = Utterance(id="u", audio="u.wav", text="she had", phones="", speaker="s", engine="human",
                    augmentation="none", split="", duration=1.0, sample_rate=16000,
                    checksum="")  # fmt: skip
    return [(row, REFERENCE)] * n


def test_timit_row_scores_each_system_in_its_own_label_set(monkeypatch):
    from bench_baselines import timit_row

    monkeypatch.setattr("bench_baselines.load_audio", lambda path, rate: np.zeros(rate))
    systems = {
        "exact-timit": Stub(AS_TIMIT39, "timit"),
        "exact-espeak": Stub(AS_ESPEAK, "espeak"),
        "one-wrong": Stub(["s", *AS_ESPEAK[1:]], "espeak"),
        "unfoldable": Stub(["ʃ", "iː", "ʕ", "h", "æ", "d"], "espeak"),  # ʕ: not English
    }
    row = timit_row(systems, "timit", _timit_rows(2))
    assert row["values"]["exact-timit"] == 0.0
    assert row["values"]["exact-espeak"] == 0.0
    assert row["values"]["one-wrong"] == pytest.approx(1 / 5)
    assert row["values"]["unfoldable"] == 0.0  # the phone the protocol cannot fold is dropped
    assert row["metric"] == "PER" and row["higher_is_better"] is False and row["clips"] == 2


def test_timit_row_refuses_a_system_that_mixes_label_sets(monkeypatch):
    from bench_baselines import timit_row

    class Mixed(Stub):
        calls = 0

        def raw_phones(self, wave):
            Mixed.calls += 1
            return AS_TIMIT39, ("timit" if Mixed.calls % 2 else "espeak")

    monkeypatch.setattr("bench_baselines.load_audio", lambda path, rate: np.zeros(rate))
    with pytest.raises(ValueError, match="several label sets"):
        timit_row({"mixed": Mixed([], "")}, "timit", _timit_rows(3))


def test_espeak_ceiling_scores_espeak_ngs_reading_of_the_prompt_against_the_hand_labels():
    # espeak-ng reads "she had" as ʃ iː | h æ d: the hand labels' phones once folded
    ceiling = bench_realspeech.espeak_ceiling(_timit_rows(1), "en-us")
    assert ceiling["per"] == 0.0 and ceiling["reference_phones"] == 5


def test_targets_say_met_missed_or_not_measured():
    result = {
        "timit": {"per": 0.25},
        "speechocean762": {"per": 0.2},
        "unheard_engines": {"piper": {"clean": {"top1": 0.96}, "10 dB": {"top1": 0.5}}},
    }
    targets = bench_realspeech.targets(result)
    assert targets["timit_per"] == {"target": 0.20, "value": 0.25, "met": False}
    assert targets["speechocean_per"]["met"] is True
    assert targets["fsdd_top1"] == {"target": 0.97, "value": None, "met": None}
    assert targets["drugs_clean_top1 piper"]["met"] is True  # higher is better for top-1
    assert targets["drugs_10db_top1 piper"]["met"] is False
    assert targets["drugs_clean_top1 flite"]["met"] is None


def test_an_engine_that_is_not_installed_is_absent_with_its_reason(monkeypatch):
    class Missing:
        def available(self):
            return False, "install flite (apt-get install flite)"

    monkeypatch.setattr(bench_realspeech, "get_engine", lambda name: Missing())
    rows, why = bench_realspeech.engine_rows("flite", 3)
    assert rows == [] and why == "install flite (apt-get install flite)"
