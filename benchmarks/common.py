"""What every benchmark records next to its numbers: machine, versions, commit, date."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from phonex.checkpoints import git_sha
from phonex.config import PROJ_ROOT

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "cpu": _cpu_name(),
        "python": platform.python_version(),
        "versions": {p: importlib.metadata.version(p) for p in ("phonex", "torch", "phonemizer")},
        "git_sha": git_sha(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def sample(rows: list, n: int, rng: np.random.Generator) -> list:
    """``n`` rows drawn without replacement (all when there are fewer), in their original order."""
    return [rows[i] for i in sorted(rng.choice(len(rows), min(n, len(rows)), replace=False))]


def portable(value):
    """``value`` with this machine's paths written relative to the project root (``data/...``,
    ``../shared/...``), so that a recorded result names no folder of the machine it ran on."""
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item) for item in value]
    if isinstance(value, str):
        return value.replace(f"{PROJ_ROOT}/", "").replace(f"{PROJ_ROOT.parent}/", "../")
    return value


def record(name: str, result: dict) -> Path:
    """Write ``results/<name>.json`` with the environment, and print it."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = portable({**environment(), **result})
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(payload, indent=2, ensure_ascii=False))
    return path


def train_and_score(cfg, manifest: Path, out_dir: Path, examples: int = 5) -> dict:
    """Train a fresh run (not a resumed one) on ``manifest`` and score its best model on test."""
    from phonex.evaluate import evaluate_manifest
    from phonex.train import train

    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.time()
    result = train(cfg, [manifest], out_dir, resume=False)
    minutes = (time.time() - start) / 60
    test = evaluate_manifest(result.best_dir, manifest, "test")
    hypotheses = test.pop("hypotheses")
    return {
        "train_minutes": round(minutes, 2),
        "best_dev_per": round(result.state.best_error, 4),
        "test_per": round(test["error"], 4),
        "test": test,
        "example_hypotheses": hypotheses[:examples],
    }
