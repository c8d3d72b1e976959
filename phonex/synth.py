"""Build the synthetic drug-name corpus: lexicon x voice grid x augmentations -> manifest.

Layout of a corpus folder::

    audio/<voice-id>/<name>.wav             clean clip at the corpus rate
    audio/<voice-id>/<name>.<k>.wav         augmented copies (spec in the manifest row)
    alignments/<voice-id>/<name>[.<k>].TextGrid   true phone/word times (espeak-ng only)
    manifest.jsonl                          one row per clip (phonex.corpus.Utterance)

Files are the truth and the manifest is derived from them: every file is written atomically (a
temporary name, then a rename), so a run that is killed leaves only whole files, and a rerun
keeps every clip already on disk that is whole and agrees with the previous manifest's checksum,
and writes the rest again. The manifest records each file as written (its checksum, duration and
rate are read back from disk). One build at a time writes a folder (:func:`corpus_lock`: a second
one fails at once, naming the first one's pid); SIGINT or SIGTERM stops the worker pool, leaves
no partial file under a final name (killed writers' temporaries are removed by the next run) and
raises :class:`SynthInterrupted`, after which a rerun resumes.

Determinism. A clip is a pure function of (name, voice, augmentation spec, seed): the
augmentation draws its randomness from a generator seeded by (seed, voice, name, copy), and
espeak-ng speaks every clip in a fresh fork of one initialised library (:mod:`phonex.espeak`),
so neither the order of clips nor the number of workers changes a byte, and a resumed corpus is
the corpus an uninterrupted run makes. Measured on 4 names x the quick grid x (clean + 1 copy),
72 clips: two runs, and ``workers=1`` against ``workers=2``, give identical checksums for every
file. Called in-process instead, the library spoke 20 names x 9 voices twice, in two orders,
with differences in all 180 clips: a median 89 % of samples, the length of 134 clips (by 13 ms
on average, at most 53 ms) and phone onsets (2.3 ms on average, at most 53 ms); and 1.52 seeds
its noise from the clock, so two runs differed as well. The fork costs time: 360 clean clips on
2 cores under a load of 6-8 took 2-2.7 times as long (2 workers: 20-26 clips/s against 53
in-process; 1 worker: 16-23 against 33-42). Other engines (piper, flite, festival) are not
covered by this.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from phonex import augment
from phonex.audio import resample, save_audio
from phonex.config import ConfigError, DataConfig
from phonex.corpus import (
    Interval,
    ManifestError,
    Utterance,
    audio_info,
    file_checksum,
    read_alignment,
    read_manifest,
    split_by_group,
    write_manifest,
    write_textgrid,
)
from phonex.integrity import audio_problem, corpus_lock
from phonex.lexicon import load_drugs
from phonex.phonemes import phonemize, to_string
from phonex.tts import Synthesis, Voice, VoiceGrid, load_voice_grid, synthesize

# Harvard sentences (public domain) spoken by several voices make the babble noise: never drug
# names, so that noise cannot leak a label.
BABBLE_TEXTS = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
)
BABBLE_VOICES = ("en-us+f2", "en-gb-x-rp+m2", "en-us-nyc+f5", "en-029+m4", "en-us+m6", "en+f1")


class SynthInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a build; every clip written so far is whole and kept."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_status = 128 + signum  # the shell's status for a death by this signal


@dataclass(frozen=True)
class ClipJob:
    """One name spoken by one voice, the augmentation specs of its copies and the corpus seed."""

    text: str
    voice: Voice
    augmentations: tuple[str, ...]
    seed: int = 0

    @property
    def stem(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-")


def select_names(max_names: int = 0, seed: int = 0) -> list[str]:
    """Lexicon names, all (``max_names`` 0) or a seeded sample of ``max_names``, sorted."""
    names = [d.name for d in load_drugs()]
    if 0 < max_names < len(names):
        rng = np.random.default_rng(seed)
        names = [str(n) for n in rng.choice(names, size=max_names, replace=False)]
    return sorted(names)


def _seed_for(*parts: object) -> int:
    """A seed from a stable hash, so a clip's augmentation does not depend on job order."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def plan(
    names: list[str], grid: VoiceGrid, augmentations_per_clip: int, seed: int
) -> list[ClipJob]:
    """Every (name, voice) pair with seeded augmentation specs for its copies."""
    jobs = []
    for voice in grid.voices:
        for text in names:
            specs = tuple(
                augment.random_spec(np.random.default_rng(_seed_for(seed, voice.id, text, k)))
                for k in range(augmentations_per_clip)
            )
            jobs.append(ClipJob(text, voice, specs, seed))
    return jobs


@lru_cache(maxsize=2)  # per process and rate, made on first use
def _babble(sample_rate: int) -> list[np.ndarray]:
    waves = []
    for text, name in zip(BABBLE_TEXTS, BABBLE_VOICES):
        speech = synthesize(text, Voice("espeak", name))
        waves.append(resample(speech.wave, speech.sample_rate, sample_rate))
    return waves


