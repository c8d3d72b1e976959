"""Real-speech recipe: held-out-speaker PER on speechocean762 (configs/speechocean-tiny.yaml).

Continues training the offline tiny model (models/drugs-tiny/best, trained by notebook 03 or
``phonex train --config configs/drugs-tiny.yaml``) on ../shared/data/speechocean762-train: 75
non-native speakers of English; 15% of speakers are held out for test and 10% for dev. Phones
come from phonemizer (espeak-ng en-gb, the same IPA symbols as the synthetic corpus); the
corpus's own ARPAbet lexicon is read by phonex.readers.read_kaldi if you prefer it.

    python benchmarks/bench_speechocean.py [key=value ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import record, train_and_score

from phonex.config import MODELS_DIR, PROCESSED_DIR, PROJ_ROOT, SHARED_DATA_DIR, Config
from phonex.readers import speechocean_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=PROJ_ROOT / "configs" / "speechocean-tiny.yaml"
    )
    parser.add_argument("--source", type=Path, default=SHARED_DATA_DIR / "speechocean762-train")
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "speechocean-tiny")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not args.source.is_dir():
        sys.exit(f"{args.source}: not found (speechocean762 is optional; see README)")
    cfg = Config.load(args.config).override(args.overrides)
    recorded = cfg.to_dict()  # as given: no paths of this machine in the record
    if not Path(cfg.model.name).is_absolute() and (PROJ_ROOT / cfg.model.name).is_dir():
        cfg = cfg.override([f"model.name={PROJ_ROOT / cfg.model.name}"])
    manifest = speechocean_manifest(
        args.source, PROCESSED_DIR / "speechocean762" / "manifest.jsonl", cfg.data.language
    )
    record(
        "recipe_speechocean",
        {
            "command": "python benchmarks/bench_speechocean.py " + " ".join(args.overrides),
            "config": recorded,
            **train_and_score(cfg, manifest, args.out, examples=3),
        },
    )


if __name__ == "__main__":
    main()
