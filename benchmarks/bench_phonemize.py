"""Phonemizing the whole drug lexicon: target under 1 second (cold: fresh process, no cache).

python benchmarks/bench_phonemize.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/common.py
from common import record

CODE = """
import time, sys
from phonex.lexicon import load_drugs, pronunciations
names = [d.name for d in load_drugs()]
t = time.perf_counter(); pronunciations(names, cache_dir=sys.argv[1]); cold = time.perf_counter() - t
t = time.perf_counter(); pronunciations(names, cache_dir=sys.argv[1]); warm = time.perf_counter() - t
print(len(names), cold, warm)
"""


def main() -> None:
    runs = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as cache:
            out = subprocess.run(
                [sys.executable, "-c", CODE, cache], capture_output=True, text=True, check=True
            ).stdout.split()
        runs.append((int(out[0]), float(out[1]), float(out[2])))
    cold = sorted(r[1] for r in runs)
    record(
        "phonemize",
        {
            "command": "python benchmarks/bench_phonemize.py",
            "names": runs[0][0],
            "cold_seconds_median": round(cold[len(cold) // 2], 3),
            "cold_seconds_max": round(cold[-1], 3),
            "cached_seconds_median": round(sorted(r[2] for r in runs)[2], 4),
            "target_seconds": 1.0,
            "meets_target": cold[-1] < 1.0,
        },
    )


if __name__ == "__main__":
    main()
