"""Frozen-prefix features of a Whisper CTC model, computed once per clip and trained from.

Training only the last ``N`` blocks of :class:`phonex.whisper_ctc.WhisperEncoderForCTC` leaves
the front end and the first ``L - N`` blocks frozen: they give every epoch the same output. A
:class:`FeatureCache` computes the hidden state entering block ``L - N`` once per clip and keeps
it on disk as a memory-mapped ``.npy`` (float16 by default), under
``data/interim/features/<model-key>/``. The key hashes the frozen weights and the block
number, so a model whose frozen part differs never reads another's features; each clip is keyed
by the SHA-256 of its waveform. ``index.json`` records per clip its shape, dtype and the SHA-256
of the stored array; an entry whose file is missing, damaged or different is computed again,
never trusted. Training then runs :meth:`WhisperEncoderForCTC.forward_blocks` from the cached
state (:func:`collate`, :func:`mask_features` for SpecAugment on the cached features).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

INDEX_FILE = "index.json"
FORMAT = 1  # of index.json; a folder written in another format is rebuilt
_FLUSH_EVERY = 64  # clips computed between index writes in build()


def wave_checksum(wave: np.ndarray) -> str:
    """SHA-256 of a waveform as the model gets it (float32 samples)."""
    return hashlib.sha256(np.ascontiguousarray(wave, dtype=np.float32).tobytes()).hexdigest()


def _array_checksum(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def model_key(model, first_block: int) -> str:
    """A folder name for the frozen prefix of ``model`` up to block ``first_block``.

    Hashes the weights that shape the cached state (convolutions, positions, blocks before
    ``first_block``) and the settings of the front end, so a different or retrained prefix
    gets a different key.
    """
    c = model.config
    digest = hashlib.sha256()
    settings = [c.num_mel_bins, c.d_model, c.n_fft, c.hop_length, c.sampling_rate, first_block]
    digest.update(json.dumps(settings).encode())
    prefixes = ("encoder.conv1.", "encoder.conv2.", "encoder.embed_positions.")
    prefixes += tuple(f"encoder.layers.{i}." for i in range(first_block))
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith(prefixes):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return f"whisper-d{c.d_model}-L{c.encoder_layers}-b{first_block}-{digest.hexdigest()[:16]}"


@torch.no_grad()
def frozen_features(model, wave: np.ndarray, first_block: int) -> np.ndarray:
    """The hidden state entering block ``first_block`` for one clip, ``[frames, d_model]``.

    Computed in eval mode (no dropout, no SpecAugment) on the clip alone, in float32.
    """
    was_training = model.training
    model.eval()
    try:
        values = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
        hidden, frames = model.embed(values.to(model.device))
        hidden = model.run_blocks(hidden, frames, 0, first_block, padded=False)
    finally:
        model.train(was_training)
    return hidden[0].float().cpu().numpy()


class FeatureCache:
    """Cached inputs of block ``L - trainable_blocks`` of a Whisper CTC model, one per clip.

    Attributes:
        first_block: the first trained block (``L - trainable_blocks``).
        folder: ``root/<model-key>``: ``<checksum>.npy`` per clip and ``index.json``.
        dtype: stored dtype (``"float16"``, or ``"float32"`` for exact features).
    """

    def __init__(self, model, trainable_blocks: int, root: str | Path | None = None,
                 dtype: str = "float16"):  # fmt: skip
        layers = model.config.encoder_layers
        if not 0 <= trainable_blocks <= layers:
            raise ValueError(f"trainable_blocks={trainable_blocks}: expected 0..{layers}")
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype={dtype!r}: expected float16 or float32")
        if root is None:
            from phonex.config import INTERIM_DIR

            root = INTERIM_DIR / "features"
        self.model, self.dtype = model, dtype
        self.first_block = layers - trainable_blocks
        self.folder = Path(root) / f"{model_key(model, self.first_block)}-{dtype}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.entries = self._read_index()
        self._verified: set[str] = set()
        self._dirty = False

    def _read_index(self) -> dict[str, dict]:
        path = self.folder / INDEX_FILE
        if not path.exists():
            return {}
        try:
            index = json.loads(path.read_text())
            if index.get("format") == FORMAT and isinstance(index.get("entries"), dict):
                return index["entries"]
            problem = f"format {index.get('format')!r}, expected {FORMAT}"
        except (json.JSONDecodeError, AttributeError) as err:
            problem = f"not a readable index ({err})"
        print(f"phonex: {path}: {problem}; its features will be computed again", file=sys.stderr)
        return {}

    def flush(self) -> None:
        """Write ``index.json`` (atomically) if entries were added since the last write."""
        if not self._dirty:
            return
        index = {"format": FORMAT, "first_block": self.first_block, "dtype": self.dtype,
                 "entries": self.entries}  # fmt: skip
        tmp = self.folder / f".{INDEX_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(index, indent=0, sort_keys=True))
        os.replace(tmp, self.folder / INDEX_FILE)
        self._dirty = False

    def _valid(self, checksum: str) -> np.ndarray | None:
        """The stored array of ``checksum`` if its entry and file agree, else ``None``."""
        entry = self.entries.get(checksum)
        path = self.folder / f"{checksum}.npy"
        if entry is None or not path.is_file():
            return None
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
        if list(array.shape) != entry.get("shape") or str(array.dtype) != entry.get("dtype"):
            return None
        if checksum not in self._verified:  # once per process: the file cannot change under us
            if _array_checksum(array) != entry.get("sha256"):
                return None
            self._verified.add(checksum)
        return array

    def _store(self, checksum: str, wave: np.ndarray) -> np.ndarray:
        array = frozen_features(self.model, wave, self.first_block).astype(self.dtype)
        tmp = self.folder / f".{checksum}.{os.getpid()}.npy"
        np.save(tmp, array, allow_pickle=False)
        os.replace(tmp, self.folder / f"{checksum}.npy")
        self.entries[checksum] = {"shape": list(array.shape), "dtype": str(array.dtype),
                                  "sha256": _array_checksum(array)}  # fmt: skip
        self._verified.add(checksum)
        self._dirty = True
        return np.load(self.folder / f"{checksum}.npy", mmap_mode="r", allow_pickle=False)

    def get(self, wave: np.ndarray, flush: bool = True) -> np.ndarray:
        """The cached features of one clip ``[frames, d_model]`` (memory-mapped, read-only).

        Computed and stored when missing, or when the stored entry does not check out.
        """
        checksum = wave_checksum(wave)
        array = self._valid(checksum)
        if array is None:
            array = self._store(checksum, wave)
            if flush:
                self.flush()
        return array

    def build(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`get` for many clips, writing the index every few dozen computed clips."""
        out = []
        for i, wave in enumerate(waves):
            out.append(self.get(wave, flush=False))
            if self._dirty and i % _FLUSH_EVERY == _FLUSH_EVERY - 1:
                self.flush()
        self.flush()
        return out


