"""Layer-wise probes on real speech: where each model holds phone identity, against hand labels.

TIMIT (``../shared/data/timit-sample-dev``, SA sentences left out: 64 utterances of 8 speakers)
with frames labelled from its hand-made ``.phn`` (folded to 39 classes, silence left out;
:mod:`phonex.timit_frames`). Linear probes per layer, for phones and for the control task, in
leave-2-speakers-out folds (each fold tests one woman and one man, fitted on the other six
speakers), the folds' test frames pooled: every utterance tested once, 95 % intervals by
bootstrap over utterances. Models: Whisper tiny.en and base, pretrained and randomly
initialised, the fine-tuned real-speech model ``phonex-en``, the from-scratch synthetic model
(``models/drugs-tiny/best``, when notebook 03 has trained it) and the log-mel input baseline.
Per model the best layer is recorded with its interval (:func:`phonex.probe_curves.peak_layer`:
the range of best layers over bootstrap resamples) and its accuracy interval.

Also speechocean762 (non-native speakers): frames labelled by ``phonex-en``'s forced alignment,
probes fitted on the dev speakers and tested on the held-out test speakers, neither of which
phonex-en trained on. That labelling is checked on TIMIT: the share of hand-labelled phone frames
to which phonex-en's alignment of the transcript gives the same phone, and its boundary accuracy
as ``benchmarks/bench_alignment.py --part timit`` recorded it.

Target (issue 5, kept): one model's every layer, extraction (cold cache) and probes, in under
2 minutes on 2 CPU cores; here phonex-en on TIMIT.

    python benchmarks/bench_probe.py [--model phonex-en] [--folds 4] [--so-clips 120]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
from common import RESULTS_DIR, record, sample

from phonex import probe_curves as pc
from phonex import timit_frames as tf
from phonex.config import MODELS_DIR, SHARED_DATA_DIR

TARGET_S = 120


def model_rows(results, data: str) -> list[dict]:
    """Best layer per model, then the whole curve, rounded for the JSON."""
    best = pc.best_layers(results, data).round(4).to_dict("records")
    for row in best:
        table = results[row["model"]].table.round(4)
        row["curve"] = table.drop(columns=["train_frames", "test_frames", "folds"]).to_dict(
            "records"
        )
    return best


def timit(models: dict, folds: int, max_iter: int, cache_dir: str) -> dict:
    """Every model on TIMIT, each timed from a cold cache."""
    clips = tf.timit_clips(SHARED_DATA_DIR / "timit-sample-dev")
    test_folds = tf.speaker_folds(clips.speakers, folds)
    results, seconds = {}, {}
    for name, model in models.items():
        start = time.perf_counter()
        results.update(pc.curves({name: model}, clips, test_folds, cache_dir, max_iter))
        seconds[name] = round(time.perf_counter() - start, 1)
    rows = model_rows(results, "TIMIT")
    for row in rows:
        row["seconds"] = seconds[row["model"]]
    return {
        "clips": len(clips.rows),
        "speakers": sorted(set(clips.speakers)),
        "folds": [sorted({clips.speakers[i] for i in f}) for f in test_folds],
        "labels": clips.source + " (39 classes, closures merged, silence left out)",
        "test_frames": int(results[next(iter(results))].table.test_frames.iloc[0]),
        "models": rows,
    }


def speechocean(models: dict, aligner, name: str, n: int, max_iter: int, cache_dir: str) -> dict:
    """Probes fitted on speechocean762's dev speakers, tested on its test speakers."""
    from phonex.readers import speechocean_rows

    rng = np.random.default_rng(0)
    rows = speechocean_rows(SHARED_DATA_DIR / "speechocean762-train", "en-us")
    picked = sample([r for r in rows if r.split == "dev"], n, rng)
    picked += sample([r for r in rows if r.split == "test"], n, rng)
    clips, skipped = tf.aligned_clips(aligner, picked, name)
    test = np.flatnonzero([r.split == "test" for r in clips.rows])
    results = pc.curves(models, clips, [test], cache_dir, max_iter)
    return {
        "fit_clips": len(clips.rows) - len(test),
        "test_clips": len(test),
        "fit_speakers": len({r.speaker for r in clips.rows if r.split == "dev"}),
        "test_speakers": len({r.speaker for r in clips.rows if r.split == "test"}),
        "labels": clips.source + " (folded to 39 classes, silence left out)",
        "not_aligned": skipped,
        "models": model_rows(results, "speechocean762"),
    }


def labelling_on_timit(aligner, name: str) -> dict:
    """The aligner's frame labels of TIMIT (its transcripts phonemized) against the hand labels:
    the labelling speechocean762's probes rest on, checked where it can be."""
    from dataclasses import replace

    hand = tf.timit_clips(SHARED_DATA_DIR / "timit-sample-dev")
    aligned, skipped = tf.aligned_clips(aligner, [replace(r, phones="") for r in hand.rows], name)
    return {**tf.frame_agreement(hand, aligned), "not_aligned": skipped}


def alignment_on_timit() -> dict | str:
    """What bench_alignment.py recorded about TIMIT boundaries, if it has."""
    path = RESULTS_DIR / "alignment_timit.json"
    if not path.is_file():
        return "not recorded yet: run python benchmarks/bench_alignment.py --part timit"
    found = json.loads(path.read_text())
    return {"file": f"benchmarks/results/{path.name}", "date": found.get("date"),
            "model": found.get("model"), "uncalibrated": found.get("uncalibrated")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=pc.PHONEX_EN, help="the fine-tuned phone model")
    parser.add_argument("--from-scratch", default=str(MODELS_DIR / "drugs-tiny" / "best"))
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--max-iter", type=int, default=50, help="L-BFGS steps per probe")
    parser.add_argument("--so-clips", type=int, default=120, help="per side of speechocean")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not (SHARED_DATA_DIR / "timit-sample-dev").is_dir():
        raise SystemExit(f"{SHARED_DATA_DIR / 'timit-sample-dev'} is absent: nothing to measure")
    models, skipped = pc.standard_models(finetuned=(args.model,), from_scratch=args.from_scratch)
    finetuned = f"{args.model} fine-tuned"
    with tempfile.TemporaryDirectory() as cache_dir:  # cold: the first run's time
        on_timit = timit(models, args.folds, args.max_iter, cache_dir)
        so = {"skipped": "speechocean762-train absent"}
        if (SHARED_DATA_DIR / "speechocean762-train").is_dir():
            so_models = {k: m for k, m in models.items() if "random" not in k}
            so = speechocean(so_models, models[finetuned], args.model, args.so_clips,
                            args.max_iter, cache_dir)  # fmt: skip
    seconds = next(r["seconds"] for r in on_timit["models"] if r["model"] == finetuned)
    command = "python benchmarks/bench_probe.py"
    defaults = {a: parser.get_default(a) for a in vars(args)}
    extra = [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v != defaults[k]]
    record("probe", {
        "command": " ".join([command, *extra]), "skipped": skipped,
        "timit": on_timit, "speechocean762": so,
        "speechocean_labelling_frame_agreement_on_timit": labelling_on_timit(models[finetuned],
                                                                             args.model),
        "speechocean_labelling_boundaries_on_timit": alignment_on_timit(),
        "targets": {"one_model_extract_and_probe_s_max": TARGET_S},
        "timed_model": finetuned, "timed_s": seconds, "met": seconds < TARGET_S,
    })  # fmt: skip


if __name__ == "__main__":
    main()
