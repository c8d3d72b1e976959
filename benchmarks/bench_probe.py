"""Layer-wise probes: hidden-state extraction plus probe training for the quick set, timed.

Target (issue 5): extracting every layer's hidden states and training the probes (phones and
the control task, every layer) for the quick set in under 2 minutes on 2 CPU cores, cold cache.
The quick set is notebook 06's: 300 clean clips of the training voices, 150 of the held-out
voices. Also recorded: the layer curves of the recipe model and of its random initialisation.

    python benchmarks/bench_probe.py [--model models/bench-drugs-tiny/best]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from common import record, sample

from phonex import probe
from phonex.config import MODELS_DIR, PROCESSED_DIR
from phonex.corpus import read_manifest
from phonex.models import load_model, random_init

TRAIN_CLIPS, TEST_CLIPS = 300, 150


def timed_probe(model, train_rows, test_rows, cache_dir) -> tuple[probe.ProbeResults, dict]:
    """Probe results, and seconds spent extracting and probing (cold cache)."""
    start = time.perf_counter()
    train = probe.extract_hidden_states(model, train_rows, cache_dir, progress=False)
    test = probe.extract_hidden_states(model, test_rows, cache_dir, progress=False)
    train_labels = probe.label_frames(train, train_rows)
    test_labels = probe.label_frames(test, test_rows)
    extracted = time.perf_counter()
    results = probe.probe_layers(
        train, train_labels, test, test_labels, max_iter=50, progress=False
    )
    done = time.perf_counter()
    seconds = {"extract_and_label_s": round(extracted - start, 1),
               "probe_s": round(done - extracted, 1), "total_s": round(done - start, 1),
               "frames": int(train.offsets[-1] + test.offsets[-1]), "layers": len(train.layers)}  # fmt: skip
    return results, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MODELS_DIR / "bench-drugs-tiny" / "best"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = read_manifest(PROCESSED_DIR / "drugs-quick" / "manifest.jsonl")
    clean = [r for r in rows if r.augmentation == "none"]
    train_rows = sample([r for r in clean if r.split == "train"], TRAIN_CLIPS, rng)
    test_rows = sample([r for r in clean if r.split == "test"], TEST_CLIPS, rng)
    loaded = load_model(args.model)
    out = {}
    with tempfile.TemporaryDirectory() as cache_dir:  # a cold cache: the first run's time
        for name, model in (("trained", loaded), ("random_init", random_init(loaded))):
            results, seconds = timed_probe(model, train_rows, test_rows, cache_dir)
            table = results.table.round(4)
            out[name] = {
                **seconds,
                "best_layer": results.best_layer,
                "layers": table.to_dict("records"),
            }
    total = out["trained"]["total_s"]
    record(
        "probe",
        {
            "command": "python benchmarks/bench_probe.py",
            "model": "models/bench-drugs-tiny/best"
            if args.model == parser.get_default("model")
            else args.model,
            "train_clips": len(train_rows),
            "test_clips": len(test_rows),
            "train_voices": sorted({r.speaker for r in train_rows}),
            "test_voices": sorted({r.speaker for r in test_rows}),
            **out,
            "targets": {"extract_and_probe_s_max": 120},
            "met": total < 120,
        },
    )


if __name__ == "__main__":
    main()
