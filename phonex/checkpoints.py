"""Training checkpoints: everything a killed run needs to continue exactly where it was.

A checkpoint is ``checkpoints/step-NNNNNN/`` with ``model/`` (a model directory that
``phonex.models.load_model`` reads), ``state.safetensors`` (every tensor: optimizer moments and
step counters, RNG states) and ``state.json`` (the rest: optimizer param groups, scheduler, scaler,
Python and NumPy RNG states, step, data position, metric history, config, vocabulary hash, git
SHA). Reading either file runs no code: nothing is unpickled, so a run folder from elsewhere is as
safe to resume as one's own. Folders are written under a temporary name and renamed, so a kill
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from phonex.config import PROJ_ROOT, Config

FORMAT = "phonex-training-state-1"
# Settings a resumed run may change: they decide what is logged and kept, not what is learned.
RESUMABLE_CHANGES = frozenset(
    {"train.log_every", "train.checkpoint_every", "train.keep_checkpoints", "train.eval_every"}
)
_NUMPY_DTYPES = {"uint32", "int64", "float64"}  # what NumPy's RNG state holds
METRIC_FIELDS = ("step", "epoch", "lr", "train_loss", "dev_loss", "dev_error", "elapsed_s")


class CheckpointError(RuntimeError):
    """A checkpoint that does not belong to this run, or that phonex cannot read safely."""


def vocab_hash(vocab) -> str:
    return hashlib.sha1("\n".join(vocab.tokens).encode()).hexdigest()[:12]


def git_sha() -> str:
    """The project's commit, recorded with each checkpoint ("unknown" outside a git checkout)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJ_ROOT,
                              capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def write_metrics(out_dir: Path, history: list[dict]) -> None:
    """``metrics.csv``: one row per logged step (:data:`METRIC_FIELDS`)."""
    with open(out_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, METRIC_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def write_record(path: Path, record: dict) -> None:
    """Strict JSON for other tools: a non-finite number (no finite loss yet) is written as null."""

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value if value is None or isinstance(value, (bool, int, float)) else str(value)

    path.write_text(json.dumps(finite(record), indent=1, allow_nan=False))


# --- nested state <-> safetensors + strict JSON ---------------------------------------------


def _encode(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-ready form of ``value``; each tensor goes to ``tensors[key]`` and leaves a reference.

    Tuples, dicts with non-string keys and non-finite floats are tagged so that
    :func:`_decode` gives back exactly the same objects.
    """
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, np.ndarray) and value.dtype.name in _NUMPY_DTYPES:
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.name}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, f"{key}/{k}", tensors) for k, v in value.items()}
        return {"__items__": [[k, _encode(v, f"{key}/{k}", tensors)] for k, v in value.items()]}
    raise TypeError(f"{key}: cannot store a {type(value).__name__} in a training state")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`_encode`; anything it did not write is a ``ValueError``."""
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    tag = next(iter(value), None)
    if tag == "__tensor__":
        if value[tag] not in tensors:
            raise ValueError(f"no tensor {value[tag]!r}")
        return tensors[value[tag]]
    if tag == "__tuple__" and isinstance(value[tag], list):
        return tuple(_decode(v, tensors) for v in value[tag])
    if tag == "__float__" and value[tag] in ("inf", "-inf", "nan"):
        return float(value[tag])
    if tag == "__ndarray__" and value.get("dtype") in _NUMPY_DTYPES:
        return np.array(value[tag], dtype=value["dtype"])
    if tag == "__items__" and all(isinstance(kv, list) and len(kv) == 2 for kv in value[tag]):
        return {k: _decode(v, tensors) for k, v in value[tag]}
    if isinstance(tag, str) and tag.startswith("__"):
        raise ValueError(f"unexpected entry {tag!r}")
    return {k: _decode(v, tensors) for k, v in value.items()}


def write_state(folder: Path, state: dict, name: str = "state") -> None:
    """Write ``state`` (nested dicts, lists, tuples, numbers, strings, tensors, NumPy arrays) as
    ``folder/<name>.safetensors`` (its tensors) and ``folder/<name>.json`` (the rest, strict)."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, name, tensors)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / f"{name}.safetensors"))
    (folder / f"{name}.json").write_text(json.dumps(tree, indent=1, allow_nan=False))


def read_state(folder: Path, name: str = "state") -> dict:
    """Read what :func:`write_state` wrote, without unpickling anything.

    Raises:
        CheckpointError: a missing file or content that :func:`write_state` did not write; the
            message names the file.
    """
    meta, blob = folder / f"{name}.json", folder / f"{name}.safetensors"
    for path in (meta, blob):
        if not path.is_file():
            raise CheckpointError(f"{folder}: no {path.name}")
    try:
        tree = json.loads(meta.read_text())
        tensors = load_file(str(blob))
        state = _decode(tree, tensors)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError) as err:
        raise CheckpointError(f"{meta} / {blob.name}: unreadable: {err}") from None
    except (ValueError, TypeError, KeyError, RecursionError) as err:
        raise CheckpointError(f"{meta}: not a training state phonex wrote: {err}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{meta}: not a training state phonex wrote")
    return state


# --- training checkpoints -------------------------------------------------------------------


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
    threads: int = 0  # CPU threads of the run: float sums depend on how work is split


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None.

    Raises:
        CheckpointError: a checkpoint folder holds ``state.pt``, the pickle format of earlier
            versions, which is never loaded (unpickling can run any code).
    """
    folders = sorted((out_dir / "checkpoints").glob("step-*[0-9]"))
    for folder in folders:
        if (folder / "state.pt").exists():
            raise CheckpointError(
                f"{folder} holds state.pt, a pickled checkpoint (an older phonex, or not phonex "
                "at all); it is not loaded, because unpickling can run any code. Train into a "
                "new run directory, or pass --restart to start this one again."
            )
    done = [f for f in folders if (f / "state.json").is_file()]
    return done[-1] if done else None


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
    saved = {"format": FORMAT, "state": asdict(state), "config": cfg.to_dict(),
             "vocab_hash": vocab_hash(loaded.vocab), "git_sha": git_sha(), "rng": rng,
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": scaler.state_dict()}  # fmt: skip
    write_state(tmp, saved)
    replace_dir(tmp, final)
    for stale in sorted((out_dir / "checkpoints").glob("step-*[0-9]"))[
        : -cfg.train.keep_checkpoints
    ]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def read_checkpoint(folder: Path, config: dict) -> dict:
    """The saved state of ``folder``, if it was trained with the settings in ``config``.

    Raises:
        CheckpointError: unreadable, not phonex's, or trained with other settings (except
            :data:`RESUMABLE_CHANGES`); the message lists the keys and both values.
    """
    saved = read_state(folder)
    config_ok = isinstance(saved.get("config"), dict) and all(
        isinstance(v, dict) for v in saved["config"].values()
    )
    state = saved.get("state")
    threads = state.get("threads", 0) if isinstance(state, dict) else None
    state_ok = type(threads) is int and threads >= 0
    if saved.get("format") != FORMAT or not (config_ok and state_ok):
        raise CheckpointError(f"{folder}: not a phonex training checkpoint ({FORMAT})")
    # a setting added to phonex after the run started counts as having its default
    old = {**_flatten(Config().to_dict()), **_flatten(saved["config"])}
    new = _flatten(config)
    changed = sorted(k for k in old.keys() | new.keys()
                     if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)  # fmt: skip
    if changed:
        listed = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise CheckpointError(
            f"{folder.parent.parent} was trained with other settings ({listed}); a resumed "
            "run would keep the old ones while config.yaml recorded the new. Use a new run "
            "directory (or --restart) for new settings."
        )
    return saved


def resumable_checkpoint(out_dir: Path, config: dict) -> tuple[Path | None, dict | None]:
    """The newest checkpoint of a run directory and its state (:func:`read_checkpoint`), with
    ``"threads"``, the CPU thread count it trained with (0: not recorded); or ``(None, None)``."""
    folder = latest_checkpoint(out_dir)
    if folder is None:
        return None, None
    saved = read_checkpoint(folder, config)
    return folder, {**saved, "threads": saved["state"].get("threads", 0)}


def _flatten(config: dict) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, values in config.items()
            for key, value in values.items()}  # fmt: skip


def restore_checkpoint(folder: Path, saved: dict, loaded, optimizer, scheduler, scaler) -> State:
    """Restore weights, optimizer, scheduler, scaler and RNGs from ``folder``; return the state."""
    from phonex.models import load_model

    if saved.get("vocab_hash") != vocab_hash(loaded.vocab):
        raise CheckpointError(
            f"{folder} was trained with another vocabulary (hash {saved.get('vocab_hash')}, this run "
            f"{vocab_hash(loaded.vocab)}): use a new run directory or the same data."
        )
    if not any((folder / "model").glob("*.safetensors")):
        raise CheckpointError(f"{folder / 'model'}: no safetensors weights")
    weights = load_model(str(folder / "model")).model.state_dict()
    try:
        loaded.model.load_state_dict(weights)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        rng = saved["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return State(**saved["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{folder}: does not fit this run: {err}") from None
