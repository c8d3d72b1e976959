"""Atomic file writes: the one way phonex writes audio, TextGrids, manifests and caches."""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place.

    Readers never see a half-written file, a killed run leaves no partial file under the final
    name, and a failed write leaves the old file untouched. Parent folders are created.

    Raises:
        OSError: ``path`` is a folder (``IsADirectoryError``), a parent of it is a file, or the
            folder cannot be written (permissions, a full disk); ``err.filename`` is ``path``,
            not the temporary file the operating system complained about.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(str(tmp))
        os.replace(tmp, path)
    except FileExistsError as err:  # only mkdir raises it: a file stands where a folder goes
        problem = f"{err.filename} is a file, not a folder"
        raise NotADirectoryError(errno.ENOTDIR, problem, str(path)) from err
    except OSError as err:
        if err.errno is None or err.filename == str(path):
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        with contextlib.suppress(OSError):  # absent, or its folder never was
            tmp.unlink()


def write_cache(path: str | Path, text: str) -> bool:
    """Write a cache file atomically, or warn and go on when its folder cannot be written.

    A cache only saves time, so a read-only data folder must not stop (or lose) the work whose
    result it would have kept.

    Returns:
        True when the file was written.
    """
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    except OSError as err:
        warnings.warn(
            f"cache not written, going on without it: {err.filename}: {err.strerror or err}",
            stacklevel=2,
        )
        return False
    return True
