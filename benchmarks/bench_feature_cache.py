"""Training step time of the Whisper tiny.en real-speech recipe with and without the feature cache.

The recipe is ``configs/phonex-en.yaml`` (batch 16, AdamW, fp32 on CPU), run through the one
training loop (:func:`phonex.train.train`) on a seeded sample of its own training clips (real
speech of ``../shared/data`` and espeak-ng drug names, whichever manifests exist), for
``model.trainable_layers`` 1 and 2:

- **waveforms**: ``model.feature_cache=false``: every step runs the log-mel, the convolutions
  and every block, the frozen ones without gradients;
- **cached**: ``model.feature_cache=true``: the frozen blocks' output is computed once per clip
  (:mod:`phonex.feature_cache`, float16, a fresh cache folder), and each step runs only the
  trained blocks and the head from it (:mod:`phonex.cached_training`). It is run twice, first
  with an empty cache (its run time includes building it) and then with the cache full.

Step time is read from the run's own log (``elapsed_s`` in ``metrics.csv``): the mean over the
steps after the first ``--warmup``. Both runs see the same batches in the same order (same seed
and clips), so only the inputs differ.

    python benchmarks/bench_feature_cache.py [--clips 64] [--steps 40] [--layers 1 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import record, sample

from phonex.config import PROCESSED_DIR, PROJ_ROOT, Config
from phonex.corpus import read_manifest, write_manifest
from phonex.train import train

CONFIG = PROJ_ROOT / "configs" / "phonex-en.yaml"
MANIFESTS = (PROCESSED_DIR / "realspeech" / "manifest-en-us.jsonl",
             PROCESSED_DIR / "drugs-quick" / "manifest.jsonl")  # fmt: skip
DEV_CLIPS = 4  # the loop evaluates once, at its last step: a few clips keep that short


def bench_manifest(out: Path, clips: int, seed: int = 0) -> tuple[Path, dict]:
    """A manifest of ``clips`` train rows and :data:`DEV_CLIPS` dev rows drawn (seeded) from the
    recipe's manifests; and how many came from each."""
    found = [m for m in MANIFESTS if m.is_file()]
    if not found:
        raise SystemExit(f"no training manifest: expected one of {[str(m) for m in MANIFESTS]} "
                         "(phonex train --config configs/phonex-en.yaml --real-speech "
                         "writes the first; phonex synth --size quick the second)")  # fmt: skip
    rows = [r for m in found for r in read_manifest(m) if r.augmentation in ("", "none")]
    rng = np.random.default_rng(seed)
    train_rows = sample([r for r in rows if r.split == "train"], clips, rng)
    dev_rows = sample([r for r in rows if r.split == "dev"], DEV_CLIPS, rng)
    sources: dict[str, int] = {}
    for row in train_rows:
        sources[row.source] = sources.get(row.source, 0) + 1
    seconds = sum(r.duration for r in train_rows)
    return write_manifest(train_rows + dev_rows, out), {
        "train_clips": len(train_rows), "train_audio_seconds": round(seconds, 1),
        "sources": sources, "manifests": [str(m) for m in found]}  # fmt: skip


def run(cfg: Config, manifest: Path, folder: Path, cache_root: Path, warmup: int) -> dict:
    """One short training run; its mean step time after ``warmup`` steps and its wall time."""
    start = time.perf_counter()
    result = train(cfg, [manifest], folder, resume=False, progress=False, cache_root=cache_root)
    wall = time.perf_counter() - start
    elapsed = {row["step"]: row["elapsed_s"] for row in result.state.history}
    steps = cfg.train.max_steps
    step_s = (elapsed[steps] - elapsed[warmup]) / (steps - warmup)
    return {"step_seconds": round(step_s, 4), "first_steps_seconds": elapsed[warmup],
            "run_wall_seconds": round(wall, 2), "trainable": result.params}  # fmt: skip


def compare(layers: int, manifest: Path, root: Path, args: argparse.Namespace) -> dict:
    """Waveform inputs, then the cache built from empty, then the cache already full."""
    out = {}
    for name, cached in (("waveforms", False), ("cached_cold", True), ("cached_warm", True)):
        cfg = Config.load(CONFIG).override([
            f"model.trainable_layers={layers}", f"model.feature_cache={str(cached).lower()}",
            f"train.max_steps={args.steps}", f"train.eval_every={args.steps}",
            f"train.checkpoint_every={args.steps}", f"train.log_every={args.warmup}",
        ])  # fmt: skip
        cache_root = root / f"cache-{layers}"
        out[name] = run(cfg, manifest, root / f"run-{layers}-{name}", cache_root, args.warmup)
        print(f"trainable_layers={layers} {name}: {out[name]}", file=sys.stderr)
    waves, warm = out["waveforms"]["step_seconds"], out["cached_warm"]["step_seconds"]
    out["speedup"] = round(waves / warm, 2) if warm else None
    out["cache_build_seconds"] = round(out["cached_cold"]["run_wall_seconds"]
                                       - out["cached_warm"]["run_wall_seconds"], 2)  # fmt: skip
    stored = sum(f.stat().st_size for f in (root / f"cache-{layers}").rglob("*.npy"))
    out["cache_mb"] = round(stored / 1e6, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64, help="training clips sampled")
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the mean")
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if args.steps <= args.warmup or args.steps % args.warmup:
        parser.error("--steps must be a multiple of --warmup and larger than it")
    with tempfile.TemporaryDirectory(prefix="phonex-bench-cache-") as tmp:
        manifest, data = bench_manifest(Path(tmp) / "manifest.jsonl", args.clips)
        results = {str(n): compare(n, manifest, Path(tmp), args) for n in args.layers}
    record("feature_cache", {
        "command": "python benchmarks/bench_feature_cache.py " + " ".join(sys.argv[1:]),
        "config": str(CONFIG.relative_to(PROJ_ROOT)),
        "torch_threads": torch.get_num_threads(),
        "data": data,
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "trainable_layers": results,
    })  # fmt: skip


if __name__ == "__main__":
    main()
