"""The ``phonex`` command: the same code as the notebooks, for headless runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from phonex.config import MODELS_DIR, PROCESSED_DIR, Config, ConfigError


def _load_config(path: Path | None, overrides: list[str]) -> Config:
    cfg = Config.load(path) if path else Config()
    return cfg.override(overrides)


def cmd_synth(args: argparse.Namespace) -> int:
    from phonex.synth import build_corpus

    overrides = list(args.overrides) + ([f"data.size={args.size}"] if args.size else [])
    cfg = _load_config(args.config, overrides)
    out = args.out or PROCESSED_DIR / f"drugs-{cfg.data.size}"
    manifest = build_corpus(out, cfg.data, cfg.audio.sample_rate, workers=args.workers)
    print(manifest)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from phonex.train import train

    cfg = _load_config(args.config, list(args.overrides))
    manifests = args.manifest or [PROCESSED_DIR / f"drugs-{cfg.data.size}" / "manifest.jsonl"]
    out = args.out or MODELS_DIR / f"drugs-{Path(cfg.model.name).name}"
    result = train(cfg, manifests, out, resume=not args.restart)
    print(f"best dev error {result.state.best_error:.4f}; model in {result.best_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from phonex.evaluate import evaluate_manifest

    result = evaluate_manifest(args.model, args.manifest, args.split, args.batch_size)
    print(json.dumps({k: v for k, v in result.items() if k != "hypotheses"}, indent=1))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from phonex.runner import doctor

    print("\n".join(doctor()))
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    from phonex.runner import run_notebooks

    run_notebooks(args.names or None, quick=not args.full, out_dir=args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phonex", description="Phoneme experiments with CTC speech models."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser(
        "synth",
        help="build the synthetic drug-name corpus (resumable)",
        description="Speak every lexicon name with every voice of a grid, augment, and write "
        "audio, TextGrids of the true phone times and manifest.jsonl. Rerunning an interrupted "
        "build skips the clips already written.",
    )
    synth.add_argument(
        "--out", type=Path, help="corpus folder (default: data/processed/drugs-SIZE)"
    )
    synth.add_argument("--size", choices=["quick", "full"], help="voice grid (same as data.size=)")
    synth.add_argument("--config", type=Path, help="YAML/JSON settings file")
    synth.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)"
    )
    synth.add_argument(
        "overrides", nargs="*", metavar="section.key=value", help="e.g. data.max_names=40"
    )
    synth.set_defaults(func=cmd_synth)

    train = sub.add_parser(
        "train",
        help="fine-tune or train a CTC model (resumes an interrupted run)",
        description="Train on the train split of the manifests, evaluate on their dev split, "
        "checkpoint, and keep the best model in OUT/best. Runs under torchrun for DDP.",
    )
    train.add_argument("--config", type=Path, help="YAML/JSON settings file, e.g. configs/*.yaml")
    train.add_argument(
        "--manifest", type=Path, action="append",
        help="corpus manifest (repeat to mix corpora; default: data/processed/drugs-SIZE)",
    )  # fmt: skip
    train.add_argument("--out", type=Path, help="run directory (default: models/drugs-MODEL)")
    train.add_argument("--restart", action="store_true", help="ignore checkpoints in --out")
    train.add_argument(
        "overrides", nargs="*", metavar="section.key=value", help="e.g. train.max_steps=100"
    )
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", help="phone (or character) error rate of a model on one split of a manifest"
    )
    evaluate.add_argument("model", help="model directory, registry name or hub id")
    evaluate.add_argument("--manifest", type=Path, required=True)
    evaluate.add_argument("--split", default="test", help="split to score (default: test)")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.set_defaults(func=cmd_evaluate)

    doctor = sub.add_parser("doctor", help="show versions, espeak-ng, torchaudio and TTS engines")
    doctor.set_defaults(func=cmd_doctor)

    notebooks = sub.add_parser(
        "notebooks",
        help="run the numbered notebooks headless (papermill)",
        description="Execute notebooks/NN_*.ipynb in order; executed copies go to --out, "
        "figures to figures/.",
    )
    notebooks.add_argument("names", nargs="*", help="name prefixes, e.g. 01 02 (default: all)")
    notebooks.add_argument("--full", action="store_true", help="QUICK=False: the long version")
    notebooks.add_argument("--out", type=Path, help="executed copies (default: data/executed)")
    notebooks.set_defaults(func=cmd_notebooks)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, KeyError, RuntimeError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"phonex {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
