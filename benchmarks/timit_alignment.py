"""The real-speech part of bench_alignment.py: forced alignment of timit-sample-dev against
its hand labels (FA-Bench's TIMIT protocol, :func:`phonex.metrics.score_alignment`).

Rows: phonex-en's CTC alignment uncalibrated, with a boundary calibration cross-validated over
the 8 speakers (leave one speaker out), the boundary-aware frame classifier
(:mod:`phonex.frame_align`, also leave one speaker out), per-phone confidence against the hand
labels, and pocketsphinx and hama (benchmarks/baselines) on the same utterances.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from common import RESULTS_DIR

from phonex.align_eval import (
    align_timit,
    cross_validate,
    gop_quartiles,
    score_timit,
    timit_emissions,
    timit_phone_table,
)
from phonex.audio import load_audio
from phonex.boundaries import fit_calibration
from phonex.frame_align import CONTEXT, L2, cross_validate_frames, frame_features
from phonex.metrics import score_alignment, summarize_alignments
from phonex.models import load_model
from phonex.timit import read_timit_reference

CALIBRATION_FILE = "alignment_timit_calibration.json"  # fitted on all of TIMIT
TARGET = 0.85  # share of boundaries within 20 ms
PROTOCOL = ("FA-Bench TIMIT: fold to 39, closures merged into releases, silences joined; "
            "phonex.metrics.score_alignment (transcripts phonemized by espeak-ng, boundaries "
            "paired in order)")  # fmt: skip
CROSS_VALIDATION = ("leave one speaker out: each speaker's utterances scored with a calibration "
                    "(phonex.boundaries: median onset offset by context, ends before pauses) "
                    "fitted on the other speakers' utterances")  # fmt: skip


def _timit_row(run) -> dict:
    """The FA-Bench TIMIT row of a run, rounded, with the failed utterances named."""
    score = score_timit(run)
    return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in score.items()},
            "failed_utterances": run.failed}  # fmt: skip


def _confidence(run) -> dict:
    """How the GOP separates phones the hand labels confirm from those they contradict, and
    how onset accuracy (of ``run``, the calibrated alignments) follows it, by GOP quartile."""
    table = timit_phone_table(run).dropna(subset=["gop"])
    confirmed = table.label.notna()
    quartiles = gop_quartiles(table.gop)
    by_quartile = table[confirmed].groupby(quartiles[confirmed], observed=True).onset_error
    return {
        "phones": len(table),
        "confirmed_share": round(float(confirmed.mean()), 4),
        "median_gop_confirmed": round(float(table.gop[confirmed].median()), 3),
        "median_gop_contradicted": round(float(table.gop[~confirmed].median()), 3),
        "confirmed_share_by_gop_quartile": [
            round(float(v), 4) for v in confirmed.groupby(quartiles, observed=True).mean()],
        "onsets_within_20ms_by_gop_quartile": [
            round(float(np.mean(e <= 0.02 + 1e-9)), 4) for _, e in by_quartile],
        "gop_quartile_edges": [round(float(q), 3) for q in table.gop.quantile([0.25, 0.5, 0.75])],
    }  # fmt: skip


def _baseline_rows(reference) -> dict:
    """pocketsphinx's forced alignment of the words and hama's recognised phones with their
    times (benchmarks/baselines), on the same utterances and scorer; absent systems are named."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from baselines import load_systems

    systems, absent = load_systems(["pocketsphinx", "hama"])
    out: dict = {name: {"absent": why} for name, why in absent.items()}
    for name, system in systems.items():
        scores, failed = [], {}
        for row, labels in reference:
            try:
                phones = system.align(load_audio(row.audio, 16000), row.text)
            except Exception as err:  # noqa: BLE001 - any engine error: that utterance fails
                failed[row.id], phones = f"{type(err).__name__}: {err}", []
            scores.append(score_alignment(labels.phones, phones, "timit", system.align_labels))
        summary = summarize_alignments(scores)
        out[name] = {"forced": system.forced,
                     **{k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()},
                     "failed": len(failed), "failed_utterances": failed}  # fmt: skip
    return out


