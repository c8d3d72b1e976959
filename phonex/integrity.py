"""Corpus integrity: whole audio files, checksums against the manifest, one writer per folder.

A manifest records the sha256 prefix, duration and rate of every clip as it was written.
:func:`verify_rows` checks the files on disk against those rows (the training and evaluation
data path does so before it loads a clip, and ``phonex verify`` does it for a whole manifest), and
:func:`corpus_lock` keeps two builds from writing one corpus folder at the same time.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from phonex.corpus import CorpusError, Utterance, audio_info, file_checksum, read_manifest

LOCK_NAME = ".synth.lock"
_DURATION_TOLERANCE_S = 5e-4  # the manifest stores frames / rate; half a millisecond is slack


class CorpusLockedError(CorpusError):
    """Another process is writing the corpus folder."""


class IntegrityError(CorpusError):
    """Files on disk that disagree with their manifest; the message names each one."""


def wav_problem(path: str | Path) -> str:
    """What is wrong with a RIFF/WAVE file's structure ("" when it is whole).

    libsndfile reads a truncated WAV without complaint (fewer frames than its header declares),
    so the header's chunk sizes are compared with the file's size.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return "not a RIFF/WAVE file"
        declared = int.from_bytes(head[4:8], "little") + 8
        if declared > size:
            return f"truncated: its header declares {declared} bytes, the file has {size}"
        position = 12
        while position + 8 <= size:
            handle.seek(position)
            chunk = handle.read(8)
            length = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                end = position + 8 + length
                return "" if end <= size else f"truncated: data ends at byte {end} of {size}"
            position += 8 + length + (length & 1)
    return "no data chunk"


def audio_problem(path: str | Path) -> str:
    """Why an audio file cannot be used as it is ("" when it can): missing, truncated, unreadable."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    if path.suffix.lower() == ".wav":
        problem = wav_problem(path)
        if problem:
            return problem
    try:
        audio_info(path)
    except CorpusError as err:
        return str(err)
    return ""


def row_problems(row: Utterance, full: bool = True) -> list[str]:
    """Each way a row's files differ from what the row records, as ``"<file>: <problem>"``.

    Args:
        row: a manifest row.
        full: also check that the audio is whole, its duration and rate, and the alignment
            file; otherwise only the checksum (a missing file is left to whoever opens it).
    """
    if not full:
        if not row.checksum or not os.path.isfile(row.audio):
            return []
        actual = file_checksum(row.audio)
        return [] if actual == row.checksum else [_changed(row.audio, actual, row.checksum)]
    problem = audio_problem(row.audio)
    if problem:
        return [f"{row.audio}: {problem}"]
    problems = []
    if row.checksum:
        actual = file_checksum(row.audio)
        if actual != row.checksum:
            problems.append(_changed(row.audio, actual, row.checksum))
    duration, rate = audio_info(row.audio)
    if abs(duration - row.duration) > _DURATION_TOLERANCE_S or rate != row.sample_rate:
        problems.append(
            f"{row.audio}: {duration:.4f} s at {rate} Hz but the manifest says "
            f"{row.duration:.4f} s at {row.sample_rate} Hz"
        )
    if row.alignment and not os.path.isfile(row.alignment):
        problems.append(f"{row.alignment}: missing (alignment of {row.id!r})")
    return problems


def _changed(audio: str, actual: str, expected: str) -> str:
    return f"{audio}: checksum {actual} but the manifest says {expected}"


def verify_rows(rows: Sequence[Utterance], where: str = "manifest", full: bool = True) -> None:
    """Raise one :class:`IntegrityError` naming every file that differs from its row.

    Args:
        rows: manifest rows; a row with an empty ``checksum`` is checked for everything else.
        where: what the rows came from, for the message (usually the manifest's path).
        full: every check of :func:`row_problems`, or the checksums only.
    """
    problems = [p for row in rows for p in row_problems(row, full)]
    if problems:
        listed = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise IntegrityError(
            f"{where}: {len(problems)} file(s) differ from the manifest (a `phonex synth` corpus: "
            f"rerun the same build, it writes them again):\n  {listed}{more}"
        )


def verify_manifest(path: str | Path) -> list[Utterance]:
    """Read a manifest and check every file against it (:func:`verify_rows`).

    Returns:
        The rows, when every file matches.

    Raises:
        ManifestError: the manifest itself is malformed.
        IntegrityError: naming each missing, truncated or changed file.
    """
    rows = read_manifest(path, check_files=False)
    verify_rows(rows, str(path))
    return rows


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid else "a process that has not written its pid yet"


@contextmanager
def corpus_lock(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on a corpus folder, or fail at once naming the holder.

    The lock is ``fcntl.flock`` on ``<folder>/.synth.lock``, which holds the pid of the owner; the
    kernel releases it when the owner exits, however it exits, so a stale file never blocks.

    Raises:
        CorpusLockedError: another process holds the lock.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CorpusLockedError(
                f"{folder} is being written by another phonex synth ({_holder(path)}); "
                "wait for it to finish or stop it, then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # releases the lock
