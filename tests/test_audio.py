"""Tests for phonex.audio: reading/writing, level helpers, Tacotron2 log-mel and Griffin-Lim."""

from __future__ import annotations

import shutil
import subprocess

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from phonex import audio
from phonex.audio import (
    AudioError,
    griffin_lim,
    load_audio,
    mel_basis,
    mel_spectrogram,
    normalize,
    rms_db,
    save_audio,
    trim_silence,
)
from phonex.config import AudioConfig

CONFIGS = {"asr16k": AudioConfig(), "tacotron2": AudioConfig.tacotron2()}


def harmonic(sr: int, seconds: float = 1.0, f0: float = 150.0, seed: int = 0) -> np.ndarray:
    """A voiced-like test signal: 20 harmonics under a Hann envelope, plus faint noise."""
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 21) if f0 * k < sr / 2)
    noise = 1e-3 * np.random.default_rng(seed).standard_normal(t.size)
    return (wave * np.hanning(t.size) + noise).astype(np.float32)


def sine(freq: float, sr: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def dominant_hz(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1.0 / sr)[spectrum.argmax()])


def librosa_log_mel(wave: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=wave.astype(np.float64),
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=1.0,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
    )
    return np.log(np.maximum(mel, cfg.clamp_min))


# --- log-mel -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_mel_matches_librosa_reference(name: str) -> None:
    cfg = CONFIGS[name]
    wave = harmonic(cfg.sample_rate, seconds=0.7)[:-37]  # length not a multiple of the hop
    mel = mel_spectrogram(wave, cfg)
    assert isinstance(mel, np.ndarray)
    assert mel.shape == (cfg.n_mels, 1 + len(wave) // cfg.hop_length)
    np.testing.assert_allclose(mel, librosa_log_mel(wave, cfg), atol=2e-3)
    assert mel.min() >= np.log(cfg.clamp_min) - 1e-6


@pytest.mark.parametrize("name", CONFIGS)
def test_mel_batch_equals_single_and_keeps_kind(name: str) -> None:
    cfg = CONFIGS[name]
    waves = np.stack([harmonic(cfg.sample_rate, 0.5, f0=f) for f in (120.0, 210.0)])
    batch = mel_spectrogram(torch.from_numpy(waves), cfg)
    assert isinstance(batch, torch.Tensor)
    assert batch.shape == (2, cfg.n_mels, 1 + waves.shape[1] // cfg.hop_length)
    for i in range(2):
        np.testing.assert_allclose(batch[i].numpy(), mel_spectrogram(waves[i], cfg), atol=1e-4)
    assert not np.allclose(batch[0].numpy(), batch[1].numpy())


def test_mel_basis_is_librosa_slaney_and_cached() -> None:
    cfg = AudioConfig.tacotron2()
    expected = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0)
    np.testing.assert_allclose(mel_basis(cfg), expected, rtol=1e-6)
    before = audio._mel_basis.cache_info().hits
    mel_spectrogram(harmonic(22050, 0.2), cfg)
    mel_spectrogram(harmonic(22050, 0.2), AudioConfig.tacotron2())
    assert audio._mel_basis.cache_info().hits >= before + 2


def test_mel_rejects_too_short_or_wrong_rank() -> None:
    cfg = AudioConfig()
    with pytest.raises(ValueError, match="n_fft/2"):
        mel_spectrogram(np.zeros(100, dtype=np.float32), cfg)
    with pytest.raises(ValueError, match="shape"):
        mel_spectrogram(np.zeros((1, 2, 4000), dtype=np.float32), cfg)


def _mel_correlation(wave: np.ndarray, cfg: AudioConfig) -> tuple[float, int]:
    mel = mel_spectrogram(wave, cfg)
    rebuilt = griffin_lim(mel, cfg, n_iter=32)
    again = mel_spectrogram(rebuilt, cfg)
    frames = min(mel.shape[1], again.shape[1])
    corr = np.corrcoef(mel[:, :frames].ravel(), again[:, :frames].ravel())[0, 1]
    return float(corr), len(rebuilt)


@pytest.mark.parametrize("name", CONFIGS)
def test_griffin_lim_length_and_mel_correlation(name: str) -> None:
    cfg = CONFIGS[name]
    wave = harmonic(cfg.sample_rate, seconds=0.8)
    corr, length = _mel_correlation(wave, cfg)
    assert abs(length - len(wave)) <= cfg.hop_length
    assert corr > 0.9


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_griffin_lim_on_espeak_speech(tmp_path) -> None:
    path = tmp_path / "word.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "hydroxyzine"], check=True)
    cfg = AudioConfig()
    wave = load_audio(path, cfg.sample_rate)
    corr, length = _mel_correlation(wave, cfg)
    assert abs(length - len(wave)) <= cfg.hop_length
    assert corr > 0.9


# --- load_audio ----------------------------------------------------------------------------------


def test_load_stereo_gives_channel_mean(tmp_path) -> None:
    left, right = sine(440, 16000), -0.5 * sine(440, 16000)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 44100])
