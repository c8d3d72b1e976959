"""Whisper's encoder as a CTC model that takes waveforms, the way ``Wav2Vec2ForCTC`` does.

:class:`WhisperEncoderForCTC` computes Whisper's log-mel spectrogram itself (the numbers of
``WhisperFeatureExtractor``), runs Whisper's two convolutions and its encoder layers over only
the frames a clip has (no padding to 30 s: the first ``T`` rows of the position table), and puts
a linear CTC head on top. Inputs (raw 16 kHz ``input_values``, ``attention_mask``), outputs
(``CausalLMOutput``), the CTC loss, hidden states, ``_get_feat_extract_output_lengths`` and
``freeze_feature_encoder`` follow ``Wav2Vec2ForCTC``, so everything in phonex that runs a
wav2vec2 model runs this one. Frames are 20 ms: hop 160, then conv2's stride 2.

A clip in a padded batch gets the logits it gets alone: samples past its end are zeroed before
the STFT, log-mel frames and conv1 outputs past its end are zeroed (as the convolutions' own
zero padding would be), the floor at max - 8 looks at its own frames only, and attention ignores
padded frames.

Whisper scales its log-mel itself: the waveform goes in as it is, not normalised to zero mean
and unit variance (the feature extractor of a loaded model says ``do_normalize=False``).
"""

from __future__ import annotations

import contextlib
import functools
from typing import ClassVar

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCTC, WhisperConfig
from transformers.modeling_outputs import CausalLMOutput
from transformers.models.whisper.modeling_whisper import (
    WhisperEncoder,
    WhisperPreTrainedModel,
    _compute_mask_indices,
)
from transformers.utils import logging as hf_logging

from phonex.audio import AudioError

MODEL_TYPE = "whisper-ctc"

# WhisperConfig fields that shape or regularise the encoder: what a CTC model keeps of a
# pretrained Whisper's config (the decoder's and the tokenizer's settings are left behind).
ENCODER_FIELDS = (
    "num_mel_bins", "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim",
    "activation_function", "max_source_positions", "scale_embedding", "init_std", "dropout",
    "attention_dropout", "activation_dropout", "encoder_layerdrop",
)  # fmt: skip


class WhisperCTCConfig(WhisperConfig):
    """Whisper's encoder settings with a CTC head; wav2vec2's option names work too.

    ``hidden_dropout`` is Whisper's ``dropout`` and ``layerdrop`` its ``encoder_layerdrop``, so
    the settings phonex gives a wav2vec2 model (``phonex.train.prepare_model``) apply as they
    are. ``feat_proj_dropout`` is accepted and unused: Whisper has no feature projection.
    SpecAugment is on as in wav2vec2 (``mask_time_prob``; no minimum count), but masks
    ``mask_time_length`` log-mel frames of 10 ms with zeros, as Whisper's own masking does.
    """

    model_type = MODEL_TYPE
    attribute_map: ClassVar[dict[str, str]] = {
        **WhisperConfig.attribute_map,
        "hidden_dropout": "dropout",
        "layerdrop": "encoder_layerdrop",
    }
    # Pre-LN blocks and a final layer norm: phonex.models.freeze trains that norm with the
    # last blocks (the attribute it reads on wav2vec2 configs).
    do_stable_layer_norm = True

    is_encoder_decoder: bool = False
    use_cache: bool = False
    vocab_size: int = 32
    pad_token_id: int | None = 0  # the CTC blank
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    decoder_start_token_id: int = 0  # no decoder: a token id inside the CTC vocabulary
    begin_suppress_tokens: list[int] | tuple[int, ...] | None = None
    tie_word_embeddings: bool = False
    ctc_loss_reduction: str = "mean"
    ctc_zero_infinity: bool = True
    final_dropout: float | int = 0.0  # before the CTC head
    feat_proj_dropout: float | int = 0.0
    apply_spec_augment: bool = True
    mask_time_min_masks: int = 0
    sampling_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160

    @property
    def inputs_to_logits_ratio(self) -> int:
        """Samples per output frame: the STFT hop times conv2's stride."""
        return self.hop_length * 2

    @property
    def max_samples(self) -> int:
        """The longest input: ``max_source_positions`` frames (30 s for OpenAI's checkpoints)."""
        return self.max_source_positions * self.inputs_to_logits_ratio + self.hop_length - 1


