"""The ``phonex`` command: the same code as the notebooks, for headless runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from phonex.cli_parser import build_parser
from phonex.cli_types import user_errors
from phonex.config import MODELS_DIR, PROCESSED_DIR, Config


def _load_config(path: Path | None, overrides: list[str]) -> Config:
    cfg = Config.load(path) if path else Config()
    return cfg.override(overrides)


def cmd_synth(args: argparse.Namespace) -> int:
    from phonex.synth import SynthInterrupted, build_corpus

    overrides = list(args.overrides) + ([f"data.size={args.size}"] if args.size else [])
    cfg = _load_config(args.config, overrides)
    out = args.out or PROCESSED_DIR / f"drugs-{cfg.data.size}"
    try:
        manifest = build_corpus(out, cfg.data, cfg.audio.sample_rate, workers=args.workers)
    except SynthInterrupted as stop:
        print(f"phonex synth: {stop}; finished clips kept in {out}, rerun to resume",
              file=sys.stderr)  # fmt: skip
        return stop.exit_status
    print(manifest)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from phonex.integrity import verify_manifest

    rows = verify_manifest(args.manifest)
    print(f"{args.manifest}: all {len(rows)} clips match the manifest")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from phonex.train import train

    cfg = _load_config(args.config, list(args.overrides))
    manifests = args.manifest or [PROCESSED_DIR / f"drugs-{cfg.data.size}" / "manifest.jsonl"]
    if args.real_speech:
        manifests = [*(args.manifest or []), _real_speech_manifest(cfg.data.language)]
    out = args.out or MODELS_DIR / f"drugs-{Path(cfg.model.name).name}"
    result = train(cfg, manifests, out, resume=not args.restart)
    print(f"best dev error {result.state.best_error:.4f}; model in {result.best_dir}")
    return 0


def _real_speech_manifest(language: str) -> Path:
    """Every real corpus of ``../shared/data`` but TIMIT as one manifest, rewritten each run."""
    from phonex.config import SHARED_DATA_DIR
    from phonex.realspeech import write_training_manifest

    out = PROCESSED_DIR / "realspeech" / f"manifest-{language}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    path, report = write_training_manifest(out, SHARED_DATA_DIR, language)
    for corpus, found in report.items():
        print(f"{corpus}: {found}", file=sys.stderr)
    return path


def cmd_evaluate(args: argparse.Namespace) -> int:
    from phonex.evaluate import evaluate_manifest

    result = evaluate_manifest(args.model, args.manifest, args.split, args.batch_size)
    summary = {k: v for k, v in result.items() if k != "hypotheses"}
    print(json.dumps(summary, indent=1, allow_nan=False))
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
    names, waves, refused = recognizer.scorable(names, waves)
    for message in refused:
        print(f"phonex: skipped: {message}", file=sys.stderr)
    for result in recognizer.recognize(waves, names, args.top) if waves else []:
        if args.json:
            print(json.dumps(result.to_json(), ensure_ascii=False, allow_nan=False))
        else:
            flag = "  (low confidence)" if result.low_confidence else ""
            ranked = "  ".join(f"{c.word} ({c.score:.1f})" for c in result.candidates)
            print(f"{result.path}\t{ranked}{flag}")
    return 1 if failed or refused else 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from phonex.models import load_model
    from phonex.recognize import short_clips, transcribe

    loaded = load_model(str(args.model))
    names, waves, failed = _read_clips(args.audio, loaded.sample_rate)
    refused = short_clips(loaded, waves, names)
    for message in refused.values():
        print(f"phonex: skipped: {message}", file=sys.stderr)
    names = [n for i, n in enumerate(names) if i not in refused]
    waves = [w for i, w in enumerate(waves) if i not in refused]
    for name, phones in zip(names, transcribe(loaded, waves, names) if waves else []):
        if args.json:
            print(json.dumps({"path": name, "phones": phones}, ensure_ascii=False))
        else:
            print(f"{name}\t{phones}")
    return 1 if failed or refused else 0


def _save_textgrid(path: Path, words: list, duration: float, result: dict, printed: bool) -> int:
    """Write the TextGrid once the alignment is printed; if that fails, name the path, and
    print the alignment as JSON too unless it already was, so that nothing computed is lost."""
    from phonex.align_corpus import textgrid_tiers
    from phonex.intervals import write_textgrid

    try:
        write_textgrid(path, textgrid_tiers(words, duration), duration)
    except OSError as err:
        if not printed:
            print(json.dumps(result, ensure_ascii=False, allow_nan=False))
        print(f"phonex align: error: cannot write the TextGrid {path}: {err.strerror or err}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def cmd_align(args: argparse.Namespace) -> int:
    calibration = None
    if args.calibration:  # phonex.boundaries imports pandas: only when asked for
        from phonex.boundaries import BoundaryCalibration

        calibration = BoundaryCalibration.load(args.calibration)
    wanted = ("--text", args.text) if args.audio else ("--out", args.out)
    if wanted[1] is None:
        print(f"phonex align: error: {wanted[0]} is required with "
              f"{'--audio' if args.audio else '--corpus'}", file=sys.stderr)  # fmt: skip
        return 2
    if args.corpus is not None:
        return _align_corpus(args, calibration)
    return _align_clip(args, calibration)


def _align_corpus(args: argparse.Namespace, calibration) -> int:
    """``phonex align --corpus``: every failed utterance named on stderr, exit status 1."""
    from phonex.align_corpus import AlignOptions, align_corpus

    options = AlignOptions(args.unknown, args.blanks, args.window_seconds, calibration=calibration)
    summary = align_corpus(args.model, args.corpus, args.out, args.batch_size, options,
                           overwrite=args.overwrite)  # fmt: skip
    counts = {s: sum(r["status"] == s for r in summary) for s in ("ok", "skipped", "failed")}
    for row in summary:
        if row["status"] == "failed":
            print(f"phonex align: failed: {row['reason']}", file=sys.stderr)
    print(f"{args.out}: {counts['ok']} aligned, {counts['skipped']} already done, "
          f"{counts['failed']} failed; summary in {args.out / 'summary.jsonl'}")  # fmt: skip
    return 1 if counts["failed"] else 0


def _align_clip(args: argparse.Namespace, calibration) -> int:
    from phonex.align import align
    from phonex.audio import load_audio
    from phonex.intervals import AlignmentError
    from phonex.models import load_model

    loaded = load_model(str(args.model))
    wave = load_audio(args.audio, loaded.sample_rate, allow_silence=True)
    try:
        words = align(loaded, wave, args.text, unknown=args.unknown,
                      window_seconds=args.window_seconds, blanks=args.blanks,
                      calibration=calibration)  # fmt: skip
    except AlignmentError as err:
        raise AlignmentError(f"{args.audio}: {err}") from None
    result = {"words": [w.to_json() for w in words]}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, allow_nan=False), flush=True)
    else:
        for word in words:
            phones = " ".join(f"{p}[{s:.2f}-{e:.2f}]" for p, s, e, _ in word.phones)
            print(f"{word.word}\t{word.start:.3f}\t{word.end:.3f}\t{phones}", flush=True)
    if args.textgrid:
        duration = len(wave) / loaded.sample_rate
        return _save_textgrid(args.textgrid, words, duration, result, printed=args.json)
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


def commands() -> dict:
    """Each subcommand's function, looked up when called (so a test can replace one)."""
    return {
        "synth": cmd_synth, "verify": cmd_verify, "train": cmd_train, "evaluate": cmd_evaluate,
        "recognize": cmd_recognize, "transcribe": cmd_transcribe, "align": cmd_align,
        "convert-ct2-whisper": cmd_convert_ct2_whisper, "doctor": cmd_doctor,
        "notebooks": cmd_notebooks,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done, 1 done with files skipped or not written, 2 bad
    input (argparse, or a phonex error naming the file and the problem), 130 Ctrl-C."""
    parser = build_parser(commands())
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"phonex {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise
        message = (
            f"{err.filename}: {err.strerror or err}" if getattr(err, "filename", None) else err
        )
        print(f"phonex {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