def _pronunciation(job: ClipJob, speech: Synthesis) -> str:
    """Phones as spoken: from espeak-ng's events grouped by word, else from the phonemizer."""
    if speech.phones and speech.words:
        return _group_by_words(speech.phones, speech.words)
    return to_string(phonemize([job.text], job.voice.language)[0])


def _scaled(intervals: list[Interval], scale: float, duration: float) -> list[Interval]:
    """Times stretched with the clip, clipped to its length (resampling rounds the length)."""
    scaled = [Interval(i.label, i.start * scale, min(i.end * scale, duration)) for i in intervals]
    return [i for i in scaled if i.start < i.end]


Known = dict[str, tuple[str, str]]  # absolute audio path -> (checksum, augmentation spec)


def _is_done(audio: Path, spec: str, known: Known) -> bool:
    """A clip on disk is kept when it is whole and matches the previous manifest (if it is in it)."""
    if audio_problem(audio):
        return False
    expected = known.get(os.path.abspath(audio))
    return expected is None or expected == (file_checksum(audio), spec)


def render(
    job: ClipJob, out_dir: Path, sample_rate: int, known: Known | None = None
) -> list[Utterance]:
    """Synthesize one clip and its augmented copies, keeping those already done.

    Args:
        job: the name, voice, augmentation specs and seed.
        out_dir: corpus folder.
        sample_rate: rate of the written clips.
        known: absolute audio path -> (checksum, augmentation spec) from a previous manifest; a
            file on disk that is truncated or differs from it is written again.

    Returns:
        One manifest row per file (clean first), describing the files as written.
    """
    known = known or {}
    paths = [
        f"{job.voice.id}/{job.stem}{'' if k == 0 else f'.{k}'}"
        for k in range(len(job.augmentations) + 1)
    ]
    specs = ("none", *job.augmentations)
    done = [_is_done(out_dir / "audio" / f"{p}.wav", s, known) for p, s in zip(paths, specs)]
    if all(done):
        return [_row(job, out_dir, p, spec, phones=None) for p, spec in zip(paths, specs)]
    speech = synthesize(job.text, job.voice)
    wave = resample(speech.wave, speech.sample_rate, sample_rate)
    phones = _pronunciation(job, speech)
    rows = []
    for k, (path, spec) in enumerate(zip(paths, specs)):
        if not done[k]:  # a done copy is kept from an earlier run
            _write_copy(job, k, speech, wave, out_dir, path, sample_rate)
        rows.append(_row(job, out_dir, path, spec, phones))
    return rows


def _write_copy(
    job: ClipJob, k: int, speech: Synthesis, wave: np.ndarray, out_dir: Path, path: str, rate: int
) -> None:
    """Copy ``k`` (0: clean) of a clip to ``<out_dir>/audio/<path>.wav``, after its TextGrid."""
    spec = ("none", *job.augmentations)[k]
    rng = np.random.default_rng(_seed_for(job.seed, job.voice.id, job.text, k))
    clip = wave if spec == "none" else augment.apply(wave, rate, spec, rng, _babble(rate))
    if speech.phones:
        scale, duration = augment.time_scale(spec), len(clip) / rate
        tiers = {
            "words": _scaled(speech.words, scale, duration),
            "phones": _scaled(speech.phones, scale, duration),
        }
        write_textgrid(out_dir / "alignments" / f"{path}.TextGrid", tiers, duration)
    save_audio(out_dir / "audio" / f"{path}.wav", clip, rate)  # last: marks "done"


def _row(job: ClipJob, out_dir: Path, path: str, spec: str, phones: str | None) -> Utterance:
    audio = out_dir / "audio" / f"{path}.wav"
    grid = out_dir / "alignments" / f"{path}.TextGrid"
    if phones is None:  # resumed clip: rebuild its phones from the files
        phones = (
            _phones_from_textgrid(grid)
            if grid.exists()
            else to_string(phonemize([job.text], job.voice.language)[0])
        )
    duration, sample_rate = audio_info(audio)
    return Utterance(
        id=f"{job.voice.id}/{path.split('/', 1)[1]}",
        audio=str(audio),
        text=job.text,
        phones=phones,
        speaker=job.voice.speaker,
        engine=job.voice.engine,
        augmentation=spec,
        split="",
        duration=duration,
        sample_rate=sample_rate,
        checksum=file_checksum(audio),
        alignment=str(grid) if grid.exists() else "",
        source="phonex-synth",
    )


def _phones_from_textgrid(path: Path) -> str:
    tiers = read_alignment(path)
    return _group_by_words(tiers["phones"], tiers["words"])


def _group_by_words(phones: list[Interval], words: list[Interval]) -> str:
    """Phone intervals grouped by the word intervals they start in, as a pronunciation string."""
    grouped = [[p.label for p in phones if w.start <= p.start < w.end] for w in words]
    return to_string([g for g in grouped if g])


def _render_chunk(args: tuple[list[ClipJob], Path, int, Known]) -> list[Utterance]:
    jobs, out_dir, sample_rate, known = args
    return [row for job in jobs for row in render(job, out_dir, sample_rate, known)]


