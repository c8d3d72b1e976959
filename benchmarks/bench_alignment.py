"""Forced alignment: aligner speed next to ctc-forced-aligner, and boundary accuracy.

Targets (issue 5): at least 90 % of phone boundaries within 20 ms of espeak-ng's times on the
held-out voices, with the default model (recorded without and with a boundary calibration fitted
on the training voices' clips, :mod:`phonex.boundaries`, saved beside the model); the aligner at least as fast as ctc-forced-aligner's
compiled aligner on the same inputs (T=3000, C=60, L=400 and T=500, C=45, L=60), timed side by
side in one run. Also recorded: phone offsets against the reference ends of real speech, the
speechbrain test samples (when ../shared/data/speechbrain-samples exists), scored on TIMIT-39.

ctc-forced-aligner is optional: ``pip install -c constraints.txt -e ".[bench]"`` (PyPI's 1.0.2,
an sdist that needs a C++ compiler; it adds onnxruntime and requests, not torch). Its C++
``align_sequences`` (ctypes) is timed; without it the comparison is recorded as absent. GitHub's
MahmoudAshraf97/ctc-forced-aligner has the same import name but another API: absent too.

Real speech (``--part timit``, results/alignment_timit.json; :mod:`timit_alignment`): the
real-speech model ``phonex-en`` aligning timit-sample-dev against its hand labels under
FA-Bench's TIMIT protocol, target at least 85 % of boundaries within 20 ms and no failed
utterance. Recorded: uncalibrated; with a boundary calibration cross-validated leave one
speaker out over the 8 speakers (each speaker scored by a calibration fitted on the other 7);
the boundary-aware frame classifier, cross-validated the same way; per-phone confidence (GOP)
against what the hand labels confirm; pocketsphinx and hama on the same utterances. A
calibration fitted on all 80 utterances is saved as results/alignment_timit_calibration.json
(``phonex align --calibration``).

    python benchmarks/bench_alignment.py [--model models/bench-drugs-tiny/best]
    python benchmarks/bench_alignment.py --part timit [--timit-model phonex-en]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import record
from timit_alignment import timit_section

from phonex.align import align, stand_ins, to_tiers, transcript_tokens
from phonex.align_eval import evaluate_alignment
from phonex.audio import load_audio
from phonex.boundaries import fit_calibration
from phonex.config import MODELS_DIR, PROCESSED_DIR, PROJ_ROOT, SHARED_DATA_DIR
from phonex.corpus import read_manifest
from phonex.intervals import TIMIT_SAMPLE_RATE, Interval
from phonex.metrics import boundary_accuracy, matched_boundary_errors
from phonex.models import load_model
from phonex.phonemes import WORD_SEP
from phonex.viterbi import viterbi, viterbi_batch

SIZES = [(3000, 60, 400), (500, 45, 60)]
CALIBRATION_FILE = "boundary_calibration.json"
ROUNDS = 30  # numba and C++ runs, interleaved so that load from other processes hits both
TORCH_ROUNDS = 3  # viterbi_batch is ~100x slower; a few runs say enough


def _ctc_forced_aligner():
    """ctc-forced-aligner's compiled aligner and ``{"version": ...}``, or None and why not."""
    try:
        from ctc_forced_aligner.ctc_aligner import align_sequences
    except Exception as err:  # noqa: BLE001 - ImportError, or FileNotFoundError/OSError (.so)
        return None, {"absent": f"{type(err).__name__}: {err}"}
    return align_sequences, {
        "version": importlib.metadata.version("ctc-forced-aligner"),
        "function": "ctc_forced_aligner.ctc_aligner.align_sequences",
    }


