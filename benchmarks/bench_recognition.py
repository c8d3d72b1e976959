"""Drug-name recognition with the default model: accuracy targets and lexicon-scoring speed.

Targets, on the held-out espeak-ng voices of the quick corpus over the whole lexicon (565 names):
top-1 >= 97 % and top-5 >= 99.5 % clean, top-1 >= 90 % at 10 dB SNR (pink noise); lexicon
scoring >= 200 clips/s against 300 names on 2 CPU cores with emissions already computed
(emissions timed separately). Also recorded: the fuzzy-match baseline, each voice, an unheard
engine (piper, when installed) and real spoken digits (FSDD, when ../shared/data/fsdd exists).

    python benchmarks/bench_recognition.py [--model models/bench-drugs-tiny/best]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import record

from phonex import metrics
from phonex.audio import load_audio
from phonex.config import MODELS_DIR, PROCESSED_DIR, PROJ_ROOT, SHARED_DATA_DIR, Config, DataConfig
from phonex.corpus import read_manifest
from phonex.decode import ctc_log_likelihoods
from phonex.lexicon import load_drugs
from phonex.readers import DIGIT_WORDS, read_fsdd
from phonex.recognize import Recognizer, evaluate_recognition
from phonex.synth import build_corpus
from phonex.tts import get_engine

TARGETS = {"clean_top1_min": 0.97, "clean_top5_min": 0.995, "snr10_top1_min": 0.90,
           "scoring_clips_per_s_min": 200}  # fmt: skip
SNRS = [None, 20, 10, 5]


def by_condition(table, rank="rank") -> dict:
    return {
        cond: {k: round(v, 4) for k, v in metrics.summarize_ranks(g[rank].tolist()).items()}
        for cond, g in table.groupby("condition", sort=False)
    }


def scoring_speed(recognizer: Recognizer, log_probs: list, repeats: int = 3) -> float:
    """Median clips per second of lexicon scoring alone."""
    padded = torch.nn.utils.rnn.pad_sequence(log_probs, batch_first=True)
    lengths = torch.tensor([len(e) for e in log_probs])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ctc_log_likelihoods(padded, recognizer.lexicon, lengths)
        times.append(time.perf_counter() - start)
    return len(log_probs) / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MODELS_DIR / "bench-drugs-tiny" / "best"))
    parser.add_argument("--noise", default="pink")
    args = parser.parse_args()
    cfg = Config.load(PROJ_ROOT / "configs" / "drugs-tiny.yaml")
    manifest = build_corpus(PROCESSED_DIR / "drugs-quick", cfg.data, cfg.audio.sample_rate)
    rows = [r for r in read_manifest(manifest) if r.split == "test" and r.augmentation == "none"]
    names = [d.name for d in load_drugs()]
    recognizer = Recognizer(args.model, names)
    table = evaluate_recognition(recognizer, rows, SNRS, args.noise)
    accuracy = by_condition(table)

    waves = [load_audio(r.audio) for r in rows]
    start = time.perf_counter()
    log_probs = recognizer.emissions(waves)
    emissions_per_s = len(waves) / (time.perf_counter() - start)
    sample = sorted(np.random.default_rng(0).choice(len(names), 300, replace=False))
    speed = {
        "clips": len(waves),
        "mean_frames": round(float(np.mean([len(e) for e in log_probs])), 1),
        "emissions_clips_per_s": round(emissions_per_s, 1),
        "scoring_clips_per_s_300_names": round(
            scoring_speed(Recognizer(recognizer.loaded, [names[i] for i in sample]), log_probs), 1
        ),
        "scoring_clips_per_s_565_names": round(scoring_speed(recognizer, log_probs), 1),
    }

    extra = {}
    if get_engine("piper").available()[0]:
        piper_cfg = DataConfig(size="full", engines=["piper"], augmentations_per_clip=0)
        piper_rows = read_manifest(build_corpus(PROCESSED_DIR / "drugs-piper", piper_cfg))
        extra["piper"] = by_condition(evaluate_recognition(recognizer, piper_rows, [None, 10]))
    if (SHARED_DATA_DIR / "fsdd").is_dir():
        fsdd = evaluate_recognition(Recognizer(recognizer.loaded, list(DIGIT_WORDS)),
                                    read_fsdd(SHARED_DATA_DIR / "fsdd"))  # fmt: skip
        extra["fsdd_top1"] = round(float(np.mean(fsdd["rank"] == 1)), 4)
        extra["fsdd_top1_by_speaker"] = {
            spk: round(float(np.mean(g["rank"] == 1)), 4) for spk, g in fsdd.groupby("speaker")
        }

    clean, noisy = accuracy["clean"], accuracy["10 dB"]
    record(
        "recognition",
        {
            "command": "python benchmarks/bench_recognition.py",
            "model": str(Path(args.model).relative_to(PROJ_ROOT))
            if Path(args.model).is_relative_to(PROJ_ROOT)
            else args.model,
            "lexicon_names": len(recognizer.words),
            "noise": args.noise,
            "torch_threads": torch.get_num_threads(),
            "lexicon_scoring": accuracy,
            "fuzzy_match_baseline": by_condition(table, "fuzzy_rank"),
            "clean_top1_by_voice": {
                spk: round(float(np.mean(g["rank"] == 1)), 4)
                for spk, g in table[table.condition == "clean"].groupby("speaker")
            },
            "low_confidence_rate": {
                cond: round(float(g.low_confidence.mean()), 4)
                for cond, g in table.groupby("condition", sort=False)
            },
            "speed": speed,
            **extra,
            "targets": TARGETS,
            "met": clean["top1"] >= TARGETS["clean_top1_min"]
            and clean["top5"] >= TARGETS["clean_top5_min"]
            and noisy["top1"] >= TARGETS["snr10_top1_min"]
            and speed["scoring_clips_per_s_300_names"] >= TARGETS["scoring_clips_per_s_min"],
        },
    )


if __name__ == "__main__":
    main()