@functools.lru_cache(maxsize=8)
def mel_filters(n_mels: int, n_fft: int, sampling_rate: int) -> torch.Tensor:
    """Whisper's Slaney mel filters ``[n_fft // 2 + 1, n_mels]``, as its extractor builds them."""
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(
        num_frequency_bins=1 + n_fft // 2,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=8000.0,
        sampling_rate=sampling_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(bank).float()


def ctc_config(whisper: WhisperConfig, vocab, **overrides) -> WhisperCTCConfig:
    """A CTC config that keeps the encoder of ``whisper`` and sizes the head to ``vocab``.

    ``vocab``: the output tokens (a :class:`phonex.phonemes.Vocabulary`: its length and
    ``blank_id``).
    """
    kept = {name: getattr(whisper, name) for name in ENCODER_FIELDS}
    settings = {"vocab_size": len(vocab), "pad_token_id": vocab.blank_id}
    return WhisperCTCConfig(**{**kept, **settings, **overrides})


class WhisperEncoderForCTC(WhisperPreTrainedModel):
    """Whisper's encoder on raw waveforms with a CTC head: a drop-in ``Wav2Vec2ForCTC``.

    Attributes:
        encoder: transformers' ``WhisperEncoder`` (its modules; its forward, which insists on
            30 s of input, is not used), so pretrained weights load by name.
        lm_head: the CTC head, ``d_model -> vocab_size``; ``config.pad_token_id`` is the blank.
    """

    config_class = WhisperCTCConfig
    main_input_name = "input_values"
    input_modalities = ("audio",)
    _no_split_modules: ClassVar[list[str]] = ["WhisperEncoderLayer"]

    def __init__(self, config: WhisperCTCConfig):
        super().__init__(config)
        self.encoder = WhisperEncoder(config)
        self.dropout = nn.Dropout(config.final_dropout)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)
        self.post_init()

    @classmethod
    def from_whisper(cls, source: str, vocab, **overrides) -> WhisperEncoderForCTC:
        """The encoder of a pretrained Whisper with a new, randomly initialised CTC head.

        Args:
            source: a folder saved from ``WhisperForConditionalGeneration`` or ``WhisperModel``,
                or a hub id (registry names such as ``whisper-tiny.en`` are resolved by
                :func:`phonex.models.load_model`, the way in for callers).
            vocab: the CTC output tokens (:class:`phonex.phonemes.Vocabulary`).
            **overrides: config values, e.g. ``hidden_dropout=0.1``.

        Raises:
            ValueError: ``source`` is not a Whisper checkpoint, or it lacks encoder weights.
        """
        whisper = AutoConfig.from_pretrained(source)
        if whisper.model_type != "whisper":
            raise ValueError(
                f"{source}: model_type {whisper.model_type!r}, not a Whisper checkpoint"
            )
        config = ctc_config(whisper, vocab, **overrides)
        with _quiet_transformers():  # it would list every decoder weight it leaves behind
            model, info = cls.from_pretrained(
                source, config=config, dtype=torch.float32, output_loading_info=True
            )
        missing = [k for k in info["missing_keys"] if not k.startswith("lm_head.")]
        if missing:
            raise ValueError(
                f"{source}: {len(missing)} encoder weight(s) not in the checkpoint, e.g. "
                f"{missing[0]} (expected a WhisperForConditionalGeneration or WhisperModel save)"
            )
        return model

    # --- front end ------------------------------------------------------------------------

    def _get_feat_extract_output_lengths(self, input_lengths):
        """Output frames of clips of ``input_lengths`` samples (int or tensor)."""
        mel_frames = input_lengths // self.config.hop_length  # Whisper drops the STFT's last
        return (mel_frames - 1) // 2 + 1  # conv2: kernel 3, stride 2, padding 1

    def freeze_feature_encoder(self) -> None:
        """Stop training the convolutions (and the positions, which never train in Whisper)."""
        for module in (self.encoder.conv1, self.encoder.conv2, self.encoder.embed_positions):
            module.requires_grad_(False)

    def log_mel(self, input_values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel ``[batch, mels, samples // hop]`` of each clip, zero past its end.

        ``WhisperFeatureExtractor``'s numbers for the clip's frames: its STFT centres frames
        with reflect padding on the left and sees the zeros of the 30 s padding on the right;
        the floor at the clip's maximum - 8 (80 dB) and ``(x + 4) / 4`` are per clip.
        """
        c = self.config
        half = c.n_fft // 2
        device = input_values.device
        with torch.autocast(device.type, enabled=False):  # the STFT in float32 under AMP
            inside = torch.arange(input_values.shape[1], device=device) < lengths[:, None]
            wave = input_values.float() * inside
            wave = nn.functional.pad(wave[:, None], (half, 0), mode="reflect")
            wave = nn.functional.pad(wave, (0, half))[:, 0]
            window = torch.hann_window(c.n_fft, device=device)
            spec = torch.stft(
                wave, c.n_fft, c.hop_length, window=window, center=False, return_complex=True
            )
            power = (spec[..., :-1].abs() ** 2).contiguous()
            filters = mel_filters(c.num_mel_bins, c.n_fft, c.sampling_rate).to(device)
            log = torch.clamp(filters.T @ power, min=1e-10).log10()
            frames = torch.arange(log.shape[-1], device=device)
            valid = (frames < (lengths // c.hop_length)[:, None])[:, None]  # [batch, 1, frames]
            peak = log.masked_fill(~valid, -torch.inf).amax(dim=(1, 2), keepdim=True)
            log = torch.maximum(log, peak - 8.0)
            return (log + 4.0) / 4.0 * valid

    def _mask_log_mel(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """SpecAugment on the log-mel (training only): time spans and mel bands set to 0."""
        c = self.config
        batch, bins, frames = mel.shape
        if c.mask_time_prob > 0 and frames > c.mask_time_length:
            valid = torch.arange(frames, device=mel.device) < mel_lengths[:, None]
            spans = _compute_mask_indices((batch, frames), c.mask_time_prob, c.mask_time_length,
                                          valid.cpu(), c.mask_time_min_masks)  # fmt: skip
            mel = mel.masked_fill(torch.from_numpy(spans).to(mel.device)[:, None], 0.0)
        if c.mask_feature_prob > 0 and bins > c.mask_feature_length:
            bands = _compute_mask_indices((batch, bins), c.mask_feature_prob,
                                          c.mask_feature_length, None,
                                          c.mask_feature_min_masks)  # fmt: skip
            mel = mel.masked_fill(torch.from_numpy(bands).to(mel.device)[:, :, None], 0.0)
        return mel

    # --- forward --------------------------------------------------------------------------

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> CausalLMOutput | tuple:
        """Logits ``[batch, frames, vocab]`` of 16 kHz waveforms ``[batch, samples]``.

        Args:
            input_values: raw waveforms, right-padded.
            attention_mask: 1 for samples of the clip, 0 for padding (``None``: no padding).
            labels: CTC targets, ``-100`` where padded; gives ``loss``.
            output_hidden_states: also return ``[input of block 1, block 1, ..., block L]``
                (the last after the final layer norm), as wav2vec2 does.

        Raises:
            ValueError: a clip shorter than one STFT window or longer than the position table
                (30 s for OpenAI's checkpoints), or attention weights asked for.
        """
        if output_attentions:
            raise ValueError(f"{type(self).__name__} does not return attention weights")
        hidden, frames = self.embed(input_values, attention_mask)
        return self.forward_blocks(hidden, frames, 0, attention_mask is not None, labels,
                                   output_hidden_states, return_dict)  # fmt: skip

    def embed(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What enters the first block: log-mel, convolutions and positions of each clip.

        Args:
            input_values: raw 16 kHz waveforms ``[batch, samples]``, right-padded.
            attention_mask: 1 for samples of the clip, 0 for padding (``None``: no padding).

        Returns:
            ``(hidden [batch, frames, d_model], frames [batch])``: the frames of each clip.

        Raises:
            ValueError: a clip shorter than one STFT window or longer than the position table.
        """
        c = self.config
        if input_values.ndim != 2:
            raise ValueError(
                f"input_values of shape {tuple(input_values.shape)}: expected [batch, samples]"
            )
        batch, samples = input_values.shape
        if attention_mask is None:
            lengths = torch.full((batch,), samples, device=input_values.device)
        else:
            lengths = attention_mask.sum(-1).long()
        if samples > c.max_samples:
            raise AudioError(
                f"{samples / c.sampling_rate:.2f} s of input: Whisper's encoder takes at most "
                f"{c.max_source_positions} frames ({c.max_samples / c.sampling_rate:.2f} s); "
                "cut the clip (phonex.align.align has window_seconds for long clips)"
            )
        if int(lengths.min()) < c.n_fft:
            raise AudioError(
                f"a clip of {int(lengths.min())} samples: Whisper's front end needs at least "
                f"{c.n_fft} ({1000 * c.n_fft / c.sampling_rate:.0f} ms)"
            )
        mel = self.log_mel(input_values, lengths)
        mel_lengths = lengths // c.hop_length
        if self.training and c.apply_spec_augment:
            mel = self._mask_log_mel(mel, mel_lengths)
        mel_valid = torch.arange(mel.shape[-1], device=mel.device) < mel_lengths[:, None]
        enc = self.encoder
        hidden = nn.functional.gelu(enc.conv1(mel)) * mel_valid[:, None]
        hidden = nn.functional.gelu(enc.conv2(hidden)).transpose(1, 2)
        hidden = hidden + enc.embed_positions.weight[: hidden.shape[1]]
        hidden = nn.functional.dropout(hidden, p=enc.dropout, training=self.training)
        return hidden, self._get_feat_extract_output_lengths(lengths)

    def run_blocks(
        self,
        hidden: torch.Tensor,
        frames: torch.Tensor,
        start: int = 0,
        stop: int | None = None,
        padded: bool = True,
        states: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Encoder blocks ``start..stop-1`` on ``hidden [batch, frames, d_model]``.

        Args:
            frames: the frames of each clip ``[batch]``; attention ignores the rest when
                ``padded``.
            states: if given, the input of each block run is appended to it.

        Returns:
            The output of block ``stop - 1`` (no final layer norm), ``[batch, frames, d_model]``.
        """
        enc = self.encoder
        mask = None
        if padded:
            valid = torch.arange(hidden.shape[1], device=hidden.device) < frames[:, None]
            mask = _bidirectional_mask(self.config, hidden, valid)
        for layer in enc.layers[start:stop]:
            if states is not None:
                states.append(hidden)
            if self.training and enc.layerdrop > 0 and torch.rand([]) < enc.layerdrop:
                continue
            hidden = layer(hidden, mask)
        return hidden

    def forward_blocks(
        self,
        hidden: torch.Tensor,
        frames: torch.Tensor,
        first_block: int = 0,
        padded: bool = True,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> CausalLMOutput | tuple:
        """Logits ``[batch, frames, vocab]`` from the input of block ``first_block``.

        The last part of :meth:`forward`: blocks ``first_block..L-1``, the final layer norm, the
        CTC head and loss. Fed the cached input of a frozen prefix
        (:mod:`phonex.feature_cache`), it gives what :meth:`forward` gives on the clip.

        Args:
            hidden: input of block ``first_block``, ``[batch, frames, d_model]``, right-padded.
            frames: the frames of each clip ``[batch]``.
            padded: mask attention past each clip's frames.
            labels: CTC targets, ``-100`` where padded; gives ``loss``.
            output_hidden_states: also return the input of each block run and the final output.
        """
        states: list[torch.Tensor] | None = [] if output_hidden_states else None
        hidden = self.run_blocks(hidden, frames, first_block, None, padded, states)
        hidden = self.encoder.layer_norm(hidden)
        if states is not None:
            states.append(hidden)
        logits = self.lm_head(self.dropout(hidden))
        loss = None
        if labels is not None:
            loss = self._ctc_loss(logits, labels, frames)
        hidden_states = tuple(states) if states is not None else None
        if return_dict is False:
            return tuple(v for v in (loss, logits, hidden_states) if v is not None)
        return CausalLMOutput(loss=loss, logits=logits, hidden_states=hidden_states)

    def _ctc_loss(self, logits, labels, frames) -> torch.Tensor:
        """CTC loss as ``Wav2Vec2ForCTC`` computes it (float32, labels < 0 ignored)."""
        c = self.config
        if labels.max() >= c.vocab_size:
            raise ValueError(f"label values must be < vocab_size ({c.vocab_size})")
        labels_mask = labels >= 0
        log_probs = nn.functional.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)
        with torch.backends.cudnn.flags(enabled=False):
            return nn.functional.ctc_loss(
                log_probs, labels.masked_select(labels_mask), frames, labels_mask.sum(-1),
                blank=c.pad_token_id, reduction=c.ctc_loss_reduction,
                zero_infinity=c.ctc_zero_infinity,
            )  # fmt: skip


def _bidirectional_mask(config, hidden: torch.Tensor, valid: torch.Tensor):
    """The attention mask the configured attention implementation takes (``None``: no padding)."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=valid)


@contextlib.contextmanager
def _quiet_transformers():
    """No warnings or progress bars from transformers inside."""
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


AutoConfig.register(MODEL_TYPE, WhisperCTCConfig, exist_ok=True)
AutoModelForCTC.register(WhisperCTCConfig, WhisperEncoderForCTC, exist_ok=True)


@torch.no_grad()
def compare_with_30s_window(model: WhisperEncoderForCTC, wave, repeats: int = 3):
    """This model's hidden states of one clip against transformers' own 30 s Whisper encoder.

    transformers' ``WhisperEncoder`` takes the clip padded to ``max_source_positions`` frames
    (30 s): every position row is added, and the clip's frames attend to the padding frames
    too. :class:`WhisperEncoderForCTC` runs the clip's frames only.

    Args:
        model: a Whisper CTC model (its ``encoder`` is transformers' ``WhisperEncoder``).
        wave: one 16 kHz waveform, shorter than 30 s.
        repeats: timed passes of each path (the fastest is kept).

    Returns:
        ``(table, seconds)``: per hidden state (0 = input of block 1, the last after the final
        layer norm) the largest absolute difference over the clip's frames but the last, and on
        the last frame; and the seconds per pass of each path.
    """
    import time

    import numpy as np
    import pandas as pd
    from transformers import WhisperFeatureExtractor

    c = model.config
    chunk = round(c.max_source_positions * c.inputs_to_logits_ratio / c.sampling_rate)
    extractor = WhisperFeatureExtractor(feature_size=c.num_mel_bins, sampling_rate=c.sampling_rate,
                                        hop_length=c.hop_length, chunk_length=chunk,
                                        n_fft=c.n_fft)  # fmt: skip
    wave = np.asarray(wave, dtype=np.float32)
    features = extractor(wave, sampling_rate=c.sampling_rate, return_tensors="pt").input_features
    was_training = model.training
    model.eval()
    runs = {
        "clip frames (phonex)": lambda: model(torch.from_numpy(wave)[None],
                                              output_hidden_states=True).hidden_states,
        "30 s window (transformers)": lambda: model.encoder(features, output_hidden_states=True)
        .hidden_states,
    }  # fmt: skip
    seconds, states = {}, {}
    for name, run in runs.items():
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            states[name] = run()
            best = min(best, time.perf_counter() - start)
        seconds[name] = best
    model.train(was_training)
    ours, theirs = states.values()
    frames = ours[0].shape[1]
    rows = []
    for layer, (a, b) in enumerate(zip(ours, theirs)):
        diff = (a[0] - b[0, :frames]).abs()
        rows.append({"layer": layer, "frames": frames,
                     "max_diff_but_last": float(diff[:-1].max()),
                     "max_diff_last_frame": float(diff[-1].max())})  # fmt: skip
    return pd.DataFrame(rows).set_index("layer"), seconds
