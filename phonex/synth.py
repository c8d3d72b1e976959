"""Build the synthetic drug-name corpus: lexicon x voice grid x augmentations -> manifest.

Layout of a corpus folder::

    audio/<voice-id>/<name>.wav             clean clip at the corpus rate
    audio/<voice-id>/<name>.<k>.wav         augmented copies (spec in the manifest row)
    alignments/<voice-id>/<name>[.<k>].TextGrid   true phone/word times (espeak-ng only)
    manifest.jsonl                          one row per clip (phonex.corpus.Utterance)

Files are the truth and the manifest is derived from them: every file is written atomically, so
a run that is killed leaves only whole files, and a rerun skips every clip already on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from phonex import augment
from phonex.audio import resample, save_audio
from phonex.config import DataConfig
from phonex.corpus import (
    Interval,
    Utterance,
    audio_info,
    file_checksum,
    read_alignment,
    split_by_group,
    write_manifest,
    write_textgrid,
)
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


@dataclass(frozen=True)
class ClipJob:
    """One name spoken by one voice, and the augmentation specs of its copies."""

    text: str
    voice: Voice
    augmentations: tuple[str, ...]

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
            jobs.append(ClipJob(text, voice, specs))
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


def render(job: ClipJob, out_dir: Path, sample_rate: int) -> list[Utterance]:
    """Synthesize one clip and its augmented copies; skip files that already exist."""
    paths = [
        f"{job.voice.id}/{job.stem}{'' if k == 0 else f'.{k}'}"
        for k in range(len(job.augmentations) + 1)
    ]
    specs = ("none", *job.augmentations)
    if all((out_dir / "audio" / f"{p}.wav").exists() for p in paths):
        return [_row(job, out_dir, p, spec, phones=None) for p, spec in zip(paths, specs)]
    speech = synthesize(job.text, job.voice)
    wave = resample(speech.wave, speech.sample_rate, sample_rate)
    phones = _pronunciation(job, speech)
    rows = []
    for k, (path, spec) in enumerate(zip(paths, specs)):
        if (out_dir / "audio" / f"{path}.wav").exists():  # finished before an interruption
            rows.append(_row(job, out_dir, path, spec, phones))
            continue
        rng = np.random.default_rng(_seed_for(job.voice.id, job.text, k))
        clip = (
            wave
            if spec == "none"
            else augment.apply(wave, sample_rate, spec, rng, _babble(sample_rate))
        )
        if speech.phones:
            scale, duration = augment.time_scale(spec), len(clip) / sample_rate
            tiers = {
                "words": _scaled(speech.words, scale, duration),
                "phones": _scaled(speech.phones, scale, duration),
            }
            write_textgrid(out_dir / "alignments" / f"{path}.TextGrid", tiers, duration)
        save_audio(out_dir / "audio" / f"{path}.wav", clip, sample_rate)  # last: marks "done"
        rows.append(_row(job, out_dir, path, spec, phones))
    return rows


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


def _render_chunk(args: tuple[list[ClipJob], Path, int]) -> list[Utterance]:
    jobs, out_dir, sample_rate = args
    return [row for job in jobs for row in render(job, out_dir, sample_rate)]


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
    """
    cfg = cfg or DataConfig()
    out_dir = Path(out_dir)
    grid = load_voice_grid(cfg.size, _grid_path(cfg.voice_grid))
    grid.voices = [v for v in grid.voices if v.engine in cfg.engines]
    if not grid.voices:
        raise ValueError(f"voice grid {cfg.size!r} has no voices for engines {cfg.engines}")
    jobs = plan(select_names(cfg.max_names, cfg.seed), grid, cfg.augmentations_per_clip, cfg.seed)
    chunks = [(jobs[i : i + 16], out_dir, sample_rate) for i in range(0, len(jobs), 16)]
    clips_per_job = 1 + cfg.augmentations_per_clip
    bar = tqdm(total=len(jobs) * clips_per_job, desc=f"synth {out_dir.name}", unit="clip")
    rows: list[Utterance] = []
    if workers > 1:
        # librosa compiles its numba kernels when librosa.util is first imported (lazily) and
        # caches them on disk; forked workers doing that at once corrupted the cache (later
        # segfaults in librosa.pyin). Compiled here, the workers inherit them.
        import librosa.util.utils  # noqa: F401

        with ProcessPoolExecutor(workers) as pool:
            for chunk, part in zip(chunks, pool.map(_render_chunk, chunks)):
                rows += part
                bar.update(len(chunk[0]) * clips_per_job)
    else:
        for chunk in chunks:
            rows += _render_chunk(chunk)
            bar.update(len(chunk[0]) * clips_per_job)
    bar.close()
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
