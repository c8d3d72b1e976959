"""The ``phonex`` command: the same code as the notebooks, for headless runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from phonex.config import PROCESSED_DIR, Config, ConfigError


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