@dataclass
class CachedBatch:
    """Padded cached features of a batch.

    Attributes:
        hidden: ``[batch, frames, d_model]`` float32, zero past each clip's frames.
        frames: frames of each clip ``[batch]``.
        labels: CTC targets ``[batch, max_label]``, ``-100`` where padded (``None``: none given).
    """

    hidden: torch.Tensor
    frames: torch.Tensor
    labels: torch.Tensor | None = None


def collate(features: Sequence[np.ndarray], labels: Sequence[Sequence[int]] | None = None):
    """Pad cached features (and label ids) into a :class:`CachedBatch`."""
    frames = torch.tensor([len(f) for f in features])
    hidden = torch.zeros(len(features), int(frames.max()), features[0].shape[1])
    for i, f in enumerate(features):
        hidden[i, : len(f)] = torch.from_numpy(np.array(f, dtype=np.float32))
    padded = None
    if labels is not None:
        padded = torch.full((len(labels), max(len(x) for x in labels)), -100, dtype=torch.long)
        for i, ids in enumerate(labels):
            padded[i, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
    return CachedBatch(hidden, frames, padded)


def _spans(rng: np.random.Generator, size: int, prob: float, length: int) -> list[int]:
    """Start indices of masked spans: about ``prob * size / length`` of them, as wav2vec2."""
    if prob <= 0 or size <= length:
        return []
    count = int(prob * size / length + rng.random())
    return rng.integers(0, size - length + 1, count).tolist()


def mask_features(batch: CachedBatch, rng: np.random.Generator, time_prob: float = 0.05,
                  time_length: int = 5, feature_prob: float = 0.0,
                  feature_length: int = 64) -> CachedBatch:  # fmt: skip
    """SpecAugment on cached features: time spans and channel bands set to zero (seeded).

    Args:
        batch: from :func:`collate`; not changed (a masked copy is returned).
        rng: the source of the masks (``np.random.default_rng(seed)``).
        time_prob: share of each clip's frames that starts a masked span (wav2vec2's
            ``mask_time_prob``); spans stay inside the clip.
        time_length: frames per time span (5 = 100 ms at 20 ms frames).
        feature_prob: share of the ``d_model`` channels that starts a masked band.
        feature_length: channels per band.

    Returns:
        A :class:`CachedBatch` with the masked ``hidden``.
    """
    hidden = batch.hidden.clone()
    for i, frames in enumerate(batch.frames.tolist()):
        for start in _spans(rng, frames, time_prob, time_length):
            hidden[i, start : start + time_length] = 0.0
        for start in _spans(rng, hidden.shape[2], feature_prob, feature_length):
            hidden[i, :, start : start + feature_length] = 0.0
    return CachedBatch(hidden, batch.frames, batch.labels)


class FromCache(torch.nn.Module):
    """A Whisper CTC model run from cached block inputs: what a training loop calls (and wraps
    in ``DistributedDataParallel``) instead of the model itself; it shares the model's weights.

    Attributes:
        model: the :class:`phonex.whisper_ctc.WhisperEncoderForCTC`.
        first_block: the block the cached features enter (:attr:`FeatureCache.first_block`).
    """

    def __init__(self, model, first_block: int):
        super().__init__()
        self.model, self.first_block = model, first_block

    def forward(self, hidden: torch.Tensor, frames: torch.Tensor,
                labels: torch.Tensor | None = None, **kwargs):  # fmt: skip
        """Output (``logits [batch, frames, vocab]``, ``loss``) from ``hidden [batch, frames,
        d_model]``; ``kwargs`` go to :meth:`WhisperEncoderForCTC.forward_blocks`."""
        padded = bool((frames < hidden.shape[1]).any())
        return self.model.forward_blocks(hidden, frames, self.first_block, padded, labels,
                                         **kwargs)  # fmt: skip


def forward_cached(model, batch: CachedBatch, first_block: int, **kwargs):
    """The model's output from cached features: blocks ``first_block..L-1``, norm, head, loss.

    Equal to ``model(waves)`` on the same clips (up to the stored dtype); ``kwargs`` go to
    :meth:`WhisperEncoderForCTC.forward_blocks` (``output_hidden_states``, ``return_dict``).
    """
    device = next(model.parameters()).device
    labels = batch.labels.to(device) if batch.labels is not None else None
    hidden, frames = batch.hidden.to(device), batch.frames.to(device)
    return FromCache(model, first_block)(hidden, frames, labels, **kwargs)
