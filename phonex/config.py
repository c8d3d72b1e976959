"""Project paths and experiment settings.

Settings are dataclasses (the modern form of Tacotron2's ``create_hparams``): one section each for
audio, data, model and training. They round-trip through YAML or JSON and take ``key=value``
overrides from the command line; an unknown key or a value of the wrong type is an error that names
the key. Importing this module has no side effects.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJ_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJ_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
INTERIM_DIR = DATA_DIR / "interim"
PROCESSED_DIR = DATA_DIR / "processed"
MODELS_DIR = PROJ_ROOT / "models"
FIGURES_DIR = PROJ_ROOT / "figures"
SHARED_DATA_DIR = PROJ_ROOT.parent / "shared" / "data"
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"


def in_project(path: str | Path, default: Path) -> Path:
    """A notebook parameter as a path: empty -> ``default``; a relative path that names a file
    of the project is taken from the project root (notebooks run in notebooks/)."""
    if not path:
        return default
    return PROJ_ROOT / path if (PROJ_ROOT / path).exists() else Path(path)


class ConfigError(ValueError):
    """A settings file or override that does not fit the dataclasses."""


@dataclass
class AudioConfig:
    """Waveform and log-mel settings. Defaults are the 16 kHz ASR front end."""

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    win_length: int = 400
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    clamp_min: float = 1e-5  # log(clamp(x, 1e-5)), as Tacotron2's dynamic_range_compression

    @classmethod
    def tacotron2(cls) -> AudioConfig:
        """TacotronSTFT settings of NVIDIA's Tacotron2 hparams (22050 Hz, 1024/256/1024, 80 mels)."""
        return cls(sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024)


@dataclass
class DataConfig:
    """Which corpus to build and how to split it."""

    size: str = "quick"  # voice grid in voices.yaml: "quick" for CI and notebooks, or "full"
    max_names: int = 0  # 0: the whole lexicon; N: a seeded sample of N names
    engines: list[str] = field(default_factory=lambda: ["espeak"])
    voice_grid: str = "voices.yaml"  # a file in phonex/data or a path
    augmentations_per_clip: int = 1
    language: str = "en-us"
    seed: int = 0
    test_voices: list[str] = field(default_factory=list)  # empty: chosen by the split helper
    dev_fraction: float = 0.1


@dataclass
class ModelConfig:
    """Which model to load or build, what it outputs and what of it trains."""

    name: str = (
        "tiny"  # a phonex.models.TINY_CONFIGS name, registry name, hub id or local directory
    )
    units: str = "phones"  # "phones" or "chars": what the CTC head emits
    head: str = "auto"  # "auto", "new" (fresh CTC head sized to the data) or "keep"
    freeze_feature_encoder: bool = True
    trainable_layers: int = -1  # last N transformer layers trained; -1 = all, 0 = CTC head only
    dropout: float = 0.1  # hidden, attention, activation and projection dropout
    mask_time_prob: float = 0.05  # SpecAugment-style time masking inside wav2vec2


@dataclass
class TrainConfig:
    """Training-loop settings (phonex.train)."""

    seed: int = 0
    batch_size: int = 8  # per process
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "linear"  # transformers.get_scheduler name: warmup, then "linear" or "cosine"
    warmup_steps: int = 100
    max_steps: int = 2000
    mixed_precision: str = "auto"  # "auto", "no", "fp16", "bf16"
    clip_grad_norm: float = 1.0
    eval_every: int = 0  # steps between dev evaluations; 0 = once per epoch
    log_every: int = 10
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    max_seconds: float = 20.0  # longest clip accepted
    drop_long: bool = False  # drop longer clips instead of stopping with an error
    unknown: str = "error"  # label tokens outside the vocabulary: "error" or "unk"


@dataclass
class Config:
    """All settings of one experiment."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        text = (
            yaml.safe_dump(self.to_dict(), sort_keys=False)
            if path.suffix in (".yaml", ".yml")
            else json.dumps(self.to_dict(), indent=2)
        )
        path.write_text(text)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        return _build(cls, values, prefix="")

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read a YAML or JSON file written by :meth:`save` (or by hand)."""
        path = Path(path)
        try:
            text = path.read_text()
            values = (json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)) or {}
        except (yaml.YAMLError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: not valid YAML/JSON: {err}") from err
        if not isinstance(values, dict):
            raise ConfigError(
                f"{path}: expected a mapping of sections, got {type(values).__name__}"
            )
        try:
            return cls.from_dict(values)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err

    def override(self, assignments: list[str]) -> Config:
        """Apply ``section.key=value`` strings; values are parsed as YAML scalars or lists."""
        values = self.to_dict()
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            if not sep:
                raise ConfigError(f"override {assignment!r} is not of the form section.key=value")
            section, _, name = key.strip().partition(".")
            if section not in values or not name:
                raise ConfigError(f"unknown setting {key!r}; sections are {sorted(values)}")
            if name not in values[section]:
                raise ConfigError(
                    f"unknown setting {key!r}; {section} has {sorted(values[section])}"
                )
            values[section][name] = yaml.safe_load(raw)
        return Config.from_dict(values)


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    """Build dataclass ``cls`` from ``values``, checking every key and type."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"unknown setting {prefix}{min(unknown)!r}; known: {sorted(names)}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"setting {prefix}{name!r} must be a mapping")
            kwargs[name] = _build(hint, value, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _check_type(f"{prefix}{name}", value, hint)
    return cls(**kwargs)


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Return ``value`` if it fits ``hint`` (ints are accepted for floats), else raise."""
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"setting {key!r} must be a list of {item.__name__}, got {value!r}")
        return [_check_type(key, v, item) for v in value]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check_type(key, value, option)
            except ConfigError:
                continue
        raise ConfigError(f"setting {key!r} has the wrong type: {value!r}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    elif hint is float and isinstance(value, str):
        try:  # PyYAML reads "1e-05" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"setting {key!r} must be {getattr(hint, '__name__', hint)}, got {value!r}")
