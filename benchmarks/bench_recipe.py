"""Accuracy target of the default offline recipe (configs/drugs-tiny.yaml).

Target: phone error rate at most 10% on the held-out voices (test split) within 15 minutes of
training on 2 CPU cores. Builds the quick corpus if needed, trains from scratch into a scratch run
directory, scores the best checkpoint on the test split and records the result.

    python benchmarks/bench_recipe.py [--config configs/drugs-tiny.yaml] [key=value ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import record, train_and_score

from phonex.config import MODELS_DIR, PROCESSED_DIR, PROJ_ROOT, Config
from phonex.synth import build_corpus

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
    scored = train_and_score(cfg, manifest, args.out)
    record(
        "recipe_drugs_tiny",
        {
            "command": "python benchmarks/bench_recipe.py " + " ".join(args.overrides),
            "config": cfg.to_dict(),
            "torch_threads": torch.get_num_threads(),
            **scored,
            "targets": {"test_per_max": TARGET_PER, "train_minutes_max": TARGET_MINUTES},
            "met": scored["test_per"] <= TARGET_PER and scored["train_minutes"] <= TARGET_MINUTES,
        },
    )


if __name__ == "__main__":
    main()
