"""Drug names (``data/drugs.csv``) and ISMP look-alike/sound-alike pairs (``data/lasa_pairs.csv``)
shipped with phonex, user lexicon files, and their espeak-ng pronunciations, cached."""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

from phonex import config, phonemes
from phonex.espeak import find_espeak
from phonex.files import atomic_write

DRUG_KINDS = ("generic", "brand")
PAIR_KINDS = ("sound-alike", "look-alike", "both")


class LexiconError(ValueError):
    """A lexicon file or entry that cannot be used; the message names the file/line or word."""


@dataclass(frozen=True)
class DrugName:
    """One lexicon entry: a generic name (``generic == name``) or a brand and its generic."""

    name: str
    kind: str
    generic: str


def _read_rows(path: Path, header: list[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """Yield ``(line number, stripped row)`` of a CSV file, checking header and field count."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != header:
            raise LexiconError(f"{path}: header is {reader.fieldnames}, expected {header}")
        for row in reader:
            if None in row or None in row.values():
                raise LexiconError(f"{path}:{reader.line_num}: expected {len(header)} fields")
            yield reader.line_num, {k: v.strip() for k, v in row.items()}


def load_drugs(path: str | Path | None = None) -> list[DrugName]:
    """Read a drug lexicon CSV (``name,kind,generic``); errors name the file and line.

    Args:
        path: the CSV; default the packaged ``phonex/data/drugs.csv``. A bad header, empty field,
            unknown kind or repeated name (case-insensitive) raises :class:`LexiconError`.

    Returns:
        The entries in file order.
    """
    path = Path(path) if path else config.PACKAGE_DATA_DIR / "drugs.csv"
    drugs, first_line = [], {}
    for line, row in _read_rows(path, ["name", "kind", "generic"]):
        name, kind, generic = row["name"], row["kind"], row["generic"]
        where = f"{path}:{line}"
        if not name or not generic:
            raise LexiconError(f"{where}: empty name or generic")
        if kind not in DRUG_KINDS:
            raise LexiconError(f"{where}: kind {kind!r} of {name!r} is not one of {DRUG_KINDS}")
        if kind == "generic" and generic != name:
            raise LexiconError(f"{where}: generic {name!r} must list itself as its generic")
        if name.casefold() in first_line:
            first = first_line[name.casefold()]
            raise LexiconError(f"{where}: duplicate name {name!r} (lines {first} and {line})")
        first_line[name.casefold()] = line
        drugs.append(DrugName(name, kind, generic))
    return drugs


def load_lasa_pairs(path: str | Path | None = None) -> list[tuple[str, str]]:
    """Read look-alike/sound-alike pairs (``name_a,name_b,kind,source``).

    Args:
        path: the CSV; default the packaged ``phonex/data/lasa_pairs.csv``. A bad header or kind,
            empty source, repeated pair or a name not in the packaged lexicon raises
            :class:`LexiconError` naming the file and line.

    Returns:
        ``(name_a, name_b)`` pairs in file order, spelled as in the lexicon.
    """
    path = Path(path) if path else config.PACKAGE_DATA_DIR / "lasa_pairs.csv"
    known = {d.name.casefold(): d.name for d in load_drugs()}
    pairs, seen = [], set()
    for line, row in _read_rows(path, ["name_a", "name_b", "kind", "source"]):
        where = f"{path}:{line}"
        if row["kind"] not in PAIR_KINDS or not row["source"]:
            raise LexiconError(f"{where}: kind not one of {PAIR_KINDS}, or empty source")
        for name in (row["name_a"], row["name_b"]):
            if name.casefold() not in known:
                raise LexiconError(f"{where}: {name!r} is not in the drug lexicon")
        a, b = known[row["name_a"].casefold()], known[row["name_b"].casefold()]
        key = frozenset((a, b))
        if len(key) == 1 or key in seen:
            raise LexiconError(f"{where}: pair {a!r}/{b!r} pairs a name with itself or repeats")
        seen.add(key)
        pairs.append((a, b))
    return pairs


def read_lexicon_file(path: str | Path) -> list[str]:
    """Read a user lexicon: one word or multi-word name a line, ``#`` comments, blank lines.

    Args:
        path: a UTF-8 text file (a byte-order mark is dropped). Repeats (case-insensitive) are
            dropped with a warning; a folder, a file that is not UTF-8 (the message gives the
            line) or a file without entries raises :class:`LexiconError` naming it.

    Returns:
        The entries in file order, stripped; of repeats, the first spelling.
    """
    path, entries, repeats = Path(path), {}, []
    for line in _read_text(path).splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry and entry.casefold() in entries:
            repeats.append(entry)
        elif entry:
            entries[entry.casefold()] = entry
    if not entries:
        raise LexiconError(f"{path}: the lexicon has no entries (only blank lines or comments)")
    if repeats:
        listed = ", ".join(phonemes.brief(r) for r in repeats[:10])
        more = f" and {len(repeats) - 10} more" if len(repeats) > 10 else ""
        warnings.warn(
            f"{path}: repeated entries dropped, first kept: {listed}{more}", stacklevel=2
        )
    return list(entries.values())


def _read_text(path: Path) -> str:
    """A UTF-8 text file without its byte-order mark; :class:`LexiconError` says what is wrong."""
    if path.is_dir():
        raise LexiconError(f"{path}: is a folder, not a lexicon file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LexiconError(f"{path}: cannot read the lexicon: {err.strerror or err}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise LexiconError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the lexicon "
            "as UTF-8"
        ) from None


@lru_cache(maxsize=1)
def _engine_version() -> str:
    """phonemizer and espeak-ng versions: a new espeak-ng may pronounce a name differently."""
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    found = find_espeak()
    EspeakWrapper.set_library(found.library)
    EspeakWrapper.set_data_path(found.data)  # None: the library's default, as phonemes does
    return f"phonemizer {version('phonemizer')}, espeak-ng {EspeakWrapper().version} {found}"


def _phonemize_all(names: list[str], language: str) -> tuple[dict[str, str], list[str]]:
    """Pronunciations and the names that phonemize to nothing (halves retried only on failure)."""
    try:
        prons = phonemes.phonemize(names, language) if names else []
        return {n: phonemes.to_string(p) for n, p in zip(names, prons)}, []
    except phonemes.PhonemizeError:
        if len(names) == 1:
            return {}, list(names)
        half = len(names) // 2
        (r1, f1), (r2, f2) = (_phonemize_all(n, language) for n in (names[:half], names[half:]))
        return {**r1, **r2}, f1 + f2


def _read_cache(cache: Path, names: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The cached pronunciations of exactly ``names``; ``None``: none, damaged or partial."""
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        result, failed = cached["pronunciations"], cached["failed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    complete = (
        isinstance(result, dict) and isinstance(failed, list)
        and all(isinstance(v, str) and v.split() for v in result.values())
        and sorted([*result, *failed]) == sorted(names)
    )  # fmt: skip
    return (result, failed) if complete else None


def _phonemize_cached(
    names: list[str], language: str, cache_dir: str | Path | None
) -> tuple[dict[str, str], list[str]]:
    """:func:`_phonemize_all` through a JSON cache; an unwritable cache warns and is skipped."""
    digest = hashlib.sha256(json.dumps([names, language, _engine_version()]).encode()).hexdigest()
    cache = Path(cache_dir or config.INTERIM_DIR / "lexicon") / f"{language}-{digest[:20]}.json"
    cached = _read_cache(cache, names)
    if cached is not None:
        return cached
    result, failed = _phonemize_all(names, language)
    text = json.dumps({"pronunciations": result, "failed": failed}, ensure_ascii=False)
    try:
        atomic_write(cache, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    except OSError as err:
        warnings.warn(
            f"cannot write the pronunciation cache {cache} ({err.strerror or err}); going on "
            "without it",
            stacklevel=3,
        )
    return result, failed


def pronounce(
    names: Iterable[str], language: str = "en-us", cache_dir: str | Path | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Pronounce names with espeak-ng in one batched call, cached; say why any cannot be.

    Args:
        names: words or multi-word names.
        language: an espeak-ng voice such as ``en-us``.
        cache_dir: default ``INTERIM_DIR / "lexicon"``; the file is keyed by a hash of the
            names, the language and the phonemizer/espeak-ng versions. A cache that lacks any
            of the names is recomputed; one that cannot be written is skipped with a warning.

    Returns:
        ``{name: "p1 p2 | p3"}`` in input order (format of :func:`phonex.phonemes.to_string`),
        and ``{name: reason}`` for each name refused by :func:`phonex.phonemes.text_problem`
        (e.g. non-Latin letters) or that phonemizes to nothing.
    """
    names = list(dict.fromkeys(names))
    problems = {n: why for n in names if (why := phonemes.text_problem(n, language))}
    todo = [n for n in names if n not in problems]
    result, failed = _phonemize_cached(todo, language, cache_dir) if todo else ({}, [])
    problems.update({n: f"phonemizes to nothing in espeak-ng {language!r}" for n in failed})
    return (
        {n: result[n] for n in names if n in result},
        {n: problems[n] for n in names if n in problems},
    )


def pronunciations(
    names: Iterable[str],
    language: str = "en-us",
    cache_dir: str | Path | None = None,
    on_error: str = "raise",
) -> dict[str, str]:
    """Pronounce names with espeak-ng in one batched call, cached as JSON (see :func:`pronounce`).

    Args:
        names: words or multi-word names.
        language: an espeak-ng voice such as ``en-us``.
        cache_dir: default ``INTERIM_DIR / "lexicon"``.
        on_error: for a name espeak-ng would not read as written or that phonemizes to
            nothing, ``"raise"`` (:class:`LexiconError` naming it and why) or ``"skip"`` (warn
            naming them, leave them out).

    Returns:
        ``{name: "p1 p2 | p3"}`` in input order (format of :func:`phonex.phonemes.to_string`).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    result, problems = pronounce(names, language, cache_dir)
    listed = "; ".join(f"{phonemes.brief(n)}: {why}" for n, why in list(problems.items())[:10])
    if problems and on_error == "raise":
        raise LexiconError(f"cannot pronounce {listed}")
    if problems:
        more = f" and {len(problems) - 10} more" if len(problems) > 10 else ""
        warnings.warn(f"skipped {len(problems)} name(s): {listed}{more}", stacklevel=2)
    return result