def test_load_resamples_to_16k(tmp_path, rate: int) -> None:
    path = tmp_path / f"tone_{rate}.wav"
    sf.write(path, sine(440, rate), rate, subtype="PCM_16")
    wave = load_audio(path, sample_rate=16000)
    assert abs(len(wave) - 16000) <= 1
    assert abs(dominant_hz(wave, 16000) - 440) <= 2
    assert abs(np.max(np.abs(wave[1000:-1000])) - 0.5) < 0.02


def test_flac_round_trip_through_save_audio(tmp_path) -> None:
    wave = sine(300, 16000)
    path = tmp_path / "tone.flac"
    save_audio(path, wave, 16000)
    assert sf.info(path).format == "FLAC" and sf.info(path).subtype == "PCM_16"
    np.testing.assert_allclose(load_audio(path), wave, atol=1.0 / 32768 + 1e-6)


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"), [(".ogg", "OGG", "VORBIS"), (".mp3", "MP3", "MPEG_LAYER_III")]
)
def test_lossy_formats_load(tmp_path, suffix: str, fmt: str, subtype: str) -> None:
    if fmt not in sf.available_formats():
        pytest.skip(f"libsndfile cannot write {fmt}")
    path = tmp_path / f"tone{suffix}"
    sf.write(path, sine(440, 22050), 22050, format=fmt, subtype=subtype)
    wave = load_audio(path, sample_rate=16000)
    assert abs(len(wave) - 16000) < 0.1 * 16000  # codecs may add a little padding
    assert abs(dominant_hz(wave, 16000) - 440) <= 3


def test_mp3_falls_back_to_librosa_without_libsndfile_mp3(tmp_path, monkeypatch) -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile cannot write MP3 to make the test file")
    path = tmp_path / "tone.mp3"
    sf.write(path, sine(440, 16000), 16000, format="MP3", subtype="MPEG_LAYER_III")

    def old_libsndfile_read(*args, **kwargs):
        raise RuntimeError("Format not recognised.")

    formats = {k: v for k, v in sf.available_formats().items() if k != "MP3"}
    monkeypatch.setattr(audio.sf, "read", old_libsndfile_read)
    monkeypatch.setattr(audio.sf, "available_formats", lambda: formats)
    wave = load_audio(path, sample_rate=16000)
    assert abs(len(wave) - 16000) < 1600
    assert abs(dominant_hz(wave, 16000) - 440) <= 3


