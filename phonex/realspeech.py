"""Real human speech as manifests: every corpus of the shared data folder, and TIMIT kept out.

:func:`corpus_rows` reads one corpus of ``phonex.config.SHARED_DATA_DIR`` (or any folder laid
out the same way) with phones from its transcript through the phonemizer and a split;
:func:`training_rows` gathers every corpus meant for training and reports, instead of failing
on, a corpus that is absent or unreadable. TIMIT (``timit-sample-dev``) is the hand-labelled
reference that alignment and probes are measured on: :func:`check_no_timit` refuses a training
set that holds any of its recordings, by path, by source and by audio checksum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from phonex.corpus import CorpusError, Utterance, add_phones, file_checksum, split_by_group
from phonex.readers import (
    read_fsdd,
    read_ljspeech,
    read_speechbrain,
    read_timit,
    read_transcribed_folder,
    speechocean_rows,
)

TIMIT_FOLDER = "timit-sample-dev"
# Corpora fine-tuning may train on; speechbrain-samples is left out because its reference phone
# ends score alignment (benchmarks/bench_alignment.py), and TIMIT is never trained on.
TRAINING_CORPORA = (
    "speechocean762-train", "ljspeech-32", "fsdd", "pocketsphinx-testdata", "mfa-samples",
)  # fmt: skip


def _fsdd(folder: Path, language: str) -> list[Utterance]:
    # one speaker of six for test, one for dev: digits are scored on voices never heard
    rows = add_phones(read_fsdd(folder), language)
    return split_by_group(rows, "speaker", test=0.2, dev=0.2, seed=0)


def _all_train(reader: Callable[[Path], list[Utterance]]):
    """Corpora too small (or with one speaker) to hold speakers out: every row is train."""

    def read(folder: Path, language: str) -> list[Utterance]:
        rows = add_phones(reader(folder), language)
        return split_by_group(rows, "speaker", test=0, dev=0)

    return read


_READERS: dict[str, Callable[[Path, str], list[Utterance]]] = {
    "speechocean762-train": lambda folder, language: speechocean_rows(folder, language),
    "ljspeech-32": _all_train(read_ljspeech),
    "fsdd": _fsdd,
    "pocketsphinx-testdata": _all_train(
        lambda folder: read_transcribed_folder(folder, "pocketsphinx")
    ),
    "mfa-samples": _all_train(lambda folder: read_transcribed_folder(folder, "mfa")),
    "speechbrain-samples": _all_train(read_speechbrain),
    TIMIT_FOLDER: lambda folder, language: add_phones(read_timit(folder), language),
}
CORPORA = tuple(_READERS)


def corpus_rows(name: str, root: str | Path, language: str = "en-us") -> list[Utterance]:
    """Rows of one shared-data corpus, with phonemizer phones and a split.

    Splits: speechocean762 holds out whole speakers (:func:`phonex.readers.speechocean_rows`),
    FSDD one speaker for test and one for dev (seed 0); the others are all ``train``. TIMIT rows
    keep TIMIT's own ``.phn`` labels as phones and no split: it is never trained on.

    Args:
        name: one of :data:`CORPORA` (the corpus's folder name).
        root: the shared data folder that holds it.
        language: espeak-ng voice that phonemizes the transcripts.

    Raises:
        CorpusError: an unknown name, a missing folder or a file that cannot be read.
    """
    if name not in _READERS:
        raise CorpusError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    folder = Path(root) / name
    if not folder.is_dir():
        raise CorpusError(f"corpus folder not found: {folder}")
    return _READERS[name](folder, language)


def training_rows(
    root: str | Path,
    corpora: Sequence[str] = TRAINING_CORPORA,
    language: str = "en-us",
) -> tuple[list[Utterance], dict[str, str]]:
    """All real training speech found under ``root``, TIMIT refused.

    Args:
        root: the shared data folder (``phonex.config.SHARED_DATA_DIR``).
        corpora: corpus folder names to read.
        language: espeak-ng voice for the phones.

    Returns:
        The rows of every corpus that could be read, and a report per corpus: ``"N rows"``,
        ``"absent: <folder>"`` or ``"error: <message>"``; a missing or broken corpus does not
        stop the others.

    Raises:
        CorpusError: a TIMIT corpus is asked for, or a row is a TIMIT recording.
    """
    if TIMIT_FOLDER in corpora:
        raise CorpusError(f"{TIMIT_FOLDER} is the evaluation reference and is never trained on")
    rows: list[Utterance] = []
    report: dict[str, str] = {}
    for name in corpora:
        folder = Path(root) / name
        if not folder.is_dir():
            report[name] = f"absent: {folder}"
            continue
        try:
            found = corpus_rows(name, root, language)
        except CorpusError as err:
            report[name] = f"error: {err}"
            continue
        rows += found
        report[name] = f"{len(found)} rows"
    check_no_timit(rows, Path(root) / TIMIT_FOLDER)
    return rows, report


def check_no_timit(rows: Sequence[Utterance], timit_root: str | Path | None = None) -> None:
    """Raise if any row is TIMIT speech: TIMIT source, a ``.phn`` alignment, a path through a
    folder whose name starts with TIMIT, or (when ``timit_root`` exists) the same audio bytes as
    a TIMIT recording, so a renamed copy is caught too.

    Raises:
        CorpusError: naming the first TIMIT row and why.
    """
    checksums: set[str] = set()
    if timit_root is not None and Path(timit_root).is_dir():
        checksums = {file_checksum(p) for p in Path(timit_root).rglob("*")
                     if p.suffix.lower() == ".wav"}  # fmt: skip
    for row in rows:
        reasons = [
            "its source is TIMIT" if row.source == "timit" else "",
            "its alignment is a TIMIT .phn" if row.alignment.lower().endswith(".phn") else "",
            "its path runs through a TIMIT folder"
            if any(part.lower().startswith("timit") for part in Path(row.audio).parts) else "",
            "its audio is a TIMIT recording" if row.checksum in checksums else "",
        ]  # fmt: skip
        reasons = [r for r in reasons if r]
        if reasons:
            raise CorpusError(f"row {row.id!r} ({row.audio}) is TIMIT speech: "
                              f"{'; '.join(reasons)}; TIMIT is never trained on")  # fmt: skip


def write_training_manifest(out: str | Path, root: str | Path, language: str = "en-us"):
    """:func:`training_rows` written as a manifest; returns its path and the report."""
    from phonex.corpus import write_manifest

    rows, report = training_rows(root, language=language)
    if not rows:
        raise CorpusError(f"{root}: no real training speech found: {report}")
    return write_manifest(rows, out), report
