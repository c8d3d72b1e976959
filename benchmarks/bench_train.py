"""Training throughput and peak memory of the tiny config, per batch size and trainable layers.

Throughput is seconds of audio trained per wall-clock second (forward, backward, optimizer step
on 1-second synthetic clips, after a warm-up step). Each setting runs in its own process so that
its peak resident memory (CPU) or peak allocated memory (CUDA) is its own. Uses the GPU when
there is one.

    python benchmarks/bench_train.py [--batch-sizes 4 8 16] [--layers 0 2 -1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import numpy as np
import torch
from common import record

from phonex.data import Example
from phonex.models import load_model, resolve_precision
from phonex.phonemes import Vocabulary
from phonex.train import time_training_steps

PHONES = "d ɹ ʌ ɡ n eɪ m z | æ b ɪ l ᵻ f aɪ"


def one_setting(batch_size: int, layers: int, model_name: str) -> dict:
    """Time a few steps on synthetic 1 s clips (waveform noise: speed does not depend on content)."""
    vocab = Vocabulary.build([PHONES])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loaded = load_model(model_name, vocab)
    loaded.model.to(device)
    rng = np.random.default_rng(0)
    labels = vocab.encode(PHONES)
    examples = [Example(f"clip{i}", rng.standard_normal(16000).astype(np.float32), labels, PHONES)
                for i in range(batch_size)]  # fmt: skip
    precision = resolve_precision("auto", device)
    out = time_training_steps(loaded, examples, layers, feature_encoder=False, precision=precision)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {**out, "batch_size": batch_size, "device": device.type, "precision": precision,
            "peak_memory_mb": round(peak_mb, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 2, -1])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_setting(*args.one, args.model)))
        return
    rows = []
    for batch_size in args.batch_sizes:
        for layers in args.layers:
            command = [sys.executable, __file__, "--model", args.model, "--one",
                       str(batch_size), str(layers)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    record("train_throughput", {
        "command": "python benchmarks/bench_train.py " + " ".join(sys.argv[1:]),
        "model": args.model,
        "torch_threads": torch.get_num_threads(),
        "settings": rows,
    })  # fmt: skip


if __name__ == "__main__":
    main()
