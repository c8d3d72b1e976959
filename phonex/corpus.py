"""One manifest format for every corpus, phone labels and speaker-disjoint splits.

Every corpus, synthetic or real, becomes a list of :class:`Utterance` rows saved as a JSONL or CSV
manifest. Audio and alignment paths are stored relative to the manifest's folder, so a data folder
can be moved or copied as a whole. Readers for real corpora live in :mod:`phonex.readers`;
reference alignments (:class:`Interval`, :func:`read_alignment`, :func:`write_textgrid`) in
:mod:`phonex.intervals` and are re-exported here.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import random
import typing
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from phonex.files import atomic_write
from phonex.intervals import AlignmentError, Interval, read_alignment, write_textgrid
from phonex.phonemes import PhonemizeError, phonemize, to_string

__all__ = [
    "FIELDS",
    "AlignmentError",
    "CorpusError",
    "Interval",
    "ManifestError",
    "Utterance",
    "add_phones",
    "audio_info",
    "check_disjoint",
    "file_checksum",
    "read_alignment",
    "read_manifest",
    "split_by_group",
    "utterance_from_audio",
    "write_manifest",
    "write_textgrid",
]

_PATH_FIELDS = ("audio", "alignment")


class CorpusError(ValueError):
    """Bad corpus input: a missing file, an unreadable label file or an impossible split."""


class ManifestError(CorpusError):
    """A manifest that cannot be written or read back; the message names the file and row."""


@dataclass
class Utterance:
    """One row of a manifest: a recording and everything known about it."""

    id: str
    audio: str  # path; absolute in memory, relative to the manifest on disk
    text: str
    phones: str  # pronunciation string "p1 p2 | p3"; "" when unknown
    speaker: str  # speaker or TTS voice
    engine: str  # "human" for real speech, else the TTS engine name
    augmentation: str  # "none" or a spec such as "speed=0.8+noise=pink@10"
    split: str  # "train", "dev", "test" or "" (unassigned)
    duration: float  # seconds
    sample_rate: int  # of the audio file
    checksum: str  # sha256 of the file bytes, first 16 hex digits
    alignment: str = ""  # optional reference alignment (TextGrid or TIMIT .phn)
    source: str = ""  # corpus or reader that produced the row


FIELDS = tuple(f.name for f in dataclasses.fields(Utterance))
_REQUIRED = {f.name for f in dataclasses.fields(Utterance) if f.default is dataclasses.MISSING}


def file_checksum(path: str | Path) -> str:
    """First 16 hex digits of the sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def audio_info(path: str | Path) -> tuple[float, int]:
    """Duration in seconds and sample rate of an audio file, read from its header.

    Raises:
        CorpusError: the file is missing or not audio that libsndfile can read.
    """
    if not Path(path).is_file():
        raise CorpusError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise CorpusError(f"{path}: cannot read audio header: {err}") from err
    return info.frames / info.samplerate, int(info.samplerate)


def utterance_from_audio(
    uid: str,
    audio: str | Path,
    text: str,
    speaker: str,
    **fields: str,
) -> Utterance:
    """Build a row for an audio file, measuring its duration, sample rate and checksum.

    Args:
        uid: utterance id, unique within a manifest.
        audio: path of the audio file (stored absolute).
        text: transcript.
        speaker: speaker or TTS voice.
        **fields: other string fields of :class:`Utterance` (``phones``, ``engine``,
            ``augmentation``, ``split``, ``alignment``, ``source``).

    Returns:
        The row; ``engine`` defaults to ``"human"`` and ``augmentation`` to ``"none"``.
    """
    audio = os.path.abspath(audio)
    duration, rate = audio_info(audio)
    values = {"phones": "", "engine": "human", "augmentation": "none", "split": "", **fields}
    if values.get("alignment"):
        values["alignment"] = os.path.abspath(values["alignment"])
    values.update(id=uid, audio=audio, text=text, speaker=speaker, checksum=file_checksum(audio))
    return Utterance(duration=duration, sample_rate=rate, **values)


def _check_unique(rows: Sequence[Utterance], where: str) -> None:
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise ManifestError(f"{where}: duplicate utterance id {row.id!r}")
        seen.add(row.id)


