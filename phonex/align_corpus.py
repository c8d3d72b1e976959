"""Forced alignment of a whole corpus: a folder in, one TextGrid per utterance out.

:func:`align_corpus` reads any of three layouts (:func:`corpus_items`):

- a folder of audio files, each with a same-named ``.lab`` or ``.txt`` transcript beside it
  (the Montreal Forced Aligner's convention);
- a Kaldi data folder (``wav.scp`` with plain audio paths, and ``text``);
- a phonex manifest (``.jsonl`` or ``.csv``).

It loads the model once, computes emissions in length-sorted batches, runs
:func:`phonex.align.align` on each utterance with its emissions (so every result is the one a
single-clip alignment gives) and writes the TextGrids into a folder that mirrors the corpus.
A file that cannot be aligned (no transcript, unreadable audio, a word the model cannot spell)
is a ``failed`` row of the summary, named with its reason; the run goes on. A rerun skips the
utterances whose TextGrid is already written: TextGrids are written atomically, so a killed run
leaves only whole ones, and a progress log keeps the summary rows of the done part.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from phonex.files import atomic_write

if TYPE_CHECKING:  # importing them would load torch and transformers before any work is due
    from phonex.align import WordSpan
    from phonex.intervals import Interval
    from phonex.models import LoadedModel

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
TRANSCRIPT_SUFFIXES = (".lab", ".txt")  # in this order: MFA reads .lab first
SUMMARY_NAME = "summary.jsonl"
PROGRESS_NAME = ".summary.partial.jsonl"  # rows of a run still going (or killed)
BATCHES_PER_BLOCK = 4  # clips held in memory at once: this many emission batches


@dataclass(frozen=True)
class CorpusItem:
    """One utterance to align.

    Attributes:
        id: the utterance id (a folder corpus: the audio's path under the root, no suffix).
        audio: the audio file.
        text: the transcript (``None`` when there is none; ``problem`` then says why).
        textgrid: the output TextGrid, relative to the output folder.
        problem: why the utterance cannot be aligned before any audio is read ("" when it can).
    """

    id: str
    audio: Path
    text: str | None
    textgrid: Path
    problem: str = ""


@dataclass(frozen=True)
class AlignOptions:
    """Settings of :func:`phonex.align.align` for every utterance of a corpus."""

    unknown: str = "error"
    blanks: str = "extend"
    window_seconds: float | None = None
    max_seconds: float = 60.0
    calibration: object = None


def _transcript(audio: Path) -> tuple[str | None, str]:
    """The text of the ``.lab``/``.txt`` beside ``audio``, or None and why there is none."""
    for suffix in TRANSCRIPT_SUFFIXES:
        path = audio.with_suffix(suffix)
        if not path.is_file():
            continue
        try:
            text = " ".join(path.read_text(encoding="utf-8").split())
        except (OSError, UnicodeDecodeError) as err:
            return None, f"{path}: cannot read the transcript: {err}"
        return (text, "") if text else (None, f"{path}: the transcript is empty")
    return None, f"{audio}: no transcript: expected {audio.stem}.lab or {audio.stem}.txt beside it"


def folder_items(root: str | Path) -> list[CorpusItem]:
    """Every audio file under ``root`` with its same-named transcript (MFA's layout).

    An audio file without a transcript is an item with a ``problem``, so the summary names it.
    """
    root = Path(root)
    items = []
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        if not audio.is_file():
            continue
        relative = audio.relative_to(root).with_suffix("")
        text, problem = _transcript(audio)
        items.append(CorpusItem(relative.as_posix(), audio, text,
                                relative.with_suffix(".TextGrid"), problem))  # fmt: skip
    return items


def _table(path: Path) -> dict[str, str]:
    """A Kaldi ``key value...`` file; a line without a value maps its key to ``""``."""
    from phonex.corpus import CorpusError

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise CorpusError(f"{path}: cannot read: {err}") from None
    pairs = (line.strip().split(maxsplit=1) for line in lines if line.strip())
    return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}


def kaldi_items(folder: str | Path) -> list[CorpusItem]:
    """The utterances of a Kaldi data folder (``wav.scp`` and ``text``), one TextGrid per id.

    Relative ``wav.scp`` paths start from the data folder, then the working directory. Entries
    read through a command or an archive, and ids without text, are items with a ``problem``.
    """
    folder = Path(folder)
    texts = _table(folder / "text") if (folder / "text").is_file() else {}
    items = []
    for uid, entry in _table(folder / "wav.scp").items():
        candidates = [Path(entry)] if os.path.isabs(entry) else [folder / entry, Path(entry)]
        audio = next((c for c in candidates if c.is_file()), candidates[0])
        problem = ""
        if entry.endswith("|") or ".ark:" in entry:
            problem = f"{folder / 'wav.scp'}: {uid}: audio through a command or archive ({entry})"
        elif not texts.get(uid):
            problem = f"{folder / 'text'}: no transcript for {uid}"
        items.append(CorpusItem(uid, audio, texts.get(uid) or None, Path(f"{uid}.TextGrid"),
                                problem))  # fmt: skip
    return items


def manifest_items(path: str | Path) -> list[CorpusItem]:
    """The rows of a phonex manifest; a TextGrid mirrors the audio's path under the manifest's
    folder, or is named by the id when the audio is elsewhere."""
    from phonex.corpus import read_manifest

    base = Path(path).resolve().parent
    items = []
    for row in read_manifest(path, check_files=False):
        audio = Path(row.audio)
        inside = audio.resolve().is_relative_to(base)
        relative = audio.resolve().relative_to(base).with_suffix("") if inside else Path(row.id)
        problem = "" if row.text.strip() else f"{audio}: the manifest row {row.id} has no text"
        items.append(CorpusItem(row.id, audio, row.text.strip() or None,
                                relative.with_suffix(".TextGrid"), problem))  # fmt: skip
    return items


def corpus_items(corpus: str | Path) -> list[CorpusItem]:
    """The utterances of a manifest file, a Kaldi folder (has ``wav.scp``) or an audio folder.

    Raises:
        phonex.corpus.CorpusError: ``corpus`` does not exist or holds no audio, or (a
            ManifestError) a malformed manifest, naming the file and line.
    """
    from phonex.corpus import CorpusError

    corpus = Path(corpus)
    if corpus.is_file():
        items = manifest_items(corpus)
    elif (corpus / "wav.scp").is_file():
        items = kaldi_items(corpus)
    elif corpus.is_dir():
        items = folder_items(corpus)
    else:
        raise CorpusError(f"{corpus}: no such manifest or folder")
    if not items:
        raise CorpusError(f"{corpus}: no audio files found ({', '.join(AUDIO_SUFFIXES)})")
    return _unique_outputs(items)


def _unique_outputs(items: list[CorpusItem]) -> list[CorpusItem]:
    """Items whose TextGrid another item already writes (``a.wav`` and ``a.flac``) get a
    problem, so that no alignment silently replaces another."""
    first: dict[Path, Path] = {}
    out = []
    for item in items:
        taken = first.setdefault(item.textgrid, item.audio)
        if taken != item.audio and not item.problem:
            why = f"{item.audio}: same TextGrid name as {taken} ({item.textgrid})"
            item = CorpusItem(item.id, item.audio, item.text, item.textgrid, why)
        out.append(item)
    return out


# --- aligning -------------------------------------------------------------------------------


def textgrid_tiers(words: Sequence[WordSpan], duration: float) -> dict[str, list[Interval]]:
    """:func:`phonex.align.to_tiers` and the phones' GOP (:func:`phonex.confidence.confidence_tier`)
    with every interval ending by ``duration`` (seconds).

    A model's last frame can reach past the clip's end (Whisper counts a part-filled last hop
    as a frame: 2.7328 s of audio are 137 frames, 2.74 s), so the last phone and word end where
    the recording does.
    """
    from phonex.align import to_tiers
    from phonex.confidence import TIER, confidence_tier
    from phonex.intervals import Interval

    tiers = {**to_tiers(words), TIER: confidence_tier(words)}
    return {name: [Interval(i.label, min(i.start, duration), min(i.end, duration)) for i in tier]
            for name, tier in tiers.items()}  # fmt: skip


def _row(item: CorpusItem, status: str, confidence: float | None = None, words: int = 0,
         reason: str | None = None) -> dict:  # fmt: skip
    return {"id": item.id, "audio": str(item.audio), "textgrid": item.textgrid.as_posix(),
            "status": status, "confidence": confidence, "words": words,
            "reason": reason}  # fmt: skip


def _caught() -> tuple[type[Exception], ...]:
    """The errors that mean one bad utterance (bad audio, text or file), not a bug."""
    from phonex.cli_types import user_errors

    return (*user_errors(), OSError)


def _align_one(loaded, item: CorpusItem, wave, log_probs, out: Path, options: AlignOptions,
               ) -> dict:  # fmt: skip
    """Align one utterance (with its emissions when computed in a batch) and write its TextGrid."""
    import phonex.align
    from phonex.intervals import write_textgrid

    try:
        words = phonex.align.align(
            loaded, wave, item.text, max_seconds=options.max_seconds, unknown=options.unknown,
            window_seconds=options.window_seconds, blanks=options.blanks,
            calibration=options.calibration, log_probs=log_probs,
        )  # fmt: skip
        duration = len(wave) / loaded.sample_rate
        write_textgrid(out / item.textgrid, textgrid_tiers(words, duration), duration)
    except _caught() as err:
        return _row(item, "failed", reason=_reason(item, err))
    scores = [p[3] for w in words for p in w.phones]
    row = _row(item, "ok", round(statistics.fmean(scores), 4), len(words))
    return {**row, "lowest_gop": _lowest_gop(words)}


def _lowest_gop(words: Sequence[WordSpan]) -> dict | None:
    """The phone with the lowest GOP (``word, phone, start, gop``), to listen to first."""
    scored = [(g, w.word, p) for w in words for p, g in zip(w.phones, w.gop) if g is not None]
    if not scored:
        return None
    gop, word, (phone, start, _, _) = min(scored, key=lambda s: s[0])
    return {"word": word, "phone": phone, "start": round(start, 4), "gop": round(gop, 3)}


def _reason(item: CorpusItem, err: Exception) -> str:
    """The error as one line that names the file (most of phonex's messages already do)."""
    message = f"{err.filename}: {err.strerror or err}" if getattr(err, "filename", None) else err
    message = str(message)
    return message if str(item.audio) in message else f"{item.audio}: {message}"


def _batchable(loaded, wave, options: AlignOptions) -> bool:
    """Whether a clip's emissions can come from a batch: long enough for one frame, short
    enough for one pass (otherwise :func:`phonex.align.align` refuses or windows it)."""
    from phonex.recognize import min_samples

    seconds = len(wave) / loaded.sample_rate
    return (options.window_seconds is None and seconds <= options.max_seconds
            and len(wave) >= min_samples(loaded))  # fmt: skip


def _align_block(loaded, block: Sequence[CorpusItem], out: Path, options: AlignOptions,
                 batch_size: int) -> Iterator[tuple[int, dict]]:  # fmt: skip
    """``(index in block, summary row)`` of each utterance: read, emissions in batches, align,
    write the TextGrid."""
    from phonex.audio import load_audio
    from phonex.models import emissions

    waves = {}
    for i, item in enumerate(block):
        try:
            waves[i] = load_audio(item.audio, loaded.sample_rate, allow_silence=True)
        except _caught() as err:
            yield i, _row(item, "failed", reason=_reason(item, err))
    batched = [i for i, wave in waves.items() if _batchable(loaded, wave, options)]
    log_probs = emissions(loaded, [waves[i] for i in batched], batch_size) if batched else []
    by_index = dict(zip(batched, log_probs))
    for i, wave in waves.items():
        yield i, _align_one(loaded, block[i], wave, by_index.get(i), out, options)


def _earlier_rows(out: Path) -> dict[str, dict]:
    """Summary rows of earlier runs into ``out`` (the summary, then a killed run's progress)."""
    rows: dict[str, dict] = {}
    for name in (SUMMARY_NAME, PROGRESS_NAME):
        try:
            lines = (out / name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # the last line of a killed run may be cut short
                continue
            if isinstance(row, dict) and row.get("status") in ("ok", "skipped"):
                rows[row.get("textgrid", "")] = row
    return rows


def _skipped(item: CorpusItem, earlier: dict[str, dict]) -> dict:
    """The row of an utterance aligned by an earlier run (its confidence, when recorded)."""
    before = earlier.get(item.textgrid.as_posix(), {})
    return _row(item, "skipped", before.get("confidence"), before.get("words", 0),
                reason="TextGrid already written by an earlier run")  # fmt: skip


def write_summary(rows: Sequence[dict], path: str | Path) -> Path:
    """Write summary rows as JSON Lines, atomically (strict JSON: no NaN)."""
    text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return Path(path)


def align_corpus(model: LoadedModel | str | Path, corpus: str | Path, out_dir: str | Path, batch_size: int = 16,
                 options: AlignOptions | None = None, overwrite: bool = False,
                 progress: bool = True) -> list[dict]:  # fmt: skip
    """Align every utterance of a corpus and write a TextGrid for each, resumably.

    Args:
        model: a :class:`phonex.models.LoadedModel`, or a name or folder for
            :func:`phonex.models.load_model` (loaded once, and only if something is left to do).
        corpus: a manifest, a Kaldi data folder or a folder of audio with ``.lab``/``.txt``
            transcripts (:func:`corpus_items`).
        out_dir: the TextGrids, in the corpus's tree, and ``summary.jsonl``.
        batch_size: clips per model pass (sorted by length within blocks of
            ``BATCHES_PER_BLOCK`` batches).
        options: settings of :func:`phonex.align.align` (default: its defaults).
        overwrite: align again utterances whose TextGrid exists (default: skip them).
        progress: show a tqdm progress bar.

    Returns:
        one row per utterance, in corpus order: ``id, audio, textgrid`` (relative to
        ``out_dir``), ``status`` (``ok``, ``skipped``: written by an earlier run, or
        ``failed``), ``confidence`` (mean phone probability, or None), ``words`` and
        ``reason`` (why it failed, naming the file); an aligned row also has ``lowest_gop``,
        its least convincing phone (:mod:`phonex.confidence`). Also written to
        ``out_dir/summary.jsonl``.
    """
    options, out = options or AlignOptions(), Path(out_dir)
    items = corpus_items(corpus)
    earlier = {} if overwrite else _earlier_rows(out)
    rows: dict[int, dict] = {}
    todo = []
    for index, item in enumerate(items):
        if item.problem:
            rows[index] = _row(item, "failed", reason=item.problem)
        elif not overwrite and (out / item.textgrid).is_file():
            rows[index] = _skipped(item, earlier)
        else:
            todo.append(index)
    if todo:
        rows.update(_run(_loaded(model), items, todo, out, options, batch_size, progress))
    summary = [rows[i] for i in range(len(items))]
    write_summary(summary, out / SUMMARY_NAME)
    (out / PROGRESS_NAME).unlink(missing_ok=True)
    return summary


def _run(loaded, items: Sequence[CorpusItem], todo: Sequence[int], out: Path,
         options: AlignOptions, batch_size: int, progress: bool) -> dict[int, dict]:  # fmt: skip
    """Align ``items[i]`` for each ``i`` in ``todo``, block by block; each row goes to the
    progress log as soon as its TextGrid is written, so a killed run keeps it."""
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict] = {}
    block_size = batch_size * BATCHES_PER_BLOCK
    bar = tqdm(total=len(todo), desc="aligning", unit="utt", disable=not progress)
    with open(out / PROGRESS_NAME, "a", encoding="utf-8") as log, bar:
        for start in range(0, len(todo), block_size):
            block = todo[start : start + block_size]
            block_items = [items[i] for i in block]
            for i, row in _align_block(loaded, block_items, out, options, batch_size):
                rows[block[i]] = row
                log.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
                log.flush()
                bar.update()
    return rows


def _loaded(model: LoadedModel | str | Path) -> LoadedModel:
    """``model`` itself when loaded already, else :func:`phonex.models.load_model` of it."""
    if isinstance(model, (str, Path)):
        from phonex.models import load_model

        return load_model(str(model))
    return model
