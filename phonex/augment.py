"""Seeded waveform augmentations and a small spec language that records what was done.

Spec steps, chained with ``+`` (``"speed=1.2+noise=white@20"``): ``speed=F`` (resample: tempo
and pitch), ``tempo=F``, ``pitch=SEMITONES``, ``gain=DB``, ``noise=white|pink|babble@SNR_DB``,
``reverb=RT60``, ``telephone``, ``mulaw8k``; ``none``/``""``: no change. A seeded ``Generator``
reproduces the output. Steps may exceed full scale; :func:`apply` then divides by the peak.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import librosa
import numpy as np
import scipy.signal
import soxr
import torch
from numpy.random import Generator

from phonex.config import ConfigError

Clips = Sequence[np.ndarray] | None  # other speech clips for babble noise
NOISE_KINDS = ("white", "pink", "babble")
_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)"  # finite decimals only: no nan/inf
_GRAMMAR = {"telephone": "", "mulaw8k": "", "noise": rf"({'|'.join(NOISE_KINDS)})@{_NUM}"}
_GRAMMAR.update(dict.fromkeys(("speed", "tempo", "pitch", "gain", "reverb"), _NUM))


def speed(wave: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Play ``factor`` times faster by resampling (soxr HQ): duration / factor, pitch * factor.

    Args:
        wave: Waveform ``[samples]`` at ``sr`` Hz.
        sr: Sample rate in Hz.
        factor: Speed factor (> 0); 0.5 doubles the length.

    Returns:
        Waveform ``[round(samples / factor)]``, float32.
    """
    if not factor > 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    return soxr.resample(wave, sr, sr / factor, quality="HQ").astype(np.float32)


def tempo(wave: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Time-stretch ``factor`` times faster keeping pitch (librosa phase vocoder).

    Args:
        wave: Waveform ``[samples]``.
        sr: Sample rate in Hz (unused; all steps share this signature).
        factor: Tempo factor (> 0).

    Returns:
        Waveform ``[round(samples / factor)]``, float32.
    """
    if not factor > 0:
        raise ValueError(f"tempo factor must be positive, got {factor}")
    return librosa.effects.time_stretch(wave, rate=factor).astype(np.float32)


def pitch_shift(wave: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping duration (librosa.effects.pitch_shift).

    Args:
        wave: Waveform ``[samples]``.
        sr: Sample rate in Hz.
        semitones: Shift; negative lowers the voice.

    Returns:
        Waveform ``[samples]``, float32.
    """
    return librosa.effects.pitch_shift(wave, sr=sr, n_steps=semitones).astype(np.float32)


def gain(wave: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels.

    Args:
        wave: Waveform ``[samples]``.
        db: Gain in dB.

    Returns:
        Waveform ``[samples]``, float32.
    """
    return (wave * 10.0 ** (db / 20.0)).astype(np.float32)


def measure_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR of ``noisy`` against ``clean`` over the whole clip (inf when they are identical).

    Args:
        clean: Waveform ``[samples]``.
        noisy: ``clean`` plus noise ``[samples]``.

    Returns:
        ``10 log10(sum(clean^2) / sum((noisy - clean)^2))`` in dB.
    """
    clean, noisy = np.asarray(clean, dtype=np.float64), np.asarray(noisy, dtype=np.float64)
    with np.errstate(divide="ignore"):  # identical signals: inf
        return 10.0 * float(np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2)))


def add_noise(
    wave: np.ndarray,
    snr_db: float,
    kind: str,
    rng: Generator,
    sr: int = 16000,
    babble: Clips = None,
) -> np.ndarray:
    """Add noise scaled so that :func:`measure_snr` of the result is exactly ``snr_db``.

    Args:
        wave: Clean waveform ``[samples]``, not all zero.
        snr_db: Requested SNR in dB, over the whole clip.
        kind: ``"white"``, ``"pink"`` (1/f power, flat below 20 Hz) or ``"babble"`` (up to 6
            random ``babble`` clips, each looped from a random offset and brought to equal RMS).
        rng: Random source.
        sr: Sample rate in Hz of ``wave`` and ``babble``.
        babble: Other speech clips ``[samples_i]``, needed for ``kind="babble"``.

    Returns:
        Noisy waveform ``[samples]``, float32.
    """
    clean_energy = float(np.sum(np.square(wave, dtype=np.float64)))
    if clean_energy == 0.0:
        raise ValueError("add_noise: the clean signal is silent, so SNR is undefined")
    if kind not in NOISE_KINDS:
        raise ValueError(f"add_noise: unknown noise kind {kind!r}; use one of {NOISE_KINDS}")
    if kind == "babble":
        noise = _babble_noise(wave.size, rng, babble)
    else:
        spectrum = np.fft.rfft(rng.standard_normal(wave.size))
        if kind == "pink":  # 1/f power, flat below 20 Hz rather than blowing up at DC
            spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(wave.size, 1.0 / sr), 20.0))
        noise = np.fft.irfft(spectrum, n=wave.size)
    scale = np.sqrt(clean_energy / (np.sum(noise**2) * 10.0 ** (snr_db / 10.0)))
    return (wave + scale * noise).astype(np.float32)


