"""Accuracy target of the default offline recipe (configs/drugs-tiny.yaml).

Target: phone error rate at most 10% on the held-out voices (test split) within 15 minutes of
training on 2 CPU cores. Builds the quick corpus if needed, trains from scratch into a scratch run
directory, scores the best checkpoint on the test split and records the result.

    python benchmarks/bench_recipe.py [--config configs/drugs-tiny.yaml] [key=value ...]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from common import record

from phonex.config import MODELS_DIR, PROCESSED_DIR, PROJ_ROOT, Config
from phonex.evaluate import evaluate_manifest
from phonex.synth import build_corpus
from phonex.train import train

TARGET_PER = 0.10
TARGET_MINUTES = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=PROJ_ROOT / "configs" / "drugs-tiny.yaml")
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "bench-drugs-tiny")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = Config.load(args.config).override(args.overrides)
    corpus = PROCESSED_DIR / f"drugs-{cfg.data.size}"
    manifest = build_corpus(corpus, cfg.data, cfg.audio.sample_rate)
    shutil.rmtree(args.out, ignore_errors=True)  # a fresh run, not a resumed one
    start = time.time()
    result = train(cfg, [manifest], args.out, resume=False)
    minutes = (time.time() - start) / 60
    test = evaluate_manifest(result.best_dir, manifest, "test")
    hypotheses = test.pop("hypotheses")
    record(
        "recipe_drugs_tiny",
        {
            "command": "python benchmarks/bench_recipe.py " + " ".join(args.overrides),
            "config": cfg.to_dict(),
            "torch_threads": torch.get_num_threads(),
            "train_minutes": round(minutes, 2),
            "best_dev_per": round(result.state.best_error, 4),
            "test": test,
            "test_per": round(test["error"], 4),
            "example_hypotheses": hypotheses[:5],
            "targets": {"test_per_max": TARGET_PER, "train_minutes_max": TARGET_MINUTES},
            "met": test["error"] <= TARGET_PER and minutes <= TARGET_MINUTES,
        },
    )


if __name__ == "__main__":
    main()