def _known_checksums(manifest: Path) -> Known:
    """Checksum and spec of each clip in an earlier manifest (none if missing or unreadable)."""
    try:
        rows = read_manifest(manifest, check_files=False) if manifest.is_file() else []
    except ManifestError:
        return {}  # rewritten at the end of this build; whole-file checks still apply
    return {os.path.abspath(r.audio): (r.checksum, r.augmentation) for r in rows if r.checksum}


def _remove_temporaries(out_dir: Path) -> None:
    """Temporary files of writers that were killed (see phonex.files.atomic_write)."""
    leftovers = [*out_dir.glob(".manifest.jsonl.*.tmp")]
    for sub in ("audio", "alignments"):
        leftovers += (out_dir / sub).rglob(".*.tmp")
    for tmp in leftovers:
        tmp.unlink(missing_ok=True)


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`SynthInterrupted` here (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        for other in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the cleanup
            signal.signal(other, signal.SIG_IGN)
        raise SynthInterrupted(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _worker_init() -> None:
    """Workers leave signals to the parent: Ctrl-C is ignored, SIGTERM (terminate) kills them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_pool(chunks: list, workers: int, bar: tqdm) -> list[Utterance]:
    """Render chunks in ``workers`` processes, in order; on any exception the pool is killed."""
    # librosa compiles its numba kernels when librosa.util is first imported (lazily) and
    # caches them on disk; forked workers doing that at once corrupted the cache (later
    # segfaults in librosa.pyin). Compiled here, the workers inherit them.
    import librosa.util.utils  # noqa: F401

    rows: list[Utterance] = []
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
    try:
        for part in pool.imap(_render_chunk, chunks):
            rows += part
            bar.update(len(part))
        pool.close()
    except BaseException:
        pool.terminate()  # SIGTERM to every worker: none is left writing after we return
        raise
    finally:
        pool.join()
    return rows


def build_corpus(
    out_dir: str | Path, cfg: DataConfig | None = None, sample_rate: int = 16000, workers: int = 1
) -> Path:
    """Synthesize (or finish synthesizing) a drug-name corpus and write its manifest.

    Args:
        out_dir: corpus folder; an interrupted build in it is resumed.
        cfg: which names, voices and augmentations (``DataConfig``; default: quick).
        sample_rate: rate of the written clips.
        workers: processes to synthesize in (espeak-ng is single-threaded).

    Returns:
        Path of ``manifest.jsonl``, with train/dev/test splits disjoint by voice.

    Raises:
        CorpusLockedError: another build is writing ``out_dir``.
        SynthInterrupted: SIGINT or SIGTERM arrived; the workers are stopped, finished clips kept.
    """
    cfg = cfg or DataConfig()
    out_dir = Path(out_dir)
    with corpus_lock(out_dir), _stop_on_signals():
        _remove_temporaries(out_dir)
        rows = _render_all(out_dir, cfg, sample_rate, workers)
        return _write_split_manifest(out_dir, cfg, rows)


def _render_all(out_dir: Path, cfg: DataConfig, sample_rate: int, workers: int) -> list[Utterance]:
    grid = load_voice_grid(cfg.size, _grid_path(cfg.voice_grid))
    grid.voices = [v for v in grid.voices if v.engine in cfg.engines]
    if not grid.voices:
        raise ConfigError(f"voice grid {cfg.size!r} has no voices for engines {cfg.engines}")
    jobs = plan(select_names(cfg.max_names, cfg.seed), grid, cfg.augmentations_per_clip, cfg.seed)
    known = _known_checksums(out_dir / "manifest.jsonl")
    chunks = [(jobs[i : i + 16], out_dir, sample_rate, known) for i in range(0, len(jobs), 16)]
    clips_per_job = 1 + cfg.augmentations_per_clip
    bar = tqdm(total=len(jobs) * clips_per_job, desc=f"synth {out_dir.name}", unit="clip")
    rows: list[Utterance] = []
    with bar:
        if workers > 1:
            rows = _run_pool(chunks, workers, bar)
        else:
            for chunk in chunks:
                rows += _render_chunk(chunk)
                bar.update(len(chunk[0]) * clips_per_job)
    return rows


def _write_split_manifest(out_dir: Path, cfg: DataConfig, rows: list[Utterance]) -> Path:
    """Splits disjoint by voice (unheard engines test only), then the manifest."""
    grid = load_voice_grid(cfg.size, _grid_path(cfg.voice_grid))
    test = cfg.test_voices or grid.test_speakers
    test = [s for s in test if s in {r.speaker for r in rows}]
    test += sorted({r.speaker for r in rows if r.engine != "espeak"})  # other engines: test only
    if set(test) >= {r.speaker for r in rows}:  # only unheard voices (piper alone): all test
        rows = [dataclasses.replace(r, split="test") for r in rows]
    else:
        rows = split_by_group(rows, key="speaker", test=test, dev=cfg.dev_fraction, seed=cfg.seed)
    manifest = out_dir / "manifest.jsonl"
    write_manifest(rows, manifest)
    return manifest


def _grid_path(name: str) -> Path | None:
    """``voices.yaml`` means the packaged grid; anything else is a path."""
    return None if name == "voices.yaml" else Path(name)