def write_manifest(rows: Sequence[Utterance], path: str | Path) -> Path:
    """Save rows as JSONL (``.jsonl``) or CSV (``.csv``), atomically.

    Audio and alignment paths are written relative to the manifest's folder with ``/``.

    Returns:
        The manifest path.
    """
    path = Path(path)
    if path.suffix not in (".jsonl", ".csv"):
        raise ManifestError(f"{path}: manifest must end in .jsonl or .csv")
    _check_unique(rows, str(path))
    base = os.path.abspath(path.parent)
    records = []
    for row in rows:
        record = dataclasses.asdict(row)
        for name in _PATH_FIELDS:
            if record[name]:
                relative = os.path.relpath(os.path.abspath(record[name]), base)
                record[name] = Path(relative).as_posix()
        records.append(record)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            if path.suffix == ".csv":
                writer = csv.DictWriter(handle, fieldnames=FIELDS)
                writer.writeheader()
                writer.writerows(records)
            else:
                handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)

    atomic_write(path, write)
    return path


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{path}: line {number}: malformed JSON: {err.msg}") from err
            if not isinstance(record, dict):
                raise ManifestError(f"{path}: line {number}: expected a JSON object")
            yield number, record


def _csv_records(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            if None in record or None in record.values():
                raise ManifestError(
                    f"{path}: line {reader.line_num}: number of values differs from the header"
                )
            yield reader.line_num, record


def _parse_record(record: dict, where: str, base: str) -> Utterance:
    """Check columns and types of one record and resolve its paths against ``base``."""
    unknown = sorted(set(record) - set(FIELDS))
    missing = sorted(_REQUIRED - set(record))
    if unknown or missing:
        raise ManifestError(f"{where}: unknown columns {unknown}, missing columns {missing}")
    hints = typing.get_type_hints(Utterance)
    values = {}
    for name, value in record.items():
        kind = hints[name]
        try:
            if kind is not str and not isinstance(value, bool):
                value = kind(value)
        except (TypeError, ValueError):
            pass
        if not isinstance(value, kind):
            raise ManifestError(f"{where}: column {name!r} must be {kind.__name__}: {value!r}")
        values[name] = value
    for name in _PATH_FIELDS:
        if values.get(name):
            values[name] = os.path.normpath(os.path.join(base, values[name]))
    return Utterance(**values)


def read_manifest(path: str | Path, check_files: bool = True) -> list[Utterance]:
    """Read a manifest written by :func:`write_manifest` (or by hand).

    Args:
        path: a ``.jsonl`` or ``.csv`` manifest.
        check_files: raise when an audio or alignment file of a row does not exist.

    Returns:
        The rows, with absolute audio and alignment paths.

    Raises:
        ManifestError: naming the manifest, the line and the problem (malformed line, unknown or
            missing column, wrong type, duplicate id, missing file).
    """
    path = Path(path)
    if path.suffix not in (".jsonl", ".csv"):
        raise ManifestError(f"{path}: manifest must end in .jsonl or .csv")
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    records = _csv_records(path) if path.suffix == ".csv" else _jsonl_records(path)
    base = os.path.abspath(path.parent)
    rows, first_line = [], {}
    for number, record in records:
        where = f"{path}: line {number} (id {record.get('id')!r})"
        row = _parse_record(record, where, base)
        if row.id in first_line:
            raise ManifestError(f"{where}: duplicate id, first on line {first_line[row.id]}")
        first_line[row.id] = number
        for name in _PATH_FIELDS if check_files else ():
            if getattr(row, name) and not os.path.isfile(getattr(row, name)):
                raise ManifestError(f"{where}: {name} file not found: {getattr(row, name)}")
        rows.append(row)
    return rows


def _speakable(text: str) -> str:
    """Lower-case all-capital transcripts (Kaldi, TIMIT .wrd): espeak-ng spells such words out."""
    return text.lower() if text.isupper() else text


def add_phones(rows: Sequence[Utterance], language: str = "en-us") -> list[Utterance]:
    """Fill empty ``phones`` by phonemizing the texts in one batched espeak-ng call.

    Rows that already have phones are kept as they are.

    Returns:
        New rows (the input is not changed).

    Raises:
        CorpusError: naming the row whose text is empty or phonemizes to nothing.
    """
    todo = [row for row in rows if not row.phones]
    for row in todo:
        if not row.text.strip():
            raise CorpusError(f"row {row.id!r}: empty text, cannot phonemize")
    try:
        prons = phonemize([_speakable(r.text) for r in todo], language) if todo else []
    except PhonemizeError:
        # find the offending row; only reached on failure, so one call per text is fine
        for row in todo:
            try:
                phonemize([_speakable(row.text)], language)
            except PhonemizeError as err:
                raise CorpusError(f"row {row.id!r}: {err}") from err
        raise
    filled = iter(to_string(pron) for pron in prons)  # in the order of ``todo``
    return [r if r.phones else dataclasses.replace(r, phones=next(filled)) for r in rows]


def _is_fraction(spec: object) -> bool:
    return isinstance(spec, (int, float)) and not isinstance(spec, bool)


def _draw(groups: list[str], spec: float, name: str, taken: set, rng: random.Random) -> set[str]:
    """``spec`` of all groups (at least one), drawn from those not ``taken``."""
    if not 0 <= spec < 1:
        raise CorpusError(f"{name} fraction must be in [0, 1), got {spec}")
    if spec == 0:
        return set()
    free = [g for g in groups if g not in taken]
    if not free:
        raise CorpusError(f"{name} split would be empty: every group is already assigned")
    rng.shuffle(free)
    return set(free[: max(1, round(spec * len(groups)))])


def _held_out(groups: list[str], key: str, specs: dict, seed: int) -> dict[str, set[str]]:
    """Groups of each held-out split; named groups are placed before fractions are drawn."""
    chosen: dict[str, set[str]] = {}
    for name, spec in specs.items():
        if isinstance(spec, str) or not (_is_fraction(spec) or isinstance(spec, Sequence)):
            raise CorpusError(f"{name} must be a list of {key} values or a fraction: {spec!r}")
        if not _is_fraction(spec):
            unknown = sorted(set(spec) - set(groups))
            if unknown:
                raise CorpusError(f"{name} {key} {unknown[0]!r} does not occur in the rows")
            twice = set(spec) & set().union(*chosen.values())
            if twice:
                raise CorpusError(f"{key} {min(twice)!r} is named for both test and dev")
            chosen[name] = set(spec)
    rng = random.Random(seed)
    for name, spec in specs.items():
        if _is_fraction(spec):
            chosen[name] = _draw(groups, float(spec), name, set().union(*chosen.values()), rng)
    return chosen


def split_by_group(
    rows: Sequence[Utterance],
    key: str = "speaker",
    test: Sequence[str] | float = 0.1,
    dev: Sequence[str] | float = 0.1,
    seed: int = 0,
) -> list[Utterance]:
    """Assign train/dev/test so that no group (speaker, voice, engine...) spans two splits.

    Args:
        rows: utterances to split.
        key: the :class:`Utterance` field whose values form the groups.
        test: explicit group values, or the fraction of groups to hold out (at least one group
            when positive; 0 or an empty list gives no test split).
        dev: as ``test``, drawn from the groups not in test.
        seed: seed of the random choice of groups.

    Returns:
        New rows with ``split`` set; every group not in test or dev is train.

    Raises:
        CorpusError: unknown key, a named group that does not exist or is named twice, a bad
            fraction, or a split (train included) that would be empty.
    """
    if key not in FIELDS:
        raise CorpusError(f"unknown group key {key!r}; fields are {FIELDS}")
    groups = sorted({str(getattr(row, key)) for row in rows})
    if not groups:
        raise CorpusError("no rows to split")
    chosen = _held_out(groups, key, {"test": test, "dev": dev}, seed)
    split_of = {g: "train" for g in groups}
    split_of.update({g: name for name, members in chosen.items() for g in members})
    if "train" not in split_of.values():
        raise CorpusError(f"train split would be empty: all {len(groups)} {key} groups held out")
    return [dataclasses.replace(r, split=split_of[str(getattr(r, key))]) for r in rows]


def check_disjoint(rows: Sequence[Utterance], key: str = "speaker") -> None:
    """Raise if a group of ``key`` has rows in two splits (unassigned rows are ignored).

    Raises:
        CorpusError: naming the group and its splits.
    """
    if key not in FIELDS:
        raise CorpusError(f"unknown group key {key!r}; fields are {FIELDS}")
    splits: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.split:
            splits[str(getattr(row, key))].add(row.split)
    for group, names in sorted(splits.items()):
        if len(names) > 1:
            raise CorpusError(f"{key} {group!r} occurs in several splits: {sorted(names)}")
