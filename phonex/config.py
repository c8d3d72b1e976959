"""Project paths and experiment settings.

Settings are dataclasses (the modern form of Tacotron2's ``create_hparams``): one section each for
audio, data, model and training. They round-trip through YAML or JSON and take ``key=value``
overrides from the command line; an unknown key, a value of the wrong type or one out of range
(``train.max_steps=0``) is an error that names the key and the value, raised when the settings are
built, before any work. Importing this module has no side effects.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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


SCHEDULES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
             "constant_with_warmup", "inverse_sqrt")  # fmt: skip


class _Checked:
    """Every section checks its own fields when built: types first, then ranges."""

    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            key = f"{self.section}.{f.name}"
            setattr(self, f.name, _check_type(key, getattr(self, f.name), hints[f.name]))
        for name, ok, expected in self._ranges():
            if not ok:
                raise ConfigError(
                    f"setting '{self.section}.{name}' is {getattr(self, name)!r}: expected {expected}"
                )

    def _ranges(self) -> list[tuple[str, bool, str]]:
        """(field, whether its value is usable, what a usable value is) for each checked field."""
        return []


def _finite(value: float) -> bool:
    return math.isfinite(value)


@dataclass
class AudioConfig(_Checked):
    """Waveform and log-mel settings. Defaults are the 16 kHz ASR front end."""

    section: ClassVar[str] = "audio"

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

    def _ranges(self) -> list[tuple[str, bool, str]]:
        return [
            ("sample_rate", self.sample_rate >= 1, "at least 1"),
            ("n_fft", self.n_fft >= 1, "at least 1"),
            ("hop_length", self.hop_length >= 1, "at least 1"),
            ("win_length", 1 <= self.win_length <= self.n_fft, f"1 to n_fft ({self.n_fft})"),
            ("n_mels", self.n_mels >= 1, "at least 1"),
            ("fmin", _finite(self.fmin) and 0 <= self.fmin, "at least 0"),
            ("fmax", _finite(self.fmax) and self.fmax > self.fmin, f"above fmin ({self.fmin})"),
            ("clamp_min", _finite(self.clamp_min) and self.clamp_min > 0, "above 0"),
        ]


@dataclass
class DataConfig(_Checked):
    """Which corpus to build and how to split it."""

    section: ClassVar[str] = "data"

    size: str = "quick"  # voice grid in voices.yaml: "quick" for CI and notebooks, or "full"
    max_names: int = 0  # 0: the whole lexicon; N: a seeded sample of N names
    engines: list[str] = field(default_factory=lambda: ["espeak"])
    voice_grid: str = "voices.yaml"  # a file in phonex/data or a path
    augmentations_per_clip: int = 1
    language: str = "en-us"
    seed: int = 0
    test_voices: list[str] = field(default_factory=list)  # empty: chosen by the split helper
    dev_fraction: float = 0.1

    def _ranges(self) -> list[tuple[str, bool, str]]:
        return [
            ("max_names", self.max_names >= 0, "0 (all) or more"),
            ("augmentations_per_clip", self.augmentations_per_clip >= 0, "0 or more"),
            ("dev_fraction", 0 <= self.dev_fraction < 1, "at least 0 and below 1"),
        ]


@dataclass
class ModelConfig(_Checked):
    """Which model to load or build, what it outputs and what of it trains."""

    section: ClassVar[str] = "model"

    name: str = (
        "tiny"  # a phonex.models.TINY_CONFIGS name, registry name, hub id or local directory
    )
    units: str = "phones"  # "phones" or "chars": what the CTC head emits
    head: str = "auto"  # "auto", "new" (fresh CTC head sized to the data) or "keep"
    freeze_feature_encoder: bool = True
    trainable_layers: int = -1  # last N transformer layers trained; -1 = all, 0 = CTC head only
    dropout: float = 0.1  # hidden, attention, activation and projection dropout
    mask_time_prob: float = 0.05  # SpecAugment-style time masking inside wav2vec2
    vocabulary: str = "train"  # phones of a new head: "train" (the train split) or "english"
    # Train a Whisper CTC model's last trainable_layers blocks from the cached output of its
    # frozen blocks (phonex.feature_cache), computed once per clip; masking then applies there.
    feature_cache: bool = False
    feature_cache_dtype: str = "float16"  # "float16" or "float32" (exact features)

    def _ranges(self) -> list[tuple[str, bool, str]]:
        return [
            ("units", self.units in ("phones", "chars"), "phones or chars"),
            ("head", self.head in ("auto", "new", "keep"), "auto, new or keep"),
            ("trainable_layers", self.trainable_layers >= -1, "-1 (all) or more"),
            ("vocabulary", self.vocabulary in ("train", "english"), "train or english"),
            ("vocabulary", self.vocabulary == "train" or self.units == "phones",
             "train with units chars (the english vocabulary is phones)"),
            ("feature_cache", not (self.feature_cache and self.trainable_layers == -1),
             ("false when model.trainable_layers is -1: all blocks train, none is frozen "
              "to cache (set model.trainable_layers to 0 or more)")),
            ("feature_cache_dtype", self.feature_cache_dtype in ("float16", "float32"),
             "float16 or float32"),
            ("dropout", 0 <= self.dropout < 1, "at least 0 and below 1"),
            ("mask_time_prob", 0 <= self.mask_time_prob <= 1, "0 to 1"),
        ]  # fmt: skip


@dataclass
class TrainConfig(_Checked):
    """Training-loop settings (phonex.train)."""

    section: ClassVar[str] = "train"

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
    threads: int = 0  # CPU threads while training; 0: torch's setting (a resumed run: its own)

    def _ranges(self) -> list[tuple[str, bool, str]]:
        at_least_1 = ("batch_size", "grad_accum", "max_steps", "log_every", "checkpoint_every",
                      "keep_checkpoints")  # fmt: skip
        at_least_0 = ("warmup_steps", "eval_every", "threads")
        return [
            *[(name, getattr(self, name) >= 1, "at least 1") for name in at_least_1],
            *[(name, getattr(self, name) >= 0, "at least 0") for name in at_least_0],
            ("lr", _finite(self.lr) and self.lr > 0, "above 0"),
            ("weight_decay", _finite(self.weight_decay) and self.weight_decay >= 0, "at least 0"),
            ("clip_grad_norm", _finite(self.clip_grad_norm) and self.clip_grad_norm >= 0,
             "at least 0 (0: no clipping)"),
            ("max_seconds", _finite(self.max_seconds) and self.max_seconds > 0, "above 0"),
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            ("mixed_precision", self.mixed_precision in ("auto", "no", "fp16", "bf16"),
             "auto, no, fp16 or bf16"),
            ("unknown", self.unknown in ("error", "unk"), "error or unk"),
        ]  # fmt: skip


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