def _babble_noise(n: int, rng: Generator, clips: Clips) -> np.ndarray:
    """Sum of up to 6 randomly chosen, equal-RMS clips, each looped to ``n`` samples."""
    clips = [np.asarray(c, dtype=np.float64) for c in (clips or []) if np.any(c)]
    if not clips:
        raise ValueError("add_noise: kind 'babble' needs non-silent clips in `babble`")
    total = np.zeros(n)
    for clip in [clips[i] for i in rng.choice(len(clips), min(6, len(clips)), replace=False)]:
        looped = np.resize(np.roll(clip, -int(rng.integers(clip.size))), n)  # repeats as needed
        total += looped / np.sqrt(np.mean(looped**2) + 1e-12)
    return total


def reverb(wave: np.ndarray, sr: int, rt60: float, rng: Generator) -> np.ndarray:
    """Convolve with a synthetic room impulse response, keeping timing, length and RMS.

    The response: a direct path, then Gaussian noise falling 60 dB in ``rt60`` s with the same
    energy (0 dB direct-to-reverberant ratio); unit total energy keeps the loudness about equal.

    Args:
        wave: Waveform ``[samples]``.
        sr: Sample rate in Hz.
        rt60: Reverberation time in seconds (> 0).
        rng: Random source.

    Returns:
        Reverberant waveform ``[samples]`` (the tail past the end is cut), float32.
    """
    if not rt60 > 0:
        raise ValueError(f"reverb rt60 must be positive, got {rt60}")
    t = np.arange(1, max(2, round(rt60 * sr) + 1)) / sr
    tail = rng.standard_normal(t.size) * np.exp(-np.log(1000.0) * t / rt60)  # -60 dB at rt60
    ir = np.concatenate([[1.0], tail / np.sqrt(np.sum(tail**2))]) / np.sqrt(2.0)
    return scipy.signal.fftconvolve(wave, ir)[: len(wave)].astype(np.float32)


def telephone(wave: np.ndarray, sr: int) -> np.ndarray:
    """Telephone band: 4th-order Butterworth 300-3400 Hz band-pass, zero phase (sosfiltfilt).

    Args:
        wave: Waveform ``[samples]``.
        sr: Sample rate in Hz (> 6800).

    Returns:
        Filtered waveform ``[samples]``, float32.
    """
    if sr <= 6800:
        raise ValueError(f"telephone needs a sample rate above 6800 Hz, got {sr}")
    sos = scipy.signal.butter(4, [300.0, 3400.0], btype="bandpass", fs=sr, output="sos")
    return scipy.signal.sosfiltfilt(sos, wave).astype(np.float32)


def mulaw_8k(wave: np.ndarray, sr: int) -> np.ndarray:
    """Narrow-band codec: resample to 8 kHz, 8-bit mu-law encode and decode, resample back.

    Args:
        wave: Waveform ``[samples]``.
        sr: Sample rate in Hz.

    Returns:
        Waveform ``[samples]``, float32.
    """
    narrow = np.clip(soxr.resample(wave, sr, 8000, quality="HQ"), -1.0, 1.0)
    decoded = librosa.mu_expand(librosa.mu_compress(narrow, mu=255), mu=255)  # 8-bit codes
    back = soxr.resample(decoded.astype(np.float32), 8000, sr, quality="HQ")
    return librosa.util.fix_length(back, size=len(wave)).astype(np.float32)


def _parse_spec(spec: str) -> list[tuple[str, tuple]]:
    """Checked ``(name, arguments)`` steps; a ``+`` before a digit is a sign (``gain=+6``)."""
    text = spec.strip().lower()
    steps = []
    for part in re.split(r"\+(?=[a-z])", text) if text not in ("", "none") else []:
        name, equals, value = part.strip().partition("=")
        pattern = _GRAMMAR.get(name)
        match = re.fullmatch(pattern, value) if pattern is not None else None
        if match is None or bool(equals) != bool(pattern):
            raise ConfigError(
                f"augmentation spec {spec!r}: bad step {part!r}; steps are speed=F, tempo=F, "
                f"pitch=SEMITONES, gain=DB, noise={'|'.join(NOISE_KINDS)}@SNR_DB, "
                "reverb=RT60, telephone, mulaw8k, or 'none' alone"
            )
        args = tuple(g if g in NOISE_KINDS else float(g) for g in match.groups())
        if name in ("speed", "tempo", "reverb") and not args[0] > 0:
            raise ConfigError(f"augmentation spec {spec!r}: {name} must be positive")
        steps.append((name, args))
    return steps


