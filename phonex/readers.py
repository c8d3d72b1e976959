"""Readers that turn real speech corpora into manifest rows (:class:`phonex.corpus.Utterance`).

Each reader takes the corpus folder, returns rows with ``engine="human"`` and ``source`` set to the
corpus name, and fills ``phones`` only when the corpus ships phone labels (TIMIT ``.phn`` labels,
ARPAbet in Kaldi ``text-phone``); these are the corpus's own symbols, not espeak-ng IPA. Missing or
malformed files raise :class:`phonex.corpus.CorpusError` naming the file.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from phonex.corpus import CorpusError, Utterance, read_alignment, utterance_from_audio

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_FSDD_NAME = re.compile(r"(\d)_([^_]+)_(\d+)")
_POSITION = re.compile(r"_[BIES]$")  # Kaldi word-position suffix of a phone: AO0_I -> AO0


def _build(specs: list[dict[str, Any]], source: str, root: Path) -> list[Utterance]:
    """Measure every file (threads: the work is file I/O) and check ids are unique."""
    if not specs:
        raise CorpusError(f"{root}: no utterances found for a {source} corpus")
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        rows = list(pool.map(lambda spec: utterance_from_audio(**spec, source=source), specs))
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise CorpusError(f"{root}: utterance id {row.id!r} occurs twice ({row.audio})")
        seen.add(row.id)
    return rows


def _lines(path: Path) -> list[tuple[int, str]]:
    """Numbered non-blank lines of a text file, which must exist."""
    if not path.is_file():
        raise CorpusError(f"file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]


def _read_table(path: Path) -> dict[str, str]:
    """A Kaldi-style ``key value...`` file as a dict; duplicate keys and bare keys are errors."""
    table: dict[str, str] = {}
    for number, line in _lines(path):
        parts = line.split(maxsplit=1)
        if len(parts) < 2:
            raise CorpusError(f"{path}: line {number}: expected 'id value', got {line!r}")
        if parts[0] in table:
            raise CorpusError(f"{path}: line {number}: id {parts[0]!r} occurs twice")
        table[parts[0]] = parts[1]
    return table


def _sibling(folder: Path, base: str, ext: str) -> Path | None:
    """``folder/base.ext`` in lower or upper case (TIMIT ships both), if it exists."""
    return next((p for e in (ext, ext.upper()) if (p := folder / f"{base}{e}").is_file()), None)


def read_timit(root: str | Path) -> list[Utterance]:
    """Read a TIMIT-style tree: ``speaker/NAME.wav`` next to ``NAME.phn``, ``.wrd``, ``.txt``.

    The id is ``{speaker}_{NAME}``; phones are the ``.phn`` labels (TIMIT symbols) separated by
    spaces, alignment is the ``.phn`` path, text comes from ``.txt`` or else ``.wrd``. A folder
    named ``train``/``test`` above the speaker sets ``split``. For ``NAME.WAV.wav`` copies of
    NIST files only one file per NAME is used.

    Args:
        root: top of the tree.

    Returns:
        One row per recording.
    """
    root = Path(root)
    found: dict[tuple[Path, str], Path] = {}
    for wav in sorted(root.rglob("*")):
        if wav.suffix.lower() == ".wav" and wav.is_file():
            found.setdefault((wav.parent, wav.name.split(".")[0]), wav)
    specs = []
    for (folder, base), wav in found.items():
        phn, wrd, txt = (_sibling(folder, base, ext) for ext in (".phn", ".wrd", ".txt"))
        if txt is not None:
            # .txt is "start end transcript", with sample offsets
            text = " ".join(txt.read_text(encoding="utf-8").split()[2:])
        elif wrd is not None:
            text = " ".join(i.label for i in read_alignment(wrd)["words"])
        else:
            raise CorpusError(f"{wav}: no {base}.txt or {base}.wrd transcript next to it")
        phones = [i.label for i in read_alignment(phn)["phones"]] if phn else []
        parts = [p.lower() for p in folder.relative_to(root).parts]
        split = next((p for p in parts if p in ("train", "test")), "")
        specs.append(
            {
                "uid": f"{folder.name}_{base}",
                "audio": wav,
                "text": text,
                "speaker": folder.name,
                "phones": " ".join(phones),
                "alignment": str(phn or ""),
                "split": split,
            }
        )
    return _build(specs, "timit", root)


def _kaldi_audio(scp: Path, uid: str, entry: str, bases: list[Path]) -> Path:
    """Resolve one wav.scp entry to an existing audio file."""
    if entry.endswith("|") or re.search(r"\.ark:\d+$", entry):
        raise CorpusError(
            f"{scp}: utterance {uid!r} is read through a command or archive ({entry!r}); only "
            "plain audio paths are supported: write the audio to files (sox/ffmpeg) first"
        )
    for base in bases:
        candidate = Path(entry) if os.path.isabs(entry) else base / entry
        if candidate.is_file():
            return candidate
    raise CorpusError(
        f"{scp}: audio of {uid!r} not found: {entry!r} (looked in {', '.join(map(str, bases))})"
    )


def _read_word_phones(path: Path) -> dict[str, str]:
    """speechocean762 ``text-phone`` (``UTT.WORD phones``) -> pronunciation string per utterance."""
    words: dict[str, list[tuple[int, str]]] = {}
    for key, phones in _read_table(path).items():
        uid, _, index = key.rpartition(".")
        if not uid or not index.isdigit():
            raise CorpusError(f"{path}: key {key!r} is not 'utterance.word_index'")
        phones = " ".join(_POSITION.sub("", p) for p in phones.split())
        words.setdefault(uid, []).append((int(index), phones))
    return {uid: " | ".join(p for _, p in sorted(items)) for uid, items in words.items()}


def read_kaldi(
    folder: str | Path,
    audio_root: str | Path | None = None,
    phones_file: str | None = "text-phone",
) -> list[Utterance]:
    """Read a Kaldi data folder: ``wav.scp`` (plain paths), ``text`` and, if present, ``utt2spk``.

    Args:
        folder: the data folder.
        audio_root: folder that relative wav.scp paths start from; by default the data folder
            (as in speechocean762), then the working directory (Kaldi recipes).
        phones_file: per-word phone file in the data folder (speechocean762's ``text-phone``,
            ARPAbet); position suffixes ``_B/_I/_E/_S`` are dropped. ``None`` or a missing file
            leaves phones empty.

    Returns:
        One row per wav.scp entry; speaker is the utterance id when there is no ``utt2spk``.
    """
    folder = Path(folder)
    if (folder / "segments").is_file():
        raise CorpusError(f"{folder / 'segments'}: Kaldi segments are not supported")
    scp = folder / "wav.scp"
    texts = _read_table(folder / "text")
    speakers = _read_table(folder / "utt2spk") if (folder / "utt2spk").is_file() else {}
    phones_path = folder / phones_file if phones_file else None
    phones = _read_word_phones(phones_path) if phones_path and phones_path.is_file() else {}
    bases = [Path(audio_root)] if audio_root is not None else [folder, Path.cwd()]
    specs = []
    for uid, entry in _read_table(scp).items():
        if uid not in texts:
            raise CorpusError(f"{folder / 'text'}: no transcript for {uid!r} of {scp}")
        specs.append(
            {
                "uid": uid,
                "audio": _kaldi_audio(scp, uid, entry, bases),
                "text": texts[uid],
                "speaker": speakers.get(uid, uid),
                "phones": phones.get(uid, ""),
            }
        )
    return _build(specs, "kaldi", folder)


def speechocean_rows(source: str | Path, language: str = "en-gb") -> list[Utterance]:
    """speechocean762 (a Kaldi folder) with phones from the phonemizer and whole speakers held
    out (15 % test, 10 % dev, seed 0): the one speaker-disjoint split every user shares."""
    import dataclasses

    from phonex.corpus import add_phones, split_by_group

    rows = [dataclasses.replace(r, source="speechocean762")
            for r in read_kaldi(source, phones_file=None)]  # fmt: skip
    rows = add_phones(rows, language)
    return split_by_group(rows, "speaker", test=0.15, dev=0.1, seed=0)


def speechocean_manifest(source: str | Path, out: str | Path, language: str = "en-gb") -> Path:
    """:func:`speechocean_rows` written as a phonex manifest."""
    from phonex.corpus import write_manifest

    return write_manifest(speechocean_rows(source, language), out)


def read_ljspeech(root: str | Path) -> list[Utterance]:
    """Read LJ Speech: ``metadata.csv`` (``id|text|normalized``) or ``*.psv`` (``id|text``).

    The normalized text is used when present. Audio is ``wavs/{id}.wav`` or ``{id}.wav``.

    Returns:
        One row per transcript line, speaker ``"LJ"``.
    """
    root = Path(root)
    tables = [root / "metadata.csv"] if (root / "metadata.csv").is_file() else []
    tables = tables or sorted(root.glob("*.psv"))
    if not tables:
        raise CorpusError(f"{root}: no metadata.csv or *.psv transcript table")
    wav_dir = root / "wavs" if (root / "wavs").is_dir() else root
    specs = []
    for table in tables:
        for number, line in _lines(table):
            fields = line.split("|")
            if len(fields) < 2 or not fields[0]:
                raise CorpusError(f"{table}: line {number}: expected 'id|text', got {line!r}")
            text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
            specs.append(
                {
                    "uid": fields[0],
                    "audio": wav_dir / f"{fields[0]}.wav",
                    "text": text.strip(),
                    "speaker": "LJ",
                }
            )
    return _build(specs, "ljspeech", root)


def read_fsdd(root: str | Path) -> list[Utterance]:
    """Read the Free Spoken Digit Dataset: ``recordings/{digit}_{speaker}_{n}.wav``.

    Returns:
        One row per recording; text is the digit as an English word ("zero".."nine").
    """
    root = Path(root)
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    specs = []
    for wav in sorted(folder.glob("*.wav")):
        match = _FSDD_NAME.fullmatch(wav.stem)
        if match is None:
            raise CorpusError(f"{wav}: FSDD file names are {{digit}}_{{speaker}}_{{n}}.wav")
        specs.append(
            {
                "uid": wav.stem,
                "audio": wav,
                "text": DIGIT_WORDS[int(match[1])],
                "speaker": match[2],
            }
        )
    return _build(specs, "fsdd", root)


def _textgrid_text(path: Path, words_tier: str) -> str:
    """Transcript of a TextGrid: its words tier, else every non-phone tier in time order."""
    tiers = read_alignment(path)
    if words_tier in tiers:
        intervals = tiers[words_tier]
    else:
        # MFA names transcript tiers after speakers when there is no words/phones pair
        kept = [t for name, t in tiers.items() if "phone" not in name.lower()]
        intervals = sorted((i for tier in kept for i in tier), key=lambda i: i.start)
    if not intervals:
        raise CorpusError(f"{path}: no words tier ({words_tier!r}) or transcript tier with text")
    return " ".join(i.label.strip() for i in intervals)


def read_textgrid_folder(root: str | Path, words_tier: str = "words") -> list[Utterance]:
    """Read audio files that have a ``.TextGrid`` of the same stem anywhere under ``root``.

    Audio without a TextGrid is skipped. Speaker is the audio's folder name (MFA's layout).

    Args:
        root: corpus folder (searched recursively; audio and TextGrids may sit in different
            subfolders, as in MFA's test data).
        words_tier: tier whose labels give the text.

    Returns:
        One row per paired audio file, alignment = the TextGrid.
    """
    root = Path(root)
    grids: dict[str, Path] = {}
    for grid in sorted(root.rglob("*")):
        if grid.suffix.lower() == ".textgrid":
            if grid.stem in grids:
                raise CorpusError(f"two TextGrids for {grid.stem!r}: {grids[grid.stem]}, {grid}")
            grids[grid.stem] = grid
    specs = [
        {
            "uid": audio.stem,
            "audio": audio,
            "text": _textgrid_text(grids[audio.stem], words_tier),
            "speaker": audio.parent.name,
            "alignment": str(grids[audio.stem]),
        }
        for audio in sorted(root.rglob("*"))
        if audio.suffix.lower() in AUDIO_SUFFIXES and audio.stem in grids
    ]
    return _build(specs, "textgrid", root)


_SPHINX_LINE = re.compile(r"^(?:<s>\s*)?(.*?)\s*(?:</s>)?\s*\(([^()\s]+)\)$")
_NOT_WORDS = re.compile(r"\[[^\]]*\]|<[^>]*>")  # [laughter], <unk>, <s>: not spoken words
_TIMED_LINE = re.compile(r"^\s*[-\d.]+\s+[-\d.]+(\s|$)")  # "0.23 6.76 speech": labels, no text


def _sphinx_transcripts(root: Path) -> dict[str, str]:
    """``<s> text </s> (id)`` lines of every sphinx ``*transcription`` file under ``root``."""
    texts: dict[str, str] = {}
    for table in sorted(root.rglob("*transcription")):
        for number, line in _lines(table):
            match = _SPHINX_LINE.match(line)
            if match is None:
                raise CorpusError(f"{table}: line {number}: expected '<s> text </s> (id)'")
            texts[match[2]] = match[1]
    return texts


def _plain_text(path: Path) -> str | None:
    """A ``.lab``/``.txt`` transcript without non-words, or None when it holds timed labels."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if any(_TIMED_LINE.match(line) for line in text.splitlines()):
        return None
    return " ".join(_NOT_WORDS.sub(" ", text).split()) or None


def read_transcribed_folder(root: str | Path, source: str = "transcribed") -> list[Utterance]:
    """Audio files under ``root`` that have a transcript; the others are skipped.

    A transcript is a ``.lab`` or ``.txt`` of the same stem anywhere under ``root`` (MFA keeps
    them in a folder beside the audio; ``.lab`` wins), or a line of a sphinx ``*transcription``
    file (pocketsphinx's test data). Files of timed labels (``start end label``, pocketsphinx's
    voice-activity ``.lab``) are not transcripts; bracketed non-words (``[laughter]``,
    ``<unk>``) are dropped from the text. Speaker is the audio's folder name.

    Args:
        root: corpus folder.
        source: corpus name for the rows.

    Returns:
        One row per transcribed audio file.
    """
    root = Path(root)
    texts = _sphinx_transcripts(root)
    found = sorted(root.rglob("*"), key=lambda p: (p.suffix.lower() != ".lab", str(p)))
    for path in found:
        if path.suffix.lower() in (".lab", ".txt") and path.stem not in texts:
            text = _plain_text(path)
            if text:
                texts[path.stem] = text
    specs = [
        {"uid": audio.stem, "audio": audio, "text": texts[audio.stem],
         "speaker": audio.parent.name}
        for audio in sorted(root.rglob("*"))
        if audio.suffix.lower() in AUDIO_SUFFIXES and audio.stem in texts
    ]  # fmt: skip
    return _build(specs, source, root)


def read_speechbrain(root: str | Path) -> list[Utterance]:
    """speechbrain's test samples: ``annotation/*.json`` entries with ``wav``, ``wrd``, ``spk_id``.

    ``{data_root}`` in a ``wav`` path is the ``ASR`` folder. An id in several files is read once.

    Returns:
        One row per utterance; text is ``wrd``.
    """
    import json

    root = Path(root)
    specs: dict[str, dict[str, Any]] = {}
    for table in sorted((root / "annotation").glob("*.json")):
        try:
            entries = json.loads(table.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise CorpusError(f"{table}: malformed JSON: {err.msg}") from err
        for uid, entry in entries.items():
            if uid in specs or not {"wav", "wrd"} <= set(entry):
                continue
            audio = entry["wav"].replace("{data_root}", str(root / "ASR"))
            specs[uid] = {"uid": uid, "audio": Path(audio), "text": entry["wrd"],
                          "speaker": entry.get("spk_id", uid)}  # fmt: skip
    return _build(list(specs.values()), "speechbrain", root)
