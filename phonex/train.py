"""The one training loop: CTC fine-tuning with AMP, accumulation, checkpoints, resume and DDP.

Written in the style of nanoGPT's train.py: plain PyTorch, readable top to bottom.

- Mixed precision: bf16 autocast, or fp16 autocast with ``torch.amp.GradScaler`` (the modern form
  of FP16_Optimizer's dynamic loss scaling: an overflow halves the scale and skips the step; the
  scale grows again after clean steps).
- DDP: run under ``torchrun --nproc_per_node=N -m phonex.cli train ...``: each process takes
  its slice of every global batch; gradients are synchronised only on the last micro-step.
- Resume: a checkpoint holds model, optimizer, scheduler, scaler, RNG states, step, data position
  and CPU thread count; batch order is a function of (seed, epoch), so a resumed run continues
  exactly. It must keep its settings (:func:`phonex.checkpoints.read_checkpoint`).
- ``model.feature_cache``: frozen Whisper blocks run once per clip (:mod:`phonex.cached_training`).

A run directory holds ``config.yaml``, ``metrics.csv``, ``run.json``, ``checkpoints/step-N/`` and
``best/`` (the model with the lowest dev error, loadable with ``phonex.models.load_model``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm
from transformers import get_scheduler

from phonex.cached_training import check_feature_cache, training_inputs, training_vocabulary
from phonex.checkpoints import (
    State,
    git_sha,
    replace_dir,
    restore_checkpoint,
    resumable_checkpoint,
    save_checkpoint,
    vocab_hash,
    write_metrics,
    write_record,
)
from phonex.config import Config
from phonex.corpus import read_manifest
from phonex.data import DataError, SpeechDataset, collate, length_grouped_batches
from phonex.models import (
    TINY_CONFIGS,
    LoadedModel,
    ModelError,
    autocast,
    freeze,
    load_model,
    resolve_precision,
)  # fmt: skip


class TrainingError(RuntimeError):
    """A run that cannot start or continue."""


# --- setup helpers --------------------------------------------------------------------------


@dataclass
class Distributed:
    """This process's place in a DDP run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def setup(cls) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        cuda = torch.cuda.is_available()
        if world == 1:
            return cls(0, 1, torch.device("cuda" if cuda else "cpu"))
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        return cls(dist.get_rank(), world, device)

    def mean(self, value: float) -> float:
        """Average a number over processes."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.item() / self.world

    def all_true(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())


def read_splits(manifests: list[str | Path]) -> tuple[list, list]:
    """Train and dev rows of one or more manifests (their ``split`` fields)."""
    rows = [row for m in manifests for row in read_manifest(m)]
    train_rows = [r for r in rows if r.split == "train"]
    dev_rows = [r for r in rows if r.split == "dev"]
    names = ", ".join(str(m) for m in manifests)
    if not train_rows:
        raise DataError(f"{names}: no rows with split=train")
    if not dev_rows:
        raise DataError(
            f"{names}: no rows with split=dev, so there is nothing to evaluate on. Split off "
            "some speakers with phonex.corpus.split_by_group(rows, 'speaker', dev=...)."
        )
    return train_rows, dev_rows


def prepare_model(cfg: Config, train_rows: list) -> LoadedModel:
    """Load or build the model named in ``cfg.model`` with a head that fits the training labels."""
    m = cfg.model
    names = ("hidden", "attention", "activation", "feat_proj", "final")
    dropouts = {f"{name}_dropout": m.dropout for name in names}
    dropouts.update(layerdrop=0.0, mask_time_prob=m.mask_time_prob)
    if m.head not in ("auto", "new", "keep"):
        raise ModelError(f"model.head={m.head!r}: expected auto, new or keep")
    train_vocab = training_vocabulary(m, train_rows)
    if m.head == "keep" or m.units == "chars":
        return load_model(m.name, None, m.units, cfg.data.language, **dropouts)
    loaded = None
    if m.head == "auto" and Path(m.name).is_dir():
        loaded = load_model(m.name, None, m.units, cfg.data.language, **dropouts)
        if loaded.units != m.units:
            loaded = None
    return loaded or load_model(m.name, train_vocab, m.units, cfg.data.language, **dropouts)


# --- the loop -------------------------------------------------------------------------------


def optimizer_step(model, optimizer, scaler, clip: float) -> bool:
    """Unscale, clip, step and update the scaler. Returns False when the scaler skipped the step."""
    scaler.unscale_(optimizer)
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    scale = scaler.get_scale()
    scaler.step(optimizer)  # skipped inside when unscale_ found inf/nan
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return not (scaler.is_enabled() and scaler.get_scale() < scale)


def time_training_steps(
    loaded: LoadedModel,
    examples: list,
    trainable_layers: int = -1,
    feature_encoder: bool = True,
    precision: str = "no",
    steps: int = 3,
) -> dict:
    """Wall time of a training step on one batch for a freezing choice (on a copy of the model).

    Args:
        loaded: the model; left untouched.
        examples: one batch of :class:`phonex.data.Example`.
        trainable_layers, feature_encoder: as :func:`phonex.models.freeze`.
        steps: timed steps, after one warm-up step.

    Returns:
        parameter counts, seconds per step and seconds of audio trained per wall second.
    """
    model = copy.deepcopy(loaded.model).train()
    counts = freeze(model, trainable_layers, feature_encoder)
    device = next(model.parameters()).device
    use_mask = loaded.feature_extractor.return_attention_mask
    batch = {k: v.to(device) for k, v in collate(examples, use_mask).items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    for i in range(steps + 1):
        if i == 1:  # the first step allocates optimizer state: not timed
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast(precision, device):
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        optimizer_step(model, optimizer, scaler, clip=1.0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    audio = sum(len(e.wave) for e in examples) / loaded.sample_rate
    return {
        "trainable_layers": trainable_layers,
        "trainable": counts.trainable,
        "total": counts.total,
        "step_s": seconds,
        "audio_s_per_s": audio / seconds,
    }


@dataclass
class RunResult:
    out_dir: Path
    best_dir: Path
    state: State
    params: dict


def train(
    cfg: Config,
    manifests: list[str | Path],
    out_dir: str | Path,
    resume: bool = True,
    progress: bool = True,
    cache_root: str | Path | None = None,
) -> RunResult:
    """Fine-tune (or train from scratch) a CTC model on the train split of ``manifests``.

    Args:
        cfg: model, train and audio settings.
        manifests: corpus manifests; rows with ``split`` train are trained on, dev evaluated.
        out_dir: run directory; an existing one with checkpoints is resumed when ``resume``,
            with the same settings (others raise :class:`phonex.checkpoints.CheckpointError`).
        progress: show progress bars.
        cache_root: folder of ``model.feature_cache`` features (``None``: data/interim/features).

    Returns:
        the run directory, the best model's directory, the final state and parameter counts.
    """
    threads = torch.get_num_threads()
    try:
        return _train(cfg, manifests, Path(out_dir), resume, progress, cache_root)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: Config, manifests: list, out_dir: Path, resume: bool, progress: bool,
           cache_root: str | Path | None) -> RunResult:  # fmt: skip
    ckpt, saved = resumable_checkpoint(out_dir, cfg.to_dict()) if resume else (None, None)
    t = cfg.train
    # Float sums split over N threads round differently than over M: one count per run.
    torch.set_num_threads(t.threads or (saved or {}).get("threads") or torch.get_num_threads())
    ddp = Distributed.setup()
    torch.manual_seed(t.seed)
    train_rows, dev_rows = read_splits(manifests)
    loaded = prepare_model(cfg, train_rows)
    check_feature_cache(cfg.model, loaded)
    # A feature encoder built from scratch is random: it must train.
    freeze_conv = cfg.model.freeze_feature_encoder and cfg.model.name not in TINY_CONFIGS
    counts = freeze(loaded.model, cfg.model.trainable_layers, freeze_conv)
    rate = loaded.sample_rate
    common = {"units": loaded.units, "sample_rate": rate, "max_seconds": t.max_seconds,
              "normalize": loaded.feature_extractor.do_normalize}  # fmt: skip
    train_set = SpeechDataset(train_rows, loaded.vocab, **common, drop_long=t.drop_long,
                              unknown=t.unknown, progress=progress and ddp.main)  # fmt: skip
    dev_set = SpeechDataset(dev_rows, loaded.vocab, **common, drop_long=True, unknown="unk")
    precision = resolve_precision(t.mixed_precision, ddp.device)
    model = loaded.model.to(ddp.device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=t.lr, weight_decay=t.weight_decay)
    scheduler = get_scheduler(t.schedule, optimizer, t.warmup_steps, t.max_steps)
    scaler = torch.amp.GradScaler(ddp.device.type, enabled=precision == "fp16")
    state = State(threads=torch.get_num_threads())
    if saved:
        state = restore_checkpoint(ckpt, saved, loaded, optimizer, scheduler, scaler)
    if state.step == 0:  # dropout and masking differ per process, as in nanoGPT
        random.seed(t.seed + ddp.rank)
        torch.manual_seed(t.seed + ddp.rank)
        np.random.seed(t.seed + ddp.rank)
    inputs = training_inputs(cfg, loaded, train_set, dev_set, ddp, progress, cache_root)
    ddp_model = inputs.runner  # the model, or FromCache around it: the same weights
    if ddp.world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            ddp_model, find_unused_parameters=True
        )
    if ddp.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(out_dir / "config.yaml")
    global_batch = t.batch_size * ddp.world

    def epoch_batches(epoch: int) -> list[list[int]]:
        batches = length_grouped_batches(train_set.lengths, global_batch, t.seed, epoch)
        return [b for b in batches if len(b) >= ddp.world]  # every process gets some clips

    batches = epoch_batches(state.epoch)
    bar = tqdm(total=t.max_steps, initial=state.step, desc="training",
               disable=not (progress and ddp.main))  # fmt: skip
    start, losses = time.time(), []
    elapsed_before = state.history[-1]["elapsed_s"] if state.history else 0.0
    while state.step < t.max_steps:
        step_ok, step_loss = True, 0.0
        for micro in range(t.grad_accum):
            if state.batch_in_epoch >= len(batches):
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                batches = epoch_batches(state.epoch)
            idx = batches[state.batch_in_epoch]
            state.batch_in_epoch += 1
            mine = idx[ddp.rank * len(idx) // ddp.world : (ddp.rank + 1) * len(idx) // ddp.world]
            batch = inputs.batch(mine, state.step, micro)
            last = micro == t.grad_accum - 1
            sync = contextlib.nullcontext() if last or ddp.world == 1 else ddp_model.no_sync()
            with sync:
                with autocast(precision, ddp.device):
                    loss = ddp_model(**batch).loss / t.grad_accum
                if not ddp.all_true(bool(torch.isfinite(loss))):
                    step_ok = False
                    break
                scaler.scale(loss).backward()
            step_loss += loss.item()
        if step_ok:
            if not optimizer_step(model, optimizer, scaler, t.clip_grad_norm):
                state.overflow_steps += 1
        else:
            optimizer.zero_grad(set_to_none=True)
            state.skipped_steps += 1
        scheduler.step()
        state.step += 1
        bar.update(1)
        if step_ok:
            losses.append(ddp.mean(step_loss))
        epoch_done = state.batch_in_epoch >= len(batches)
        evaluate_now = (
            (t.eval_every and state.step % t.eval_every == 0)
            or (not t.eval_every and epoch_done)
            or state.step == t.max_steps
        )
        if state.step % t.log_every == 0 or evaluate_now:
            row = {
                "step": state.step,
                "epoch": round(state.epoch + state.batch_in_epoch / len(batches), 3),
                "lr": scheduler.get_last_lr()[0],
                "train_loss": float(np.mean(losses)) if losses else math.nan,
                "elapsed_s": round(elapsed_before + time.time() - start, 1),
            }
            losses = []
            if evaluate_now and ddp.main:
                result = inputs.evaluate(2 * t.batch_size, precision)
                row.update(dev_loss=result["loss"], dev_error=result["error"])
                bar.set_postfix(loss=f"{row['train_loss']:.3f}", dev=f"{result['error']:.3f}")
                if result["error"] < state.best_error:
                    state.best_error = result["error"]
                    tmp = out_dir / "best.tmp"
                    shutil.rmtree(tmp, ignore_errors=True)
                    replace_dir(loaded.save(tmp), out_dir / "best")
            state.history.append(row)
            if ddp.main:
                write_metrics(out_dir, state.history)
        if ddp.main and (state.step % t.checkpoint_every == 0 or state.step == t.max_steps):
            save_checkpoint(out_dir, loaded, optimizer, scheduler, scaler, state, cfg)
        if ddp.world > 1:
            dist.barrier()
    bar.close()
    result = RunResult(out_dir, out_dir / "best", state, counts.__dict__)
    _finish(result, cfg, loaded, train_set, dev_set, ddp)
    if ddp.world > 1:  # all ranks reach destroy together: a rank left waiting can hang in it
        dist.barrier()
        dist.destroy_process_group()
    return result


def _finish(result: RunResult, cfg, loaded, train_set, dev_set, ddp: Distributed) -> None:
    """run.json: settings, data, counts, final metrics, and each process's weight checksum."""
    checksum = float(sum(p.detach().double().sum() for p in loaded.model.parameters()))
    sums = [checksum]
    if ddp.world > 1:
        sums = [None] * ddp.world
        dist.all_gather_object(sums, checksum)
    if not ddp.main:
        return
    record = {
        "config": cfg.to_dict(),
        "git_sha": git_sha(),
        "vocab_hash": vocab_hash(loaded.vocab),
        "vocab_size": len(loaded.vocab),
        "units": loaded.units,
        "train_clips": len(train_set),
        "dev_clips": len(dev_set),
        "parameters": result.params,
        "step": result.state.step,
        "best_dev_error": result.state.best_error,
        "skipped_steps": result.state.skipped_steps,
        "overflow_steps": result.state.overflow_steps,
        "world_size": ddp.world,
        "threads": result.state.threads,
        "rank_weight_checksums": sums,
        "final": result.state.history[-1] if result.state.history else {},
    }
    write_record(result.out_dir / "run.json", record)
    write_metrics(result.out_dir, result.state.history)
