"""Forced alignment: aligner speed, and boundary accuracy against espeak-ng's own phone times.

Targets (issue 5): at least 90 % of phone boundaries within 20 ms of espeak-ng's times on the
held-out voices, with the default model; the aligner at least as fast as ctc-forced-aligner's
compiled forced_align on the same inputs (T=3000, C=60, L=400 and T=500, C=45, L=60). The
comparison with ctc-forced-aligner is not run yet: this records phonex's own aligners.

    python benchmarks/bench_alignment.py [--model models/bench-drugs-tiny/best]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import record

from phonex.align import evaluate_alignment, viterbi, viterbi_batch
from phonex.config import MODELS_DIR, PROCESSED_DIR, PROJ_ROOT
from phonex.corpus import read_manifest
from phonex.metrics import boundary_accuracy
from phonex.models import load_model

SIZES = [(3000, 60, 400), (500, 45, 60)]


def aligner_speed(repeats: int = 5) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for frames, classes, tokens in SIZES:
        log_probs = torch.log_softmax(torch.randn(frames, classes, generator=gen), -1)
        targets = torch.randint(1, classes, (tokens,), generator=gen).tolist()
        viterbi(log_probs, targets)  # compile (numba caches to disk after the first run)
        start = time.perf_counter()
        for _ in range(repeats):
            viterbi(log_probs, targets)
        numba_ms = 1000 * (time.perf_counter() - start) / repeats
        start = time.perf_counter()
        viterbi_batch(log_probs[None], torch.tensor([targets]), torch.tensor([frames]),
                      torch.tensor([tokens]))  # fmt: skip
        torch_ms = 1000 * (time.perf_counter() - start)
        out.append({"T": frames, "C": classes, "L": tokens, "numba_ms": round(numba_ms, 2),
                    "torch_batch_ms": round(torch_ms, 1)})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MODELS_DIR / "bench-drugs-tiny" / "best"))
    args = parser.parse_args()
    loaded = load_model(args.model)
    manifest = PROCESSED_DIR / "drugs-quick" / "manifest.jsonl"
    rows = [r for r in read_manifest(manifest) if r.split == "test" and r.augmentation == "none"]
    start = time.perf_counter()
    phones = evaluate_alignment(loaded, rows)
    seconds = time.perf_counter() - start
    both = np.r_[phones.onset_error, phones.offset_error]
    accuracy = {name: {k: round(v, 4) for k, v in boundary_accuracy(errors).items()}
                for name, errors in (("onsets", phones.onset_error),
                                     ("offsets", phones.offset_error), ("all", both))}  # fmt: skip
    model = Path(args.model)
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
            "aligner_speed": aligner_speed(),
            "targets": {"all_within_20ms_min": 0.90},
            "met": accuracy["all"]["within_20ms"] >= 0.90,
        },
    )


if __name__ == "__main__":
    main()