def _frame_classifier_row(loaded, reference) -> dict:
    """The boundary-aware head (:mod:`phonex.frame_align`), leave-one-speaker-out."""
    start = time.perf_counter()
    features = [frame_features(loaded, load_audio(row.audio, loaded.sample_rate))
                for row, _ in reference]  # fmt: skip
    intervals, failed = cross_validate_frames(loaded, reference, features)
    scores = [score_alignment(labels.phones, found, "timit", "timit")
              for (_, labels), found in zip(reference, intervals)]  # fmt: skip
    summary = summarize_alignments(scores)
    return {
        "method": "linear softmax over TIMIT-39 + sil on the last hidden layer (each frame with "
                  f"{CONTEXT} neighbour each side, L2 {L2:g}), fitted on 7 speakers' hand-labelled "
                  "frames, then Viterbi segmentation of the transcript's phones (espeak-ng, "
                  "folded to 39; optional silence between words); scored on the 8th speaker",
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()},
        "failed": len(failed), "failed_utterances": failed,
        "seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip


def _per_speaker(run, calibrated, fits) -> list[dict]:
    """Within 20 ms of each held-out speaker, uncalibrated and calibrated (by its fold)."""
    held_out = sorted({row.speaker for row, _ in run.reference})  # cross_validate's fold order
    return [
        {"speaker": held, "contexts": len(fit.offsets),
         **{f"{name}_within_20ms": _timit_row(r.subset(lambda u, h=held: u.speaker == h))[
             "within_20ms"] for name, r in (("uncalibrated", run), ("calibrated", calibrated))}}
        for held, fit in zip(held_out, fits)
    ]  # fmt: skip


def timit_section(model: str, folder: Path, baselines: bool) -> dict:
    """Forced alignment of timit-sample-dev against its hand labels, without and with a
    boundary calibration cross-validated over its speakers (never fitted on the speaker it
    scores), per-phone confidence, and the baselines on the same utterances."""
    loaded = load_model(model)
    reference = read_timit_reference(folder)
    start = time.perf_counter()
    log_probs = timit_emissions(loaded, reference)
    run = align_timit(loaded, reference, log_probs)
    seconds = time.perf_counter() - start
    frame = loaded.model.config.inputs_to_logits_ratio / loaded.sample_rate
    calibrated, fits = cross_validate(run, lambda table: fit_calibration(table, frame))
    everyone = fit_calibration(timit_phone_table(run), frame)
    everyone.meta["model"] = model
    everyone.save(RESULTS_DIR / CALIBRATION_FILE)
    keep = align_timit(loaded, reference, log_probs, blanks="keep")
    result = {
        "model": model, "data": str(folder), "utterances": len(reference),
        "speakers": len(fits), "align_utterances_per_s": round(len(reference) / seconds, 1),
        "protocol": PROTOCOL,
        "uncalibrated": _timit_row(run),
        "uncalibrated_blanks_keep": _timit_row(keep),
        "calibrated_leave_one_speaker_out": _timit_row(calibrated),
        "cross_validation": CROSS_VALIDATION,
        "per_speaker": _per_speaker(run, calibrated, fits),
        "calibration_all_speakers": {"file": f"benchmarks/results/{CALIBRATION_FILE}",
                                     "contexts": len(everyone.offsets),
                                     "note": "fitted on all 80: its held-out accuracy is the "
                                             "leave-one-speaker-out row"},
        "confidence": _confidence(calibrated),
        "frame_classifier_leave_one_speaker_out": _frame_classifier_row(loaded, reference),
        "targets": {"within_20ms_min": TARGET, "failed_max": 0},
    }  # fmt: skip
    result["met"] = (result["calibrated_leave_one_speaker_out"]["within_20ms"] >= TARGET
                     and not run.failed)  # fmt: skip
    frames = result["frame_classifier_leave_one_speaker_out"]
    result["met_frame_classifier"] = frames["within_20ms"] >= TARGET and not frames["failed"]
    if baselines:
        result["baselines"] = _baseline_rows(reference)
    return result
