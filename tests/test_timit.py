"""TIMIT as the reference: protocol units (fold, merge closures, join silences) and its labels."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from phonex.config import SHARED_DATA_DIR
from phonex.corpus import CorpusError
from phonex.intervals import Interval
from phonex.metrics import score_alignment, summarize_alignments
from phonex.phonesets import TIMIT39, TIMIT61, UnknownPhoneError
from phonex.timit import SILENCE, Unit, protocol_phones, protocol_units, read_timit_reference


def _tier(*phones):
    return [Interval(label, start, end) for label, start, end in phones]


def _labels(units):
    return [(u.label, u.start, u.end) for u in units]


def test_closures_merge_with_their_own_release_only():
    # "tcl ch" is one ch; "kcl t" (act) keeps both stops; "tcl q" is a glottalised t
    units = protocol_units(_tier(("tcl", 0, 1), ("ch", 1, 2), ("kcl", 2, 3), ("t", 3, 4),
                                 ("tcl", 4, 5), ("q", 5, 6), ("ix", 6, 7)))  # fmt: skip
    assert _labels(units) == [("ch", 0, 2), ("k", 2, 3), ("t", 3, 4), ("t", 4, 6), ("ih", 6, 7)]


def test_reduced_closures_merge_into_a_stop_and_are_silence_alone():
    units = protocol_units(_tier(("sil", 0, 1), ("cl", 1, 2), ("t", 2, 3), ("vcl", 3, 4),
                                 ("sil", 4, 5), ("AO1", 5, 6)))  # fmt: skip
    assert _labels(units) == [("sil", 0, 1), ("t", 1, 3), ("sil", 3, 5), ("aa", 5, 6)]


def test_glottal_stop_joins_the_vowel_after_it_or_the_phone_before_a_pause():
    units = protocol_units(_tier(("n", 0, 1), ("q", 1, 2), ("oy", 2, 3), ("ux", 3, 4),
                                 ("q", 4, 5), ("pau", 5, 6), ("h#", 6, 7)))  # fmt: skip
    assert _labels(units) == [("n", 0, 1), ("oy", 1, 3), ("uw", 3, 5), ("sil", 5, 7)]


def test_espeak_units_split_into_phones_with_an_unknown_inner_boundary():
    units = protocol_units(_tier(("ɪ", 0.0, 0.1), ("ʔ", 0.1, 0.15), ("iə", 0.15, 0.3),
                                 ("|", 0.3, 0.3), ("", 0.3, 0.4)), labels="espeak")  # fmt: skip
    assert units == [Unit("ih", 0.0, 0.1), Unit("iy", 0.1, None), Unit("ah", None, 0.3),
                     Unit(SILENCE, 0.3, 0.4)]  # fmt: skip
    assert protocol_phones(["ð", "ə", "|", "k", "æ", "t"], "espeak") == ["dh", "ah", "k", "ae",
                                                                         "t"]  # fmt: skip


def test_span_fills_the_edges_with_silence_and_bad_labels_are_named():
    units = protocol_units(_tier(("s", 0.2, 0.3)), span=(0.0, 0.5))
    assert _labels(units) == [("sil", 0.0, 0.2), ("s", 0.2, 0.3), ("sil", 0.3, 0.5)]
    with pytest.raises(UnknownPhoneError, match="'xx'"):
        protocol_units(_tier(("xx", 0, 1)))
    with pytest.raises(ValueError, match="label set"):
        protocol_units(_tier(("s", 0, 1)), labels="ipa")


def _timit_folder(root: Path) -> Path:
    speaker = root / "dr1-fabc0"
    speaker.mkdir(parents=True)
    for name, phn, words, text in (
        ("sa1", "0 1600 h#\n1600 4000 sh\n4000 6400 iy\n6400 8000 h#\n", "1600 6400 she\n",
         "She."),
        ("sx2", "0 1600 h#\n1600 2400 bcl\n2400 3200 b\n3200 8000 iy\n", "1600 8000 bee\n",
         "Bee."),
    ):  # fmt: skip
        wave = np.random.default_rng(len(name)).normal(0, 0.05, 8000).astype(np.float32)
        sf.write(speaker / f"{name}.wav", wave, 16000)
        (speaker / f"{name}.phn").write_text(phn)
        (speaker / f"{name}.wrd").write_text(words)
        (speaker / f"{name}.txt").write_text(f"0 8000 {text}\n")
    return root


def test_read_timit_reference_gives_rows_and_hand_labels_in_seconds(tmp_path):
    reference = read_timit_reference(_timit_folder(tmp_path))
    (row, labels), (_, other) = reference
    assert (row.id, row.speaker, row.text, row.phones) == ("dr1-fabc0_sa1", "dr1-fabc0", "She.",
                                                           "h# sh iy h#")  # fmt: skip
    assert labels.phones[1] == Interval("sh", 0.1, 0.25)
    assert labels.words == [Interval("she", 0.1, 0.4)]
    assert _labels(protocol_units(other.phones)) == [("sil", 0.0, 0.1), ("b", 0.1, 0.2),
                                                     ("iy", 0.2, 0.5)]  # fmt: skip
    (tmp_path / "dr1-fabc0" / "sx2.phn").unlink()
    with pytest.raises(CorpusError, match=r"sx2\.wav: no \.phn"):
        read_timit_reference(tmp_path)


def test_real_timit_sample_dev():
    folder = SHARED_DATA_DIR / "timit-sample-dev"
    if not folder.is_dir():
        pytest.skip(f"shared corpus not present: {folder}")
    reference = read_timit_reference(folder)
    assert len(reference) == 80 and len({row.speaker for row, _ in reference}) == 8
    assert {p.label for _, labels in reference for p in labels.phones} <= set(TIMIT61)
    units = [protocol_units(labels.phones) for _, labels in reference]
    assert {u.label for us in units for u in us} <= {*TIMIT39}
    for us in units:  # each utterance tiles its time, silences never adjacent
        assert all(a.end == b.start for a, b in itertools.pairwise(us))
        assert not any(a.label == b.label == SILENCE for a, b in itertools.pairwise(us))
    perfect = summarize_alignments(
        [score_alignment(lab.phones, lab.phones) for _, lab in reference]
    )
    assert perfect["within_10ms"] == perfect["f1"] == perfect["r_value"] == 1.0
    assert perfect["reference_boundaries"] == sum(len(us) - 1 for us in units)
