"""What the training loop feeds its model each step: waveforms, or cached frozen-block features.

:func:`phonex.train.train` asks :func:`training_inputs` for an object with a ``runner`` (the
module it runs and wraps in ``DistributedDataParallel``), ``batch(indices, step, micro)`` (the
runner's keyword arguments for those training clips) and ``evaluate(batch_size, precision)``
(dev loss and error). :class:`WaveInputs` collates waveforms for the model itself.
:class:`CachedInputs` (``model.feature_cache=true``, a Whisper CTC model with
``model.trainable_layers >= 0``) computes the input of the first trained block once per clip
(:class:`phonex.feature_cache.FeatureCache`), then trains the last blocks and the head from it
through :class:`phonex.feature_cache.FromCache`: the model's weights, so the saved model is the
ordinary full model. The frozen blocks run in eval mode when cached (no dropout there; the
trained blocks keep theirs), and SpecAugment moves from the log-mel onto the cached features:
time spans of 5 frames (100 ms) set to zero with probability ``model.mask_time_prob``
(:func:`phonex.feature_cache.mask_features`), the masks drawn from a generator seeded by
(seed, rank, step, micro-step), so a resumed run draws the very same masks.
The real-speech recipes (``configs/phonex-en-*.yaml``) run through
``phonex train --real-speech``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from phonex.config import Config, ConfigError, ModelConfig
from phonex.data import SpeechDataset, collate, sorted_batches
from phonex.decode import greedy_decode
from phonex.evaluate import evaluate
from phonex.feature_cache import FeatureCache, FromCache, mask_features
from phonex.feature_cache import collate as collate_cached
from phonex.metrics import error_rate
from phonex.models import LoadedModel, autocast
from phonex.phonemes import Vocabulary
from phonex.whisper_ctc import WhisperEncoderForCTC

MASK_TIME_LENGTH = 5  # cached frames (20 ms each) per SpecAugment time span
_BUILD_CHUNK = 64  # clips cached between progress updates and index writes


def training_vocabulary(model: ModelConfig, train_rows: list) -> Vocabulary | None:
    """The vocabulary of a new CTC head: every English phone (``model.vocabulary=english``),
    the phones of the train split (``train``), or ``None`` for characters (the model's own)."""
    if model.units == "chars":
        return None
    if model.vocabulary == "english":
        from phonex.english_phones import english_vocabulary

        return english_vocabulary()
    return Vocabulary.build(r.phones for r in train_rows)


class WaveInputs:
    """Waveform batches for the model itself (every layer runs every step).

    Attributes:
        runner: the model.
    """

    def __init__(self, loaded: LoadedModel, train_set: SpeechDataset, dev_set: SpeechDataset,
                 device: torch.device):  # fmt: skip
        self.loaded, self.train_set, self.dev_set, self.device = loaded, train_set, dev_set, device
        self.runner = loaded.model
        self.use_mask = loaded.feature_extractor.return_attention_mask

    def batch(self, indices: list[int], step: int, micro: int) -> dict[str, torch.Tensor]:
        """``input_values [batch, samples]``, ``attention_mask``, ``labels`` of train clips."""
        batch = collate([self.train_set[i] for i in indices], self.use_mask)
        return {k: v.to(self.device) for k, v in batch.items()}

    def evaluate(self, batch_size: int, precision: str) -> dict:
        """:func:`phonex.evaluate.evaluate` on the dev set."""
        return evaluate(self.loaded, self.dev_set, batch_size, precision)


class CachedInputs:
    """Cached frozen-block features of every train and dev clip, batched for :class:`FromCache`.

    Attributes:
        runner: :class:`phonex.feature_cache.FromCache` around the model (same weights).
        cache: the :class:`phonex.feature_cache.FeatureCache` the features come from.
    """

    def __init__(self, loaded: LoadedModel, train_set: SpeechDataset, dev_set: SpeechDataset,
                 device: torch.device, cache: FeatureCache, mask_time_prob: float,
                 seed: int, rank: int):  # fmt: skip
        self.loaded, self.train_set, self.dev_set, self.device = loaded, train_set, dev_set, device
        self.cache, self.mask_time_prob, self.seed, self.rank = cache, mask_time_prob, seed, rank
        self.runner = FromCache(loaded.model, cache.first_block)

    def build(self, progress: bool) -> None:
        """Compute (or check) the features of every train and dev clip, with a progress bar."""
        waves = [e.wave for data in (self.train_set, self.dev_set) for e in data.examples]
        with tqdm(total=len(waves), desc="caching frozen blocks", disable=not progress) as bar:
            for start in range(0, len(waves), _BUILD_CHUNK):
                chunk = waves[start : start + _BUILD_CHUNK]
                self.cache.build(chunk)  # writes the index: an interrupted build keeps its work
                bar.update(len(chunk))

    def _collate(self, dataset: SpeechDataset, indices: list[int]):
        # Features are looked up per batch, not held open: one memory map per clip of a large
        # corpus would use one file descriptor each.
        examples = [dataset[i] for i in indices]
        features = [self.cache.get(e.wave) for e in examples]
        return examples, collate_cached(features, [e.labels for e in examples])

    def batch(self, indices: list[int], step: int, micro: int) -> dict[str, torch.Tensor]:
        """``hidden [batch, frames, d_model]`` (time-masked), ``frames``, ``labels``."""
        _, batch = self._collate(self.train_set, indices)
        if self.mask_time_prob > 0:
            rng = np.random.default_rng([self.seed, self.rank, step, micro])
            batch = mask_features(batch, rng, self.mask_time_prob, MASK_TIME_LENGTH)
        return {"hidden": batch.hidden.to(self.device), "frames": batch.frames.to(self.device),
                "labels": batch.labels.to(self.device)}  # fmt: skip

    @torch.no_grad()
    def evaluate(self, batch_size: int, precision: str) -> dict:
        """Dev loss and error from the cached features, unmasked (as :func:`evaluate`)."""
        model, data = self.loaded.model, self.dev_set
        was_training = model.training
        model.eval()
        losses, hyps, refs = [], {}, {}
        for idx in sorted_batches(data.lengths, batch_size):
            examples, b = self._collate(data, idx)
            with autocast(precision, self.device):
                out = self.runner(b.hidden.to(self.device), b.frames.to(self.device),
                                  b.labels.to(self.device))  # fmt: skip
            losses.append(out.loss.float().item() * len(idx))
            texts = greedy_decode(out.logits.float().cpu(), self.loaded.vocab, b.frames)
            for e, text in zip(examples, texts):
                hyps[e.id], refs[e.id] = text, e.reference
        model.train(was_training)
        ids = [e.id for e in data.examples]
        chars = self.loaded.units == "chars"
        rate = error_rate([refs[i] for i in ids], [hyps[i] for i in ids], chars)
        return {"loss": sum(losses) / len(data), **rate.as_dict("error"),
                "hypotheses": [hyps[i] for i in ids]}  # fmt: skip


def check_feature_cache(model: ModelConfig, loaded: LoadedModel) -> None:
    """Raise :class:`ConfigError` if ``model.feature_cache`` is set for a model it cannot serve."""
    if model.feature_cache and not isinstance(loaded.model, WhisperEncoderForCTC):
        raise ConfigError(
            f"setting 'model.feature_cache' is true but model.name={model.name!r} is a "
            f"{type(loaded.model).__name__}: the feature cache is for Whisper CTC models "
            "(whisper-tiny.en, whisper-base, whisper-tiny-test); set model.feature_cache=false"
        )


def training_inputs(
    cfg: Config,
    loaded: LoadedModel,
    train_set: SpeechDataset,
    dev_set: SpeechDataset,
    ddp,
    progress: bool = True,
    cache_root: str | Path | None = None,
) -> WaveInputs | CachedInputs:
    """The inputs of a run: cached features when ``model.feature_cache``, else waveforms.

    Args:
        cfg: the run's settings.
        loaded: the model, frozen as it trains.
        ddp: the process's :class:`phonex.train.Distributed`; rank 0 builds the cache first,
            the others then read it.
        cache_root: folder of feature caches (``None``: ``data/interim/features``).

    Raises:
        ConfigError: ``model.feature_cache`` on a model that is not a Whisper CTC model.
    """
    m = cfg.model
    if not m.feature_cache:
        return WaveInputs(loaded, train_set, dev_set, ddp.device)
    check_feature_cache(m, loaded)
    distributed = ddp.world > 1
    if distributed and not ddp.main:
        dist.barrier()  # rank 0 builds the cache first; the others open it after and only read
    cache = FeatureCache(loaded.model, m.trainable_layers, cache_root, m.feature_cache_dtype)
    inputs = CachedInputs(loaded, train_set, dev_set, ddp.device, cache, m.mask_time_prob,
                          cfg.train.seed, ddp.rank)  # fmt: skip
    inputs.build(progress and ddp.main)
    if distributed and ddp.main:
        dist.barrier()
    return inputs