def _median_ms(calls: dict, rounds: int) -> dict[str, float]:
    """Median wall time of each call, the calls taking turns in every round."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


def _compare(reference: torch.Tensor, path, log_probs: torch.Tensor) -> dict:
    """Frames where ``path`` leaves phonex's path, and its log-probability minus phonex's."""
    path = torch.as_tensor(np.asarray(path)).reshape(-1).long()
    frames = torch.arange(len(path))
    gain = log_probs.double()[frames, path].sum() - log_probs.double()[frames, reference].sum()
    return {"frames_differ": int((path != reference).sum()),
            "logprob_minus_phonex": round(float(gain), 4)}  # fmt: skip


def _time_size(frames: int, classes: int, tokens: int, gen: torch.Generator, cfa) -> dict:
    """Median ms of each aligner on one random problem, and how its path compares to phonex's."""
    log_probs = torch.log_softmax(torch.randn(frames, classes, generator=gen), -1)
    targets = torch.randint(1, classes, (tokens,), generator=gen).tolist()
    batch = (log_probs[None], torch.tensor([targets]), torch.tensor([frames]),
             torch.tensor([tokens]))  # fmt: skip
    calls = {"numba": lambda: viterbi(log_probs, targets)}
    if cfa is not None:
        # its inputs as it takes them (float32 [1, T, C], int64 [1, L]), made outside the clock
        cfa_inputs = (log_probs.numpy()[None], np.asarray([targets], np.int64), 0)
        calls["ctc_forced_aligner"] = lambda: cfa(*cfa_inputs)
    paths = {name: call() for name, call in calls.items()}  # warm-up; numba compiles or loads
    row = {"T": frames, "C": classes, "L": tokens}
    row |= {f"{k}_ms": round(v, 2) for k, v in _median_ms(calls, ROUNDS).items()}
    torch_ms = _median_ms({"torch": lambda: viterbi_batch(*batch)}, TORCH_ROUNDS)["torch"]
    row["torch_batch_ms"] = round(torch_ms, 1)
    reference = paths["numba"][0]
    row["torch_batch_path"] = _compare(reference, viterbi_batch(*batch)[0], log_probs)
    if cfa is not None:
        row["ctc_forced_aligner_path"] = _compare(reference, paths["ctc_forced_aligner"][0],
                                                  log_probs)  # fmt: skip
        row["numba_vs_ctc_forced_aligner"] = round(
            row["numba_ms"] / row["ctc_forced_aligner_ms"], 2
        )
    return row


def aligner_speed() -> tuple[list[dict], dict]:
    """Each size: median ms of phonex (numba, torch) and ctc-forced-aligner, and their paths."""
    cfa, cfa_info = _ctc_forced_aligner()
    gen = torch.Generator().manual_seed(0)
    return [_time_size(*size, gen, cfa) for size in SIZES], cfa_info


def reference_phones(utterance: dict) -> list[Interval]:
    """The ``phn`` labels with ``ground_truth_phn_ends`` (16 kHz samples); each starts at the
    previous end, the first at 0."""
    ends = [int(e) / TIMIT_SAMPLE_RATE for e in utterance["ground_truth_phn_ends"].split()]
    return [Interval(p, s, e) for p, s, e in zip(utterance["phn"].split(), [0.0, *ends], ends)]


def _align_utterance(loaded, folder: Path, utterance: dict) -> tuple[list[Interval], dict]:
    """espeak-ng phones of the words, aligned, and the stand-ins used (which keep their labels).

    The drug-name model has no ð (no drug name has one): it is aligned as the model's nearest
    phone, then scored as ð.
    """
    text = utterance["wrd"].lower()
    _, tokens = transcript_tokens(loaded, text)
    used = stand_ins(loaded, tokens)
    known = " ".join(used.get(t, t) for t in tokens.split())
    wave = load_audio(utterance["wav"].replace("{data_root}", str(folder / "ASR")),
                      loaded.sample_rate)  # fmt: skip
    phones = to_tiers(align(loaded, wave, text, tokens=known))["phones"]
    labels = [t for t in tokens.split() if t != WORD_SEP]
    assert len(labels) == len(phones), "one aligned interval per phone"
    return [Interval(label, p.start, p.end) for label, p in zip(labels, phones)], used


def speechbrain_boundaries(loaded, folder: Path) -> dict:
    """Phone offsets against the speechbrain samples' reference ends, matched on TIMIT-39."""
    annotation = folder / "annotation" / "ASR_train.json"
    if not annotation.is_file():
        return {"skipped": f"{annotation} not found"}
    utterances = json.loads(annotation.read_text())
    substituted: dict[str, str] = {}
    onsets, offsets, each = [], [], []
    for name, utterance in utterances.items():
        hypothesis, used = _align_utterance(loaded, folder, utterance)
        substituted |= used
        result = matched_boundary_errors(reference_phones(utterance), hypothesis)
        onsets.append(result.onset_error)
        offsets.append(result.offset_error)
        each.append({"id": name, "matched": result.matched,
                     "reference_phones": result.reference_phones,
                     "hypothesis_phones": result.hypothesis_phones,
                     "offset_mean_abs_error_s": round(float(result.offset_error.mean()), 4)
                     if result.offset_error.size else None})  # fmt: skip
    matched, total = sum(u["matched"] for u in each), sum(u["reference_phones"] for u in each)
    return {
        "source": str(annotation.relative_to(folder.parent)),
        "utterances": len(each),
        "reference_phones": total,
        "matched_phones": matched,
        "matched_share": round(matched / total, 4),
        "offsets": _rounded(boundary_accuracy(np.concatenate(offsets))),
        "onsets": _rounded(boundary_accuracy(np.concatenate(onsets))),
        "stand_ins": substituted,
        "per_utterance": each,
    }


