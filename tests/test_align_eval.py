"""Alignments scored against TIMIT hand labels, and calibrations cross-validated by speaker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from phonex.align import WordSpan
from phonex.align_eval import (
    TimitRun,
    cross_validate,
    gop_quartiles,
    score_timit,
    timit_phone_table,
)
from phonex.boundaries import fit_calibration
from phonex.timit import read_timit_reference

# per utterance: .phn (16 kHz samples), text, and the espeak-ng phones said, with their words
UTTERANCES = {
    "sa1": ("0 1600 h#\n1600 4000 sh\n4000 6400 iy\n6400 8000 h#\n", "She.", [("She", "ʃ iː")]),
    "sx2": ("0 1600 h#\n1600 2400 bcl\n2400 3200 b\n3200 6400 iy\n6400 8000 h#\n", "Bee.",
            [("Bee", "b iː")]),
}  # fmt: skip


def timit_tree(root: Path, speakers=("dr1-fabc0", "dr2-mdef0", "dr3-fghi0")) -> Path:
    for speaker in speakers:
        folder = root / speaker
        folder.mkdir(parents=True)
        for name, (phn, text, _) in UTTERANCES.items():
            wave = np.random.default_rng(0).normal(0, 0.05, 8000).astype(np.float32)
            sf.write(folder / f"{name}.wav", wave, 16000)
            (folder / f"{name}.phn").write_text(phn)
            (folder / f"{name}.txt").write_text(f"0 8000 {text}\n")
    return root


def late_run(root: Path, lag: float) -> TimitRun:
    """Alignments that put every boundary ``lag`` seconds after the hand labels (with a
    confirmed phone sequence), the way a CTC spike fires after a phone begins."""
    reference = read_timit_reference(root)
    words = []
    for row, labels in reference:
        name = Path(row.audio).stem
        ((word, phones),) = UTTERANCES[name][2]
        units = [p for p in labels.phones if p.label not in ("h#", "bcl")]
        starts = [0.1 + lag, *(u.start + lag for u in units[1:])]
        spans = [(p, s, e, 0.9) for p, s, e in zip(phones.split(), starts, [*starts[1:],
                                                                            0.4 + lag])]  # fmt: skip
        words.append([WordSpan(word, spans[0][1], spans[-1][2], spans, (1.0,) * len(spans))])
    return TimitRun(reference, words, {})


def test_a_late_alignment_is_scored_by_the_protocol_and_each_phone_paired(tmp_path):
    run = late_run(timit_tree(tmp_path), lag=0.04)
    score = score_timit(run)
    assert score["within_20ms"] == 0 and score["within_50ms"] == 1
    assert score["mean_abs_error_s"] == pytest.approx(0.04) and score["failed"] == 0
    assert score["utterances"] == 6 and score["same_phones"] == 6
    table = timit_phone_table(run)
    assert table.label.tolist()[:2] == ["sh", "iy"] and table.label.tolist()[2] == "b"
    assert table.onset_error.to_numpy() == pytest.approx(np.full(len(table), 0.04))
    assert (table.start - table.ref_start).to_numpy() == pytest.approx(np.full(len(table), 0.04))


def test_leave_one_speaker_out_calibration_never_sees_the_speaker_it_scores(tmp_path):
    run = late_run(timit_tree(tmp_path), lag=0.04)
    calibrated, fits = cross_validate(run, lambda table: fit_calibration(table, min_count=1))
    speakers = sorted({row.speaker for row, _ in run.reference})
    assert [f.meta["speakers"] for f in fits] == [[s for s in speakers if s != held]
                                                  for held in speakers]  # fmt: skip
    assert [row.id for row, _ in calibrated.reference] == [row.id for row, _ in run.reference]
    score = score_timit(calibrated)
    assert score["within_10ms"] == 1 and score["mean_abs_error_s"] == pytest.approx(0, abs=1e-9)


def test_a_failed_utterance_is_counted_and_scored_as_no_alignment(tmp_path):
    run = late_run(timit_tree(tmp_path, speakers=("dr1-fabc0",)), lag=0.0)
    run.words[0], run.failed = [], {run.reference[0][0].id: "cannot align"}
    score = score_timit(run)
    assert score["failed"] == 1 and score["within_10ms"] == 1
    assert score["paired_boundaries"] < score["reference_boundaries"]


def test_gop_quartiles_are_four_equal_groups_in_order_even_with_ties():
    gop = pd.Series([5.0, -1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 9.0])
    assert gop_quartiles(gop).tolist() == ["highest", "lowest", "lowest", "2nd", "2nd", "3rd",
                                           "3rd", "highest"]  # fmt: skip
