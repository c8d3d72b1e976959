"""Reading, writing and describing audio: waveforms, Tacotron2-compatible log-mels, Griffin-Lim.

Waveforms are float32 mono arrays ``[samples]`` in [-1, 1]. The log-mel front end reproduces
NVIDIA Tacotron2's ``TacotronSTFT.mel_spectrogram`` (magnitude STFT with a Hann window and reflect
padding, librosa's Slaney mel basis, ``log(clamp(x, min=clamp_min))``) with ``torch.stft``, so it
runs on numpy arrays and on (batched) tensors alike.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr
import torch

from phonex.config import AudioConfig
from phonex.files import atomic_write

_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


class AudioError(ValueError):
    """An audio file that cannot be used; the message starts with the file's path."""


def load_audio(
    path: str | Path, sample_rate: int = 16000, allow_silence: bool = False
) -> np.ndarray:
    """Read an audio file as mono float32 at ``sample_rate``.

    WAV, FLAC, OGG and (where libsndfile supports it) MP3 are read with soundfile; MP3 otherwise
    falls back to librosa/audioread. Channels are averaged; other rates are resampled with soxr
    (HQ).

    Args:
        path: Audio file.
        sample_rate: Rate of the returned waveform in Hz.
        allow_silence: Accept a file whose samples are all zero.

    Returns:
        Waveform ``[samples]``, float32.

    Raises:
        AudioError: The file is missing, empty, truncated, not audio, holds NaN/inf samples or
            (unless ``allow_silence``) is all zeros.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    truncated = _wav_truncation(path)
    if truncated:
        raise AudioError(f"{path}: truncated WAV ({truncated})")
    data, rate = _read(path)
    if data.size == 0:
        raise AudioError(f"{path}: no audio samples")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    if not allow_silence and not np.any(data):
        raise AudioError(f"{path}: silent (all samples zero)")
    wave = data.mean(axis=1) if data.ndim == 2 else data
    return resample(wave, rate, sample_rate)


def resample(wave: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample ``[samples]`` from ``rate`` to ``target_rate`` Hz (soxr, high quality).

    Returns:
        float32 ``[samples * target_rate / rate]``; the input itself when the rates agree.
    """
    if rate != target_rate:
        wave = soxr.resample(wave, rate, target_rate, quality="HQ")
    return np.ascontiguousarray(wave, dtype=np.float32)


def _read(path: Path) -> tuple[np.ndarray, int]:
    """Decode ``path`` to ``([frames, channels], rate)`` with soundfile, or librosa for MP3."""
    try:
        return sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as err:
        if path.suffix.lower() != ".mp3" or "MP3" in sf.available_formats():
            raise AudioError(
                f"{path}: cannot decode (corrupt, truncated or not audio): {err}"
            ) from err
    try:  # libsndfile < 1.1 has no MP3 decoder
        wave, rate = librosa.load(path, sr=None, mono=False)
    except Exception as err:  # audioread raises many unrelated types
        raise AudioError(f"{path}: cannot decode MP3: {err}") from err
    return np.atleast_2d(wave).T, int(rate)


def _wav_truncation(path: Path) -> str | None:
    """Describe how a RIFF/WAVE file is cut short, or None if it is complete or not a WAV.

    libsndfile reads a WAV whose data chunk is cut off without complaint, so the chunk size
    written in the header is compared with the bytes that are actually there.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, length = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - pos - 8
                # 0 and 0xFFFFFFFF mark streamed files whose size was never filled in
                if length not in (0, 0xFFFFFFFF) and length > available:
                    return f"data chunk declares {length} bytes, only {available} present"
                return None
            pos += 8 + length + (length & 1)
    return None


def save_audio(path: str | Path, wave: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM WAV (``.wav``) or FLAC (``.flac``) atomically.

    The data go to a hidden temporary file in the same folder that then replaces ``path``, so an
    existing file is only overwritten by a complete one. Parent folders are created. Samples
    outside [-1, 1] are clipped.

    Args:
        path: Destination; its suffix selects the format.
        wave: Waveform ``[samples]`` (or ``[samples, channels]``).
        sample_rate: Sample rate in Hz.

    Raises:
        AudioError: Unsupported suffix or NaN/inf samples.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: can only write {sorted(_WRITE_FORMATS)}, not {path.suffix!r}")
    wave = np.asarray(wave, dtype=np.float32)
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    wave = np.clip(wave, -1.0, 1.0)
    atomic_write(path, lambda tmp: sf.write(tmp, wave, sample_rate, format=fmt, subtype="PCM_16"))


def normalize(wave: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale ``wave`` so its largest absolute sample is ``peak``; all-zero input is returned as is.

    Args:
        wave: Waveform ``[samples]``.
        peak: Target peak amplitude.

    Returns:
        Scaled waveform ``[samples]``, same dtype.
    """
    top = float(np.max(np.abs(wave))) if wave.size else 0.0
    if top == 0.0:
        return wave.copy()
    return (wave * (peak / top)).astype(wave.dtype, copy=False)