def apply(
    wave: np.ndarray, sr: int, spec: str, rng: Generator, babble: Clips = None
) -> np.ndarray:
    """Run the augmentation chain ``spec`` (see the module docstring) on ``wave``.

    Args:
        wave: Waveform ``[samples]``.
        sr: Sample rate in Hz.
        spec: Augmentation chain.
        rng: Random source for noise, babble choice and reverb.
        babble: Clips ``[samples_i]`` for ``noise=babble@SNR``.

    Returns:
        Waveform ``[about samples * time_scale(spec)]``, float32, divided by its peak if that
        exceeds 1.0.
    """
    out = np.asarray(wave, dtype=np.float32)
    sr_steps = {"speed": speed, "tempo": tempo, "pitch": pitch_shift}  # f(wave, sr, *args)
    sr_steps.update(telephone=telephone, mulaw8k=mulaw_8k)
    for name, args in _parse_spec(spec):
        if name == "noise":
            out = add_noise(out, args[1], args[0], rng, sr=sr, babble=babble)
        elif name == "reverb":
            out = reverb(out, sr, args[0], rng)
        else:
            out = gain(out, *args) if name == "gain" else sr_steps[name](out, sr, *args)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return out / peak if peak > 1.0 else out.copy()


def time_scale(spec: str) -> float:
    """How phone times scale under ``spec``: the product of 1/factor of its speed and tempo steps.

    Args:
        spec: Augmentation chain.

    Returns:
        Multiplier for times (and, up to rounding, for the length).
    """
    return float(np.prod([1.0 / a[0] for n, a in _parse_spec(spec) if n in ("speed", "tempo")]))


def random_spec(rng: Generator, noise_kinds: Sequence[str] = NOISE_KINDS) -> str:
    """Draw one augmentation chain from the default distribution; never ``"none"``.

    Speed (p=0.4, 0.6-1.4 as in the seed project) or tempo (p=0.2, 0.8-1.25); pitch (p=0.2,
    +-3 semitones); reverb (p=0.25, RT60 0.2-0.8 s); noise (p=0.6, or when nothing else was
    drawn; 5-30 dB of ``noise_kinds``); telephone or mulaw8k (p=0.1 each); gain (p=0.3, -12..6 dB).

    Args:
        rng: Random source.
        noise_kinds: Noise kinds to draw from; leave out ``"babble"`` when no clips are at hand.

    Returns:
        A spec for :func:`apply`, e.g. ``"speed=0.85+noise=pink@12.5"``.
    """
    steps = []
    time_draw = rng.random()
    if time_draw < 0.4:
        steps.append(f"speed={rng.uniform(0.6, 1.4):.2f}")
    elif time_draw < 0.6:
        steps.append(f"tempo={rng.uniform(0.8, 1.25):.2f}")
    if rng.random() < 0.2:
        steps.append(f"pitch={rng.uniform(-3, 3):.1f}")
    if rng.random() < 0.25:
        steps.append(f"reverb={rng.uniform(0.2, 0.8):.2f}")
    if rng.random() < 0.6 or not steps:
        steps.append(f"noise={rng.choice(list(noise_kinds))}@{rng.uniform(5, 30):.1f}")
    channel = rng.random()
    if channel < 0.2:
        steps.append("telephone" if channel < 0.1 else "mulaw8k")
    if rng.random() < 0.3:
        steps.append(f"gain={rng.uniform(-12, 6):.1f}")
    return "+".join(steps)


def spec_augment(
    features: torch.Tensor,
    rng_or_generator: Generator | torch.Generator,
    time_masks: int = 2,
    time_width: float = 0.05,
    freq_masks: int = 2,
    freq_width: int = 8,
) -> torch.Tensor:
    """SpecAugment time and feature masking of training features.

    Widths are uniform from 0 to their maximum, starts uniform. Masked cells take the example's
    mean: zero for normalised features, a neutral level for log-mels (where 0 = log(1) is loud).

    Args:
        features: ``[batch, frames, dim]`` or ``[frames, dim]``.
        rng_or_generator: numpy or torch (CPU) generator.
        time_masks: Time masks per example.
        time_width: Largest time-mask width as a fraction of the example's frames.
        freq_masks: Feature masks per example.
        freq_width: Largest feature-mask width in bins.

    Returns:
        Masked copy of ``features``, same shape, dtype and device.
    """
    if features.ndim not in (2, 3):
        raise ValueError(f"spec_augment: need 2 or 3 dims, got shape {tuple(features.shape)}")
    gen = rng_or_generator
    if not isinstance(gen, torch.Generator):  # one draw from numpy seeds the torch generator
        gen = torch.Generator().manual_seed(int(gen.integers(2**62)))
    out = features.clone()
    batch = out if out.ndim == 3 else out.unsqueeze(0)  # a view: writes go to ``out``
    for example in batch:
        fill = example.mean()
        for _ in range(time_masks):
            start, width = _draw_mask(gen, len(example), int(time_width * len(example)))
            example[start : start + width, :] = fill
        for _ in range(freq_masks):
            start, width = _draw_mask(gen, example.shape[1], freq_width)
            example[:, start : start + width] = fill
    return out


def _draw_mask(gen: torch.Generator, size: int, max_width: int) -> tuple[int, int]:
    """``(start, width)`` with width uniform in [0, max_width] and the mask inside ``size``."""
    width = min(int(torch.randint(max_width + 1, (), generator=gen)), size)
    return int(torch.randint(size - width + 1, (), generator=gen)), width
