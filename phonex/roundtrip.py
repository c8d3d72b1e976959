"""TTS -> ASR round trips: which engines' speech the recognizer understands, what a vocoder
loses, and how fast each engine speaks.

- :func:`engine_report`: every engine, whether it runs here and why not;
- :func:`vocode_rows`: a corpus through Tacotron2's log-mel and back with Griffin-Lim, written
  as a new set of clips (the manifest rows point at them);
- :func:`summarize`: top-1/top-5 and phone error rate per group of recognised clips;
- :func:`real_time_factor`: synthesis seconds per second of speech.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from phonex.config import AudioConfig
from phonex.corpus import Utterance, file_checksum


def engine_report() -> pd.DataFrame:
    """One row per TTS engine: ``engine, available, why`` (why not, when it is not)."""
    from phonex.tts import ENGINES

    rows = []
    for name, engine in ENGINES.items():
        ok, why = engine.available()
        rows.append({"engine": name, "available": ok, "why": why})
    return pd.DataFrame(rows)


def vocode_rows(rows: Sequence[Utterance], out_dir: str | Path, n_iter: int = 60,
                progress: bool = True) -> list[Utterance]:  # fmt: skip
    """Each clip through Tacotron2's log-mel (22.05 kHz, 80 bands) and back with Griffin-Lim.

    What a Tacotron2 pipeline with a Griffin-Lim vocoder can at best give back: the mel keeps the
    spectral envelope, Griffin-Lim guesses the phases. Clips already vocoded are reused.

    Returns:
        the rows, pointing at ``out_dir/<id>.wav`` (16 kHz), ``augmentation="griffin-lim"``.
    """
    from tqdm.auto import tqdm

    from phonex.audio import griffin_lim, load_audio, mel_spectrogram, resample, save_audio

    cfg = AudioConfig.tacotron2()
    out = []
    for row in tqdm(rows, desc="griffin-lim", disable=not progress):
        path = Path(out_dir) / f"{row.id}.wav"
        if not path.exists():
            wave = load_audio(row.audio, cfg.sample_rate)
            vocoded = griffin_lim(mel_spectrogram(wave, cfg), cfg, n_iter)
            path.parent.mkdir(parents=True, exist_ok=True)
            save_audio(path, resample(vocoded, cfg.sample_rate, 16000), 16000)
        out.append(dataclasses.replace(row, audio=str(path.resolve()), augmentation="griffin-lim",
                                       alignment="", sample_rate=16000,
                                       checksum=file_checksum(path)))  # fmt: skip
    return out


def summarize(results: pd.DataFrame, rows: Sequence[Utterance], by: Sequence[str]) -> pd.DataFrame:
    """Top-1, top-5, MRR and phone error rate per group of :func:`evaluate_recognition` rows.

    Args:
        results: from :func:`phonex.recognize.evaluate_recognition`.
        rows: the recognised clips (their ``phones`` are the PER references).
        by: grouping columns, e.g. ``["engine", "speaker", "condition"]``.
    """
    from phonex.metrics import error_rate, summarize_ranks

    reference = {r.id: r.phones for r in rows}
    out = []
    for key, group in results.groupby(list(by), sort=False):
        per = error_rate([reference[i] for i in group.id], group.phones.tolist()).rate
        key = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(by, key)), **summarize_ranks(group["rank"].tolist()), "per": per})
    return pd.DataFrame(out)


def aligned_durations(loaded, rows: Sequence[Utterance], progress: bool = True) -> pd.DataFrame:
    """Phone durations of each clip by forced alignment of its phones: one row per phone,
    ``id, engine, speaker, phone, class, duration_s`` (and ``true_s`` where the clip has
    reference times, e.g. espeak-ng's)."""
    from tqdm.auto import tqdm

    from phonex.align import align
    from phonex.audio import load_audio
    from phonex.intervals import read_alignment
    from phonex.phonesets import broad_class

    records = []
    for row in tqdm(rows, desc="aligning", disable=not progress):
        words = align(loaded, load_audio(row.audio, loaded.sample_rate), row.text,
                      tokens=row.phones)  # fmt: skip
        phones = [p for w in words for p in w.phones]
        truth = read_alignment(row.alignment)["phones"] if row.alignment else [None] * len(phones)
        for (phone, start, end, _), true in zip(phones, truth):
            records.append({"id": row.id, "engine": row.engine, "speaker": row.speaker,
                            "phone": phone, "class": broad_class(phone, unknown="other"), "duration_s": end - start,
                            "true_s": true.end - true.start if true else np.nan})  # fmt: skip
    return pd.DataFrame(records)


def split_for_engines(rows: Sequence[Utterance], train_engines: Sequence[str], dev: float = 0.15,
                      seed: int = 0) -> list[Utterance]:  # fmt: skip
    """Rows re-split for the unheard-engine experiment: the clips of ``train_engines`` train (the
    clips of a fraction of names kept for dev, to choose the checkpoint), every other engine's
    clips test."""
    from phonex.corpus import split_by_group

    heard = [r for r in rows if r.engine in train_engines]
    if not heard:
        raise ValueError(f"no clips of {list(train_engines)} to train on")
    unheard = [dataclasses.replace(r, split="test") for r in rows if r.engine not in train_engines]
    return split_by_group(heard, key="text", test=0, dev=dev, seed=seed) + unheard


def train_on_engines(rows: Sequence[Utterance], train_engines: Sequence[str], run_dir: str | Path,
                     cfg, progress: bool = True) -> Path:  # fmt: skip
    """Train ``cfg`` (its ``model.name``: from scratch, or a model to fine-tune) on the clips of
    ``train_engines``; returns the best model's directory (a finished run is reused)."""
    from phonex.corpus import write_manifest
    from phonex.train import train

    run_dir = Path(run_dir)
    manifest = write_manifest(split_for_engines(rows, train_engines, seed=cfg.train.seed),
                              run_dir / "manifest.jsonl")  # fmt: skip
    return train(cfg, [manifest], run_dir, progress=progress).best_dir


def real_time_factor(voice, texts: Sequence[str], repeats: int = 1) -> dict[str, float]:
    """Seconds of synthesis per second of speech for ``voice`` over ``texts`` (lower: faster).

    The first text is spoken once before timing, so loading a model or a voice is not counted.
    """
    from phonex.tts import synthesize

    synthesize(texts[0], voice)
    start, audio = time.perf_counter(), 0.0
    for _ in range(repeats):
        for text in texts:
            audio += synthesize(text, voice).duration
    seconds = time.perf_counter() - start
    return {"engine": voice.engine, "voice": voice.name, "texts": len(texts) * repeats,
            "synthesis_s": seconds, "audio_s": audio, "rtf": seconds / audio if audio else np.nan}  # fmt: skip
