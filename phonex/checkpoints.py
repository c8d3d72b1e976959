"""Training checkpoints: everything a killed run needs to continue exactly where it was.

A checkpoint is ``checkpoints/step-NNNNNN/`` with ``model/`` (a model directory that
``phonex.models.load_model`` reads) and ``state.pt``: optimizer, scheduler, scaler, RNG states,
step, data position, metric history, config, vocabulary hash and git SHA. Folders are written
under a temporary name and renamed, so a kill leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from phonex.config import PROJ_ROOT
from phonex.models import load_model
from phonex.phonemes import Vocabulary


class CheckpointError(RuntimeError):
    """A checkpoint that does not belong to this run."""


def vocab_hash(vocab: Vocabulary) -> str:
    return hashlib.sha1("\n".join(vocab.tokens).encode()).hexdigest()[:12]


def git_sha() -> str:
    """The project's commit, recorded with each checkpoint ("unknown" outside a git checkout)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJ_ROOT,
                              capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


@dataclass
class State:
    """Everything besides the weights that a resumed run needs."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # next batch of the epoch to train on
    best_error: float = math.inf
    skipped_steps: int = 0  # non-finite loss
    overflow_steps: int = 0  # fp16 scaler found inf/nan gradients
    history: list = field(default_factory=list)


def latest_checkpoint(out_dir: Path) -> Path | None:
    done = sorted((out_dir / "checkpoints").glob("step-*[0-9]/state.pt"))
    return done[-1].parent if done else None


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a fully written folder into place (a kill leaves either the old or the new one)."""
    old = final.with_name(final.name + ".old")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(out_dir, loaded, optimizer, scheduler, scaler, state, cfg) -> Path:
    final = out_dir / "checkpoints" / f"step-{state.step:06d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    loaded.save(tmp / "model")
    rng = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rng,
            "state": state.__dict__,
            "config": cfg.to_dict(),
            "vocab_hash": vocab_hash(loaded.vocab),
            "git_sha": git_sha(),
        },
        tmp / "state.pt",
    )
    replace_dir(tmp, final)
    for stale in sorted((out_dir / "checkpoints").glob("step-*[0-9]"))[
        : -cfg.train.keep_checkpoints
    ]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_checkpoint(folder: Path, loaded, optimizer, scheduler, scaler) -> State:
    """Restore weights, optimizer, scheduler, scaler and RNGs from ``folder``; return the state."""
    saved = torch.load(folder / "state.pt", weights_only=False)
    if saved["vocab_hash"] != vocab_hash(loaded.vocab):
        raise CheckpointError(
            f"{folder} was trained with another vocabulary (hash {saved['vocab_hash']}, this run "
            f"{vocab_hash(loaded.vocab)}): use a new run directory or the same data."
        )
    weights = load_model(str(folder / "model")).model.state_dict()
    loaded.model.load_state_dict(weights)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    random.setstate(saved["rng"]["python"])
    np.random.set_state(saved["rng"]["numpy"])
    torch.set_rng_state(saved["rng"]["torch"])
    if saved["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
    return State(**saved["state"])