def test_missing_and_empty_files(tmp_path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="not found") as err:
        load_audio(missing)
    assert str(err.value).startswith(str(missing))
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(AudioError, match="0 bytes") as err:
        load_audio(empty)
    assert str(err.value).startswith(str(empty))
    no_samples = tmp_path / "header_only.wav"
    sf.write(no_samples, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples") as err:
        load_audio(no_samples)
    assert str(err.value).startswith(str(no_samples))


def test_truncated_wav_is_refused(tmp_path) -> None:
    good = tmp_path / "good.wav"
    sf.write(good, sine(440, 16000), 16000, subtype="PCM_16")
    data = good.read_bytes()
    for keep in (len(data) // 2, 30):  # cut in the samples, and inside the header
        cut = tmp_path / f"cut_{keep}.wav"
        cut.write_bytes(data[:keep])
        with pytest.raises(AudioError, match="truncated|cannot decode") as err:
            load_audio(cut)
        assert str(err.value).startswith(str(cut))


def test_text_file_named_wav_is_refused(tmp_path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match="cannot decode") as err:
        load_audio(path)
    assert str(err.value).startswith(str(path))


def test_silent_file_refused_unless_allowed(tmp_path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert str(err.value) == f"{path}: silent (all samples zero)"
    wave = load_audio(path, allow_silence=True)
    assert len(wave) == 8000 and not np.any(wave)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_samples_refused(tmp_path, bad: float) -> None:
    wave = sine(440, 16000)
    wave[500] = bad
    path = tmp_path / "bad.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite") as err:
        load_audio(path)
    assert str(err.value).startswith(str(path))


# --- save_audio ----------------------------------------------------------------------------------


def test_save_creates_parents_writes_pcm16_and_clips(tmp_path) -> None:
    path = tmp_path / "a" / "b" / "out.wav"
    wave = np.array([0.0, 0.5, 1.7, -3.0] * 100, dtype=np.float32)
    save_audio(path, wave, 16000)
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", 16000)
    back, _ = sf.read(path, dtype="float32")
    assert back.max() <= 1.0 and back.min() == -1.0
    np.testing.assert_allclose(back[:2], [0.0, 0.5], atol=1e-4)
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.wav"]


def test_save_refuses_nan_and_bad_suffix_keeping_old_file(tmp_path) -> None:
    path = tmp_path / "keep.wav"
    save_audio(path, sine(440, 16000), 16000)
    before = path.read_bytes()
    with pytest.raises(AudioError, match="NaN") as err:
        save_audio(path, np.full(100, np.nan, dtype=np.float32), 16000)
    assert str(err.value).startswith(str(path))
    with pytest.raises(AudioError, match="can only write"):
        save_audio(tmp_path / "x.mp4", sine(440, 16000), 16000)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch) -> None:
    path = tmp_path / "keep.wav"
    save_audio(path, sine(440, 16000), 16000)
    before = path.read_bytes()
    real_write = sf.write

    def failing_write(file, data, samplerate, **kwargs):
        real_write(file, data[: len(data) // 3], samplerate, **kwargs)  # a partial file ...
        raise OSError("disk full")  # ... then the failure

    monkeypatch.setattr(audio.sf, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        save_audio(path, sine(880, 16000), 16000)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_save_replaces_existing_file(tmp_path) -> None:
    path = tmp_path / "tone.wav"
    save_audio(path, sine(440, 16000), 16000)
    save_audio(path, sine(880, 8000, seconds=0.5), 8000)
    wave, rate = sf.read(path, dtype="float32")
    assert rate == 8000 and len(wave) == 4000
    assert abs(dominant_hz(wave, 8000) - 880) <= 2


# --- level helpers -------------------------------------------------------------------------------


def test_normalize_and_rms_db() -> None:
    wave = sine(440, 16000, amp=0.1)
    assert np.max(np.abs(normalize(wave))) == pytest.approx(0.95, rel=1e-6)
    assert np.max(np.abs(normalize(wave, peak=0.5))) == pytest.approx(0.5, rel=1e-6)
    assert not np.any(normalize(np.zeros(10, dtype=np.float32)))
    assert rms_db(sine(440, 16000, amp=1.0)) == pytest.approx(-3.01, abs=0.02)
    assert rms_db(sine(440, 16000, amp=0.1)) == pytest.approx(-23.01, abs=0.02)
    assert rms_db(np.zeros(100)) == -200.0


def test_trim_silence_keeps_the_tone() -> None:
    sr = 16000
    tone = sine(440, sr, seconds=0.5)
    wave = np.concatenate([np.zeros(sr // 2), tone, np.zeros(sr)]).astype(np.float32)
    trimmed = trim_silence(wave, sr, top_db=40)
    assert abs(len(trimmed) - len(tone)) <= int(0.05 * sr)
    assert rms_db(trimmed) == pytest.approx(rms_db(tone), abs=0.5)
