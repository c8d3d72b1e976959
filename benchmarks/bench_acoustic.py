"""The small acoustic model (phonex.acoustic): training time, synthesis speed, and how well the
recognizer understands it on drug names it never saw in training.

One espeak-ng voice (en-us, a training voice of the recipe corpus), its clean clips with
espeak-ng's own phone times as durations; 60 seeded names held out. Judged by the recipe
recognizer (top-1 over all 565 names) on the held-out names, beside the same names from the
engine itself and the engine's audio through Tacotron2 mel + Griffin-Lim (the vocoder's share of
the loss).

    python benchmarks/bench_acoustic.py [--steps 300]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import numpy as np
from common import record

from phonex.acoustic import SILENCE, example, fit_acoustic, phone_tokens
from phonex.audio import griffin_lim, load_audio, mel_spectrogram, resample
from phonex.config import MODELS_DIR, PROCESSED_DIR, AudioConfig
from phonex.corpus import read_manifest
from phonex.intervals import read_alignment
from phonex.lexicon import load_drugs
from phonex.phonemes import WORD_SEP, Vocabulary
from phonex.recognize import Recognizer

VOICE, HELD_OUT, GL_ITERATIONS = "espeak:en-us", 60, 32


def top1(recognizer, waves, rows) -> float:
    found = recognizer.recognize(waves, [r.id for r in rows], 1)
    return float(np.mean([f.candidates[0].word == r.text for f, r in zip(found, rows)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    cfg = AudioConfig.tacotron2()
    rows = [r for r in read_manifest(PROCESSED_DIR / "drugs-quick" / "manifest.jsonl")
            if r.augmentation == "none" and r.speaker == VOICE]  # fmt: skip
    names = sorted({r.text for r in rows})
    random.Random(0).shuffle(names)
    held_out = set(names[:HELD_OUT])
    train = [r for r in rows if r.text not in held_out]
    test = [r for r in rows if r.text in held_out]
    vocab = Vocabulary(
        [SILENCE, *sorted({p for r in rows for p in r.phones.split() if p != WORD_SEP})]
    )
    examples = [example(load_audio(r.audio, cfg.sample_rate), read_alignment(r.alignment)["phones"],
                        vocab, cfg) for r in train]  # fmt: skip
    with tempfile.TemporaryDirectory() as run:
        start = time.perf_counter()
        model = fit_acoustic(examples, vocab, run, steps=args.steps, progress=False)
        train_s = time.perf_counter() - start
    start, synthesized = time.perf_counter(), []
    for r in test:
        mel = model.infer(phone_tokens(r.phones, vocab)).numpy()
        synthesized.append(resample(griffin_lim(mel, cfg, GL_ITERATIONS), cfg.sample_rate, 16000))
    synth_s = time.perf_counter() - start
    audio_s = sum(len(w) for w in synthesized) / 16000
    engine = [load_audio(r.audio, 16000) for r in test]
    vocoded = [resample(griffin_lim(mel_spectrogram(load_audio(r.audio, cfg.sample_rate), cfg), cfg,
                                    GL_ITERATIONS), cfg.sample_rate, 16000) for r in test]  # fmt: skip
    recognizer = Recognizer(
        MODELS_DIR / "bench-drugs-tiny" / "best", [d.name for d in load_drugs()]
    )
    record(
        "acoustic",
        {
            "command": f"python benchmarks/bench_acoustic.py --steps {args.steps}",
            "voice": VOICE,
            "train_clips": len(train),
            "held_out_names": len(test),
            "steps": args.steps,
            "train_s": round(train_s, 1),
            "synthesis_rtf_with_griffin_lim": round(synth_s / audio_s, 4),
            "top1_held_out_names": {
                "acoustic_model_griffin_lim": top1(recognizer, synthesized, test),
                "engine": top1(recognizer, engine, test),
                "engine_griffin_lim": top1(recognizer, vocoded, test),
            },
        },
    )


if __name__ == "__main__":
    main()
