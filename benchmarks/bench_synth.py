"""Corpus synthesis speed: clips per second for single drug names with espeak-ng.

Target (issue 2): at least 50 clips/s on 2 CPU cores. Each clip here is a clean, resampled,
written WAV plus its TextGrid of true phone times: the full work of `phonex synth` with
augmentation turned off (augmentations are measured separately, as they cost more).

    python benchmarks/bench_synth.py [--names 120] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/common.py
from common import record

from phonex.config import DataConfig
from phonex.corpus import read_manifest
from phonex.synth import build_corpus


def run(names: int, workers: int, augmentations: int) -> dict:
    cfg = DataConfig(size="quick", max_names=names, augmentations_per_clip=augmentations)
    with tempfile.TemporaryDirectory() as tmp:
        build_corpus(Path(tmp) / "warmup", DataConfig(size="quick", max_names=2), workers=1)
        start = time.perf_counter()
        rows = read_manifest(build_corpus(Path(tmp) / "corpus", cfg, workers=workers))
        seconds = time.perf_counter() - start
    return {
        "clips": len(rows),
        "seconds": round(seconds, 2),
        "clips_per_second": round(len(rows) / seconds, 1),
        "audio_seconds_per_second": round(sum(r.duration for r in rows) / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = {
        "command": f"python benchmarks/bench_synth.py --names {args.names} --workers {args.workers}",
        "target_clips_per_second": 50,
        "clean": run(args.names, args.workers, augmentations=0),
        "with_one_augmented_copy": run(args.names, args.workers, augmentations=1),
    }
    result["meets_target"] = result["clean"]["clips_per_second"] >= 50
    record("synth", result)


if __name__ == "__main__":
    main()
