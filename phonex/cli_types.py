"""What the ``phonex`` command accepts: argparse types, and which errors are the user's.

The types reject a bad value (``--top 0``, ``--window-seconds -1``, a lexicon that does not exist)
in argparse, with exit status 2, before any model or audio loads.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

# The error classes that mean bad input (a file, a setting, a name, a missing tool), reported by
# main() in one line; any other exception is a bug and keeps its traceback. They are looked up in
# sys.modules when something fails: a module that was never imported raised nothing, and
# `phonex --help` stays free of torch.
USER_ERRORS = {
    "phonex.config": ("ConfigError",),
    "phonex.audio": ("AudioError",),
    "phonex.model_folder": ("ModelError",),
    "phonex.checkpoints": ("CheckpointError",),
    "phonex.lexicon": ("LexiconError",),
    "phonex.phonemes": ("PhonemizeError",),
    "phonex.espeak": ("EspeakError", "EspeakNotFoundError"),
    "phonex.intervals": ("AlignmentError",),
    "phonex.boundaries": ("CalibrationError",),
    "phonex.data": ("DataError",),
    "phonex.corpus": ("CorpusError",),
    "phonex.phonesets": ("UnknownPhoneError",),
    "phonex.ct2_whisper": ("CT2WhisperError",),
    "phonex.tts": ("EngineUnavailableError",),
    "phonex.train": ("TrainingError",),
}


def positive_int(text: str) -> int:
    """An integer of at least 1 (``--top``, ``--batch-size``, ``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (``--window-seconds``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def existing_file(text: str) -> Path:
    """A file that exists and is not a folder (settings, manifests, lexicons, audio)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, not a file")
    return path


def existing_dir(text: str) -> Path:
    """A folder that exists."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return path


def _check_writable_below(path: Path, text: str) -> None:
    """The nearest existing folder above ``path`` must be a folder this user can write in."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: folder {parent} cannot be written")


def output_file(text: str) -> Path:
    """A file to write: not a folder, below folders (existing or to be made) that can be written."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, not a file")
    _check_writable_below(path, text)
    return path


def output_dir(text: str) -> Path:
    """A folder to write in: an existing folder, or a new one where it can be made."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    if not path.exists():
        _check_writable_below(path, text)
    return path


def user_errors() -> tuple[type[Exception], ...]:
    """The :data:`USER_ERRORS` classes of the phonex modules imported so far, and ``OSError``."""
    found: list[type[Exception]] = [OSError]
    for module_name, names in USER_ERRORS.items():
        module = sys.modules.get(module_name)
        found += [getattr(module, name) for name in names] if module else []
    return tuple(found)