def _accuracy(phones) -> dict:
    """Boundary accuracy of onsets, offsets and both, from evaluate_alignment's rows."""
    both = np.r_[phones.onset_error, phones.offset_error]
    return {name: _rounded(boundary_accuracy(errors))
            for name, errors in (("onsets", phones.onset_error),
                                 ("offsets", phones.offset_error), ("all", both))}  # fmt: skip


def _rounded(accuracy: dict) -> dict:
    return {k: round(v, 4) for k, v in accuracy.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MODELS_DIR / "bench-drugs-tiny" / "best"))
    parser.add_argument("--speechbrain", default=str(SHARED_DATA_DIR / "speechbrain-samples"))
    parser.add_argument("--timit-model", default="phonex-en", help="the real-speech model")
    parser.add_argument("--timit", type=Path, default=SHARED_DATA_DIR / "timit-sample-dev")
    parser.add_argument(
        "--part",
        choices=("all", "synthetic", "timit"),
        default="all",
        help="timit: only the real-speech part (results/alignment_timit.json)",
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip pocketsphinx and hama on TIMIT"
    )
    args = parser.parse_args()
    if args.part in ("all", "timit"):
        if not args.timit.is_dir():
            print(f"skipped TIMIT: {args.timit} not found")
        else:
            command = "python benchmarks/bench_alignment.py --part timit"
            if args.timit_model != "phonex-en":
                command += f" --timit-model {args.timit_model}"
            record("alignment_timit", {"command": command, **timit_section(
                args.timit_model, args.timit, not args.no_baselines)})  # fmt: skip
    if args.part in ("all", "synthetic"):
        synthetic(args)


def synthetic(args: argparse.Namespace) -> None:
    """The synthetic-speech part: speed, espeak-ng boundaries, speechbrain phone ends."""
    loaded = load_model(args.model)
    speed, cfa = aligner_speed()
    manifest = PROCESSED_DIR / "drugs-quick" / "manifest.jsonl"
    clean = [r for r in read_manifest(manifest) if r.augmentation == "none"]
    rows = [r for r in clean if r.split == "test"]
    start = time.perf_counter()
    phones = evaluate_alignment(loaded, rows)
    seconds = time.perf_counter() - start
    # onset offsets learned on the training voices, saved beside the model for `--calibration`
    model = Path(args.model)
    train_phones = evaluate_alignment(loaded, [r for r in clean if r.split == "train"])
    frame = loaded.model.config.inputs_to_logits_ratio / loaded.sample_rate
    calibration = fit_calibration(train_phones, frame)
    calibration.save(model / CALIBRATION_FILE)
    calibrated = evaluate_alignment(loaded, rows, calibration=calibration)
    accuracy, calibrated_accuracy = _accuracy(phones), _accuracy(calibrated)
    record(
        "alignment",
        {
            "command": "python benchmarks/bench_alignment.py",
            "model": str(model.relative_to(PROJ_ROOT))
            if model.is_relative_to(PROJ_ROOT)
            else args.model,
            "clips": len(rows),
            "align_clips_per_s": round(len(rows) / seconds, 1),
            "boundaries": accuracy,
            "calibrated_boundaries": calibrated_accuracy,
            "calibration": {
                "file": CALIBRATION_FILE,
                "contexts": len(calibration.offsets),
                **calibration.meta,
            },
            "speechbrain_samples": speechbrain_boundaries(loaded, Path(args.speechbrain)),
            "aligner_speed": speed,
            "ctc_forced_aligner": cfa,
            "numba": importlib.metadata.version("numba"),
            "torch_threads": torch.get_num_threads(),
            "targets": {"all_within_20ms_min": 0.90, "numba_vs_ctc_forced_aligner_max": 1.0},
            "met_uncalibrated": accuracy["all"]["within_20ms"] >= 0.90,
            "met": calibrated_accuracy["all"]["within_20ms"] >= 0.90,
            "speed_met": all(r["numba_vs_ctc_forced_aligner"] <= 1.0 for r in speed)
            if "version" in cfa
            else None,
        },
    )


if __name__ == "__main__":
    main()
