"""Checking a model folder file by file, so that a damaged one fails on load and names the file.

A phonex model folder (:meth:`phonex.models.LoadedModel.save`) holds ``config.json``, the weights
(``model.safetensors``), ``vocab.json``, ``preprocessor_config.json`` and ``phonex.json``; a hub
snapshot holds the first four. Each file is checked before transformers reads it, because
transformers reports a damaged file without its name (a truncated safetensors file is "incomplete
metadata") or not at all (a ``vocab.json`` longer than the CTC head loads, and its extra tokens
are never emitted). Every problem is a :class:`ModelFolderError` reading
``<folder>/<file>: <problem>``.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from transformers import (
    CONFIG_MAPPING,
    AutoConfig,
    AutoModelForCTC,
    PreTrainedModel,
    Wav2Vec2FeatureExtractor,
)

from phonex.phonemes import Vocabulary

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
SIDECAR = "phonex.json"
UNITS = ("phones", "chars")
_SAFETENSORS_PREFIX = 8  # little-endian u64: the length of the JSON header that follows


class ModelError(ValueError):
    """A model that cannot be found, read or matched to a vocabulary."""


class ModelFolderError(ModelError):
    """A file of a model folder that is missing, unreadable or inconsistent with the others.

    Attributes:
        path: the file at fault, ``folder / name``.
    """

    def __init__(self, folder: str | Path, name: str, problem: str):
        self.path = Path(folder) / name
        super().__init__(f"{self.path}: {problem}")


def read_json(folder: Path, name: str) -> dict | None:
    """``folder / name`` parsed as a JSON object, or ``None`` when the file does not exist.

    Raises:
        ModelFolderError: the file cannot be read, is not JSON, or is not a JSON object.
    """
    path = folder / name
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ModelFolderError(folder, name, f"cannot be read ({err.strerror or err})") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ModelFolderError(folder, name, f"not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ModelFolderError(
            folder, name, f"expected a JSON object, found {type(value).__name__}"
        )
    return value


def check_safetensors(folder: Path, name: str) -> None:
    """Check that ``folder / name`` is a whole safetensors file: a JSON header whose tensors end
    exactly where the file does (a cut-off download or copy does not).

    Raises:
        ModelFolderError: truncated, padded, or not a safetensors file at all.
    """
    path = folder / name
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(_SAFETENSORS_PREFIX)
        length = int.from_bytes(prefix, "little")
        if len(prefix) < _SAFETENSORS_PREFIX or length > size - _SAFETENSORS_PREFIX:
            raise ModelFolderError(
                folder, name, f"truncated: {size} bytes, shorter than its own header"
            )
        header = f.read(length)
    try:
        tensors = {k: v for k, v in json.loads(header).items() if k != "__metadata__"}
        data_end = max((int(t["data_offsets"][1]) for t in tensors.values()), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise ModelFolderError(
            folder, name, "not a safetensors file (unreadable header)"
        ) from None
    expected = _SAFETENSORS_PREFIX + length + data_end
    if size != expected:
        state = "truncated" if size < expected else "damaged"
        raise ModelFolderError(folder, name, f"{state}: {size} bytes, its header says {expected}")


def _check_weights(folder: Path) -> None:
    """Some weights, every safetensors file whole, every shard of an index present."""
    if not any((folder / f).exists() for f in WEIGHT_FILES):
        raise ModelFolderError(
            folder, WEIGHT_FILES[0], f"missing (no model weights: {' or '.join(WEIGHT_FILES[:2])})"
        )
    index = read_json(folder, WEIGHT_FILES[2]) or {}
    shards = index.get("weight_map", {})
    for shard in sorted(set(shards.values()) if isinstance(shards, dict) else ()):
        if not (folder / str(shard)).exists():
            raise ModelFolderError(folder, str(shard), f"missing (listed in {WEIGHT_FILES[2]})")
    for path in sorted(folder.glob("*.safetensors")):
        check_safetensors(folder, path.name)


def check_model_dir(folder: Path) -> None:
    """Check every file phonex reads from a model folder before anything loads it.

    A Whisper folder needs no ``vocab.json``: its encoder always gets a new CTC head.

    Raises:
        ModelFolderError: naming the first file that is missing, not valid JSON or truncated.
    """
    config = read_json(folder, "config.json")
    if config is None:
        raise ModelFolderError(folder, "config.json", "missing (not a save_pretrained directory)")
    _check_weights(folder)
    if config.get("model_type") != "whisper" and not (folder / "vocab.json").exists():
        raise ModelFolderError(folder, "vocab.json", "missing (the CTC output tokens)")
    for name in ("vocab.json", "preprocessor_config.json", SIDECAR):
        read_json(folder, name)


def read_vocab(folder: Path) -> Vocabulary:
    """``vocab.json`` of a phonex or HF character/phoneme model, as a :class:`Vocabulary`.

    Raises:
        ModelFolderError: not ``{token: id}`` with ids 0..n-1 and a padding (blank) token.
    """
    index = read_json(folder, "vocab.json")
    if index is None:
        raise ModelFolderError(folder, "vocab.json", "missing (the CTC output tokens)")
    if index and all(isinstance(v, dict) for v in index.values()):  # multilingual: {lang: vocab}
        index = next(iter(index.values()))
    if not index or not all(type(i) is int for i in index.values()):
        raise ModelFolderError(folder, "vocab.json", "expected {token: id} with integer ids")
    try:
        return Vocabulary.from_index(index)
    except ValueError as err:
        raise ModelFolderError(folder, "vocab.json", str(err)) from None


def read_sidecar(folder: Path) -> dict:
    """``phonex.json`` (units, language, source), or ``{}`` for a folder phonex did not save.

    Raises:
        ModelFolderError: not JSON, units other than phones or chars, or a non-string value.
    """
    sidecar = read_json(folder, SIDECAR) or {}
    if sidecar.get("units", UNITS[0]) not in UNITS:
        raise ModelFolderError(folder, SIDECAR, f"units {sidecar['units']!r}: expected {UNITS}")
    for key in ("language", "source"):
        if not isinstance(sidecar.get(key, ""), str):
            raise ModelFolderError(folder, SIDECAR, f"{key} {sidecar[key]!r}: expected a string")
    return sidecar


def check_head(folder: Path, config, vocab: Vocabulary) -> None:
    """The folder's vocabulary must name each output of its CTC head, with the blank at
    ``config.pad_token_id``: a shorter one fails when a frame picks a missing id, a longer one
    has tokens the model can never emit.

    Raises:
        ModelFolderError: naming ``vocab.json`` and both sizes (or both blank ids).
    """
    outputs = getattr(config, "vocab_size", None)
    if outputs != len(vocab):
        raise ModelFolderError(
            folder, "vocab.json",
            f"{len(vocab)} tokens, but the CTC head (config.json vocab_size) has {outputs} outputs",
        )  # fmt: skip
    pad_id = getattr(config, "pad_token_id", None)
    if pad_id is not None and pad_id != vocab.blank_id:
        raise ModelFolderError(
            folder, "vocab.json",
            f"blank {vocab.pad!r} is id {vocab.blank_id}, but config.json pad_token_id is {pad_id}",
        )  # fmt: skip


def read_config(folder: Path):
    """``config.json`` as a transformers config.

    Raises:
        ModelFolderError: an unknown or missing ``model_type``, or values transformers refuses.
    """
    model_type = (read_json(folder, "config.json") or {}).get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ModelFolderError(
            folder, "config.json", f"model_type {model_type!r}: not a model transformers knows"
        )
    try:
        return AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError, TypeError) as err:
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFolderError(folder, "config.json", problem) from None


def read_feature_extractor(folder: Path) -> Wav2Vec2FeatureExtractor | None:
    """The folder's ``preprocessor_config.json``, or ``None`` when it has none.

    Raises:
        ModelFolderError: values transformers refuses, or a sampling rate that is not a positive
            integer.
    """
    if not (folder / "preprocessor_config.json").exists():
        return None
    try:
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(folder)
    except (OSError, ValueError, TypeError) as err:
        raise ModelFolderError(folder, "preprocessor_config.json", str(err)) from None
    rate = extractor.sampling_rate
    if type(rate) is not int or rate <= 0:
        raise ModelFolderError(
            folder, "preprocessor_config.json", f"sampling_rate {rate!r}: expected a positive int"
        )
    return extractor


def load_ctc_weights(folder: Path, keep_head: bool, overrides: dict) -> PreTrainedModel:
    """``AutoModelForCTC.from_pretrained(folder)``, with its failures named after the weights.

    Args:
        folder: a checked model folder (:func:`check_model_dir`).
        keep_head: False when ``overrides`` size a new CTC head (its old weights are dropped).
        overrides: config values passed on to ``from_pretrained``.

    Raises:
        ModelFolderError: weights that do not fit ``config.json`` or cannot be read.
    """
    try:
        return AutoModelForCTC.from_pretrained(
            folder, ignore_mismatched_sizes=not keep_head, **overrides
        )
    except (OSError, RuntimeError, ValueError, SafetensorError) as err:
        weights = next((f for f in WEIGHT_FILES if (folder / f).exists()), WEIGHT_FILES[0])
        raise ModelFolderError(folder, weights, f"cannot be loaded: {err}") from None