def trim_silence(wave: np.ndarray, sample_rate: int, top_db: float = 40) -> np.ndarray:
    """Cut leading and trailing audio quieter than ``top_db`` below the peak (librosa trim).

    Frames are 25 ms with a 10 ms hop, so the result does not depend on the sample rate.

    Args:
        wave: Waveform ``[samples]``.
        sample_rate: Sample rate in Hz.
        top_db: Threshold in dB below the loudest frame.

    Returns:
        Trimmed waveform ``[samples']``.
    """
    hop = max(1, int(0.010 * sample_rate))
    trimmed, _ = librosa.effects.trim(
        wave, top_db=top_db, frame_length=max(hop, int(0.025 * sample_rate)), hop_length=hop
    )
    return trimmed


def rms_db(wave: np.ndarray) -> float:
    """Root-mean-square level in dBFS (a full-scale sine is -3 dB); silence gives -200 dB.

    Args:
        wave: Waveform ``[samples]``.

    Returns:
        Level in dB relative to full scale.
    """
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    return 20.0 * float(np.log10(max(rms, 1e-10)))


@lru_cache(maxsize=16)
def _mel_basis(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> torch.Tensor:
    """Slaney mel filterbank ``[n_mels, n_fft // 2 + 1]`` as Tacotron2 builds it."""
    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return torch.from_numpy(basis)


def mel_basis(cfg: AudioConfig) -> np.ndarray:
    """The (cached) Slaney mel filterbank of ``cfg``.

    Args:
        cfg: Audio settings.

    Returns:
        Filterbank ``[n_mels, n_fft // 2 + 1]``, float32.
    """
    return _mel_basis(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax).numpy().copy()


def mel_spectrogram(
    wave: np.ndarray | torch.Tensor, cfg: AudioConfig
) -> np.ndarray | torch.Tensor:
    """Log-mel spectrogram equal to Tacotron2's ``TacotronSTFT.mel_spectrogram``.

    Args:
        wave: Waveform ``[samples]`` or batch ``[batch, samples]`` at ``cfg.sample_rate``,
            numpy or torch (any device).
        cfg: Audio settings (n_fft, hop, window length, mel band edges, clamp floor).

    Returns:
        ``log(clamp(mel, clamp_min))``: ``[n_mels, frames]`` or ``[batch, n_mels, frames]``,
        with ``frames = 1 + samples // hop_length``; same kind (numpy/torch) as ``wave``.
    """
    is_numpy = not isinstance(wave, torch.Tensor)
    x = torch.as_tensor(np.ascontiguousarray(wave)) if is_numpy else wave
    if not x.is_floating_point():
        x = x.float()
    if x.ndim not in (1, 2) or x.shape[-1] <= cfg.n_fft // 2:
        raise AudioError(
            f"mel_spectrogram needs [samples] or [batch, samples] longer than n_fft/2 = "
            f"{cfg.n_fft // 2}, got shape {tuple(x.shape)}"
        )
    window = torch.hann_window(cfg.win_length, dtype=x.dtype, device=x.device)
    spec = torch.stft(
        x,
        cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    basis = _mel_basis(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    mel = torch.log(torch.clamp(basis.to(x.device, x.dtype) @ spec, min=cfg.clamp_min))
    return mel.cpu().numpy() if is_numpy else mel


def griffin_lim(mel: np.ndarray | torch.Tensor, cfg: AudioConfig, n_iter: int = 60) -> np.ndarray:
    """Invert a log-mel from :func:`mel_spectrogram` to a waveform, for listening.

    The mel magnitudes are mapped back to a linear spectrogram by non-negative least squares
    (``librosa.feature.inverse.mel_to_stft``) and phases are estimated with Griffin-Lim.

    Args:
        mel: Log-mel ``[n_mels, frames]``.
        cfg: The settings the mel was made with.
        n_iter: Griffin-Lim iterations.

    Returns:
        Waveform ``[(frames - 1) * hop_length]``, float32.
    """
    if isinstance(mel, torch.Tensor):
        mel = mel.detach().cpu().numpy()
    magnitudes = librosa.feature.inverse.mel_to_stft(
        np.exp(np.asarray(mel, dtype=np.float64)),
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        power=1.0,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
    )
    wave = librosa.griffinlim(
        magnitudes,
        n_iter=n_iter,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        n_fft=cfg.n_fft,
        window="hann",
        center=True,
        pad_mode="reflect",
        length=(mel.shape[-1] - 1) * cfg.hop_length,
        random_state=0,
    )
    return wave.astype(np.float32)
