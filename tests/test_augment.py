"""Tests for phonex.augment: waveform augmentations, the spec language and SpecAugment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phonex import augment
from phonex.augment import (
    add_noise,
    apply,
    gain,
    measure_snr,
    mulaw_8k,
    pitch_shift,
    random_spec,
    reverb,
    spec_augment,
    speed,
    telephone,
    tempo,
    time_scale,
)

SR = 16000


def sine(freq: float, sr: int = SR, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def harmonic(f0: float = 140.0, sr: int = SR, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(0.15 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 15))
    return (wave * np.hanning(t.size)).astype(np.float32)


def dominant_hz(wave: np.ndarray, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1.0 / sr)[spectrum.argmax()])


def level_db(wave: np.ndarray) -> float:
    middle = wave[len(wave) // 8 : -len(wave) // 8]  # skip filter edge effects
    return 20 * np.log10(np.sqrt(np.mean(np.square(middle, dtype=np.float64))))


BABBLE = [harmonic(f0) for f0 in (110.0, 170.0, 230.0)] + [sine(300, seconds=0.3)]


# --- noise ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_add_noise_hits_requested_snr(kind: str, snr: float) -> None:
    clean = harmonic()
    noisy = add_noise(clean, snr, kind, np.random.default_rng(3), sr=SR, babble=BABBLE)
    assert noisy.shape == clean.shape and noisy.dtype == np.float32
    assert abs(measure_snr(clean, noisy) - snr) < 0.5


def test_measure_snr_definition() -> None:
    clean = sine(440)
    assert measure_snr(clean, clean * 1.1) == pytest.approx(20.0, abs=1e-4)  # noise = 0.1 clean
    assert measure_snr(clean, clean) == float("inf")


def test_pink_noise_falls_3db_per_octave_and_white_is_flat() -> None:
    clean = sine(440, seconds=4.0)

    def band_ratio_db(kind: str) -> float:
        noise = add_noise(clean, 0.0, kind, np.random.default_rng(0), sr=SR) - clean
        power = np.abs(np.fft.rfft(noise)) ** 2
        freqs = np.fft.rfftfreq(len(noise), 1.0 / SR)
        low = power[(freqs > 1000) & (freqs < 1100)].mean()
        high = power[(freqs > 4000) & (freqs < 4400)].mean()
        return 10 * np.log10(low / high)

    assert band_ratio_db("pink") == pytest.approx(10 * np.log10(4.2 / 1.05), abs=1.5)
    assert abs(band_ratio_db("white")) < 1.5


def test_add_noise_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="babble"):
        add_noise(sine(440), 10, "babble", rng, babble=None)
    with pytest.raises(ValueError, match="unknown noise kind 'brown'"):
        add_noise(sine(440), 10, "brown", rng)
    with pytest.raises(ValueError, match="silent"):
        add_noise(np.zeros(100, dtype=np.float32), 10, "white", rng)


# --- time and pitch ------------------------------------------------------------------------------


def test_speed_changes_length_and_pitch() -> None:
    wave = sine(440)
    slow = speed(wave, SR, 0.5)
    assert abs(len(slow) - 2 * len(wave)) <= 1
    assert dominant_hz(slow) == pytest.approx(220, abs=2)
    fast = speed(wave, SR, 1.25)
    assert abs(len(fast) - len(wave) / 1.25) <= 1
    assert dominant_hz(fast) == pytest.approx(550, abs=3)


def test_tempo_keeps_pitch_and_pitch_shift_keeps_length() -> None:
    wave = sine(440)
    stretched = tempo(wave, SR, 0.5)
    assert abs(len(stretched) - 2 * len(wave)) <= 1
    assert dominant_hz(stretched) == pytest.approx(440, abs=3)
    shifted = pitch_shift(wave, SR, 12)
    assert len(shifted) == len(wave)
    assert dominant_hz(shifted) == pytest.approx(880, abs=5)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_speed_and_tempo_refuse_non_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        speed(sine(440), SR, bad)
    with pytest.raises(ValueError, match="positive"):
        tempo(sine(440), SR, bad)


def test_gain() -> None:
    wave = sine(440, amp=0.1)
    np.testing.assert_allclose(gain(wave, 20.0), wave * 10.0, rtol=1e-5)
    np.testing.assert_allclose(gain(wave, -6.0), wave * 0.501187, rtol=1e-4)


# --- channel and room ----------------------------------------------------------------------------


def test_telephone_band() -> None:
    assert level_db(telephone(sine(1000), SR)) == pytest.approx(level_db(sine(1000)), abs=1.0)
    for freq in (100, 6000):
        assert level_db(telephone(sine(freq), SR)) < level_db(sine(freq)) - 30
    with pytest.raises(ValueError, match="6800"):
        telephone(sine(440, sr=6000), 6000)


def test_mulaw_8k_is_close_to_input() -> None:
    wave = harmonic()
    coded = mulaw_8k(wave, SR)
    assert coded.shape == wave.shape
    assert measure_snr(wave, coded) > 25
    assert not np.array_equal(coded, wave)  # it is lossy, not a no-op


@pytest.mark.parametrize("rt60", [0.3, 0.7])
def test_reverb_has_requested_decay_and_keeps_length(rt60: float) -> None:
    impulse = np.zeros(SR, dtype=np.float32)
    impulse[0] = 1.0
    response = reverb(impulse, SR, rt60, np.random.default_rng(0)).astype(np.float64)
    assert response.shape == impulse.shape
    decay = np.cumsum(response[::-1] ** 2)[::-1]  # Schroeder backward integration
    decay_db = 10 * np.log10(decay / decay[0])
    t5, t25 = np.argmax(decay_db < -5) / SR, np.argmax(decay_db < -25) / SR
    assert 3 * (t25 - t5) == pytest.approx(rt60, rel=0.15)  # T20 extrapolated to 60 dB


def test_reverb_is_seeded_and_aligned() -> None:
    wave = harmonic()
    first = reverb(wave, SR, 0.4, np.random.default_rng(5))
    assert np.array_equal(first, reverb(wave, SR, 0.4, np.random.default_rng(5)))
    assert not np.array_equal(first, reverb(wave, SR, 0.4, np.random.default_rng(6)))
    lag = np.argmax(np.correlate(first[:4000], wave[:4000], mode="full")) - 3999
    assert abs(lag) <= 2  # direct path first: no delay
    assert abs(level_db(first) - level_db(wave)) < 3


# --- spec language -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["noise=white@10+reverb=0.3", "speed=1.2+noise=babble@5"])
def test_apply_is_deterministic_per_seed(spec: str) -> None:
    wave = harmonic()
    first = apply(wave, SR, spec, np.random.default_rng(1), babble=BABBLE)
    again = apply(wave, SR, spec, np.random.default_rng(1), babble=BABBLE)
    other = apply(wave, SR, spec, np.random.default_rng(2), babble=BABBLE)
    assert np.array_equal(first, again)
    assert first.shape == other.shape and not np.array_equal(first, other)


@pytest.mark.parametrize("spec", ["none", "", "  NONE "])
def test_apply_none_returns_a_copy_of_the_input(spec: str) -> None:
    wave = harmonic()
    out = apply(wave, SR, spec, np.random.default_rng(0))
    assert np.array_equal(out, wave) and out is not wave


def test_apply_chain_matches_single_steps() -> None:
    wave = harmonic()
    chained = apply(wave, SR, "speed=0.8+gain=-6+telephone", np.random.default_rng(0))
    by_hand = telephone(gain(speed(wave, SR, 0.8), -6), SR)
    np.testing.assert_allclose(chained, by_hand, atol=1e-6)
    signed = apply(wave, SR, "gain=+3", np.random.default_rng(0))
    np.testing.assert_allclose(signed, gain(wave, 3.0), atol=1e-7)


def test_apply_keeps_peak_at_most_one() -> None:
    wave = sine(440, amp=0.5)
    loud = apply(wave, SR, "gain=20", np.random.default_rng(0))
    assert np.max(np.abs(loud)) == pytest.approx(1.0)
    np.testing.assert_allclose(loud, wave / 0.5, atol=1e-4)  # rescaled, not clipped
    noisy = apply(wave, SR, "noise=white@0+gain=12", np.random.default_rng(0))
    assert np.max(np.abs(noisy)) <= 1.0


@pytest.mark.parametrize(
    "spec",
    [
        "speed",
        "speed=fast",
        "speed=0",
        "tempo=-1",
        "reverb=0",
        "noise=red@10",
        "noise=white",
        "noise=white@x",
        "pitch=nan",
        "gain=inf",
        "echo=1",
        "telephone=3",
        "speed=1+",
        "+speed=1",
        "none+speed=1",
    ],
)
def test_bad_specs_raise_naming_the_spec(spec: str) -> None:
    with pytest.raises(ValueError) as err:
        apply(harmonic(), SR, spec, np.random.default_rng(0))
    assert repr(spec) in str(err.value)
    with pytest.raises(ValueError):
        time_scale(spec)


@pytest.mark.parametrize(
    ("spec", "scale"),
    [
        ("speed=0.8", 1.25),
        ("tempo=2", 0.5),
        ("speed=0.5+tempo=2", 1.0),
        ("speed=1.25+noise=pink@10+pitch=2", 0.8),
        ("noise=white@20+reverb=0.3+telephone+mulaw8k+gain=-3", 1.0),
        ("none", 1.0),
    ],
)
def test_time_scale(spec: str, scale: float) -> None:
    assert time_scale(spec) == pytest.approx(scale)
    out = apply(harmonic(), SR, spec, np.random.default_rng(0))
    assert abs(len(out) - SR * scale) <= 2


def test_random_spec_draws_valid_varied_chains() -> None:
    rng = np.random.default_rng(0)
    specs = [random_spec(rng) for _ in range(300)]
    replay = np.random.default_rng(0)
    assert [random_spec(replay) for _ in range(300)] == specs
    assert len(set(specs)) > 250 and "none" not in specs and "" not in specs
    names = set()
    for spec in specs:
        for name, args in augment._parse_spec(spec):
            names.add(name if name != "noise" else f"noise={args[0]}")
            if name == "speed":
                assert 0.6 <= args[0] <= 1.4
            if name == "noise":
                assert 5.0 <= args[1] <= 30.0
    assert names >= {"speed", "tempo", "pitch", "reverb", "telephone", "mulaw8k", "gain"}
    assert names >= {"noise=white", "noise=pink", "noise=babble"}
    white_only = [random_spec(rng, noise_kinds=("white",)) for _ in range(100)]
    assert not any("pink" in s or "babble" in s for s in white_only)


def test_random_specs_apply() -> None:
    rng = np.random.default_rng(7)
    wave = harmonic(seconds=0.5)
    for _ in range(8):
        spec = random_spec(rng)
        out = apply(wave, SR, spec, rng, babble=BABBLE)
        assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.0
        assert abs(len(out) - len(wave) * time_scale(spec)) <= 2


# --- SpecAugment ---------------------------------------------------------------------------------


def _masked(original: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    return masked != original


def test_spec_augment_time_mask_is_one_block_with_the_mean() -> None:
    features = torch.randn(3, 400, 80)
    before = features.clone()
    out = spec_augment(features, np.random.default_rng(0), time_masks=1, freq_masks=0)
    assert out.shape == features.shape and out.dtype == features.dtype
    assert not torch.equal(out, features) and torch.equal(features, before)  # input untouched
    for original, example in zip(features, out, strict=True):
        frames = _masked(original, example).any(dim=1).nonzero().flatten()
        if len(frames):
            assert len(frames) <= int(0.05 * 400)
            assert frames[-1] - frames[0] + 1 == len(frames)  # contiguous
            assert torch.allclose(example[frames], original.mean().expand(len(frames), 80))


def test_spec_augment_masks_the_expected_amount() -> None:
    features = torch.randn(1, 400, 80)
    rng = np.random.default_rng(1)
    time_widths, freq_widths = [], []
    for _ in range(300):
        out = spec_augment(features, rng, time_masks=1, freq_masks=1, freq_width=10)
        masked = _masked(features[0], out[0])
        time_widths.append(int(masked.all(dim=1).sum()))
        freq_widths.append(int(masked.all(dim=0).sum()))
    assert max(time_widths) <= 20 and max(freq_widths) <= 10
    assert np.mean(time_widths) == pytest.approx(10, abs=1.5)  # uniform in 0..20
    assert np.mean(freq_widths) == pytest.approx(5, abs=1.0)  # uniform in 0..10


def test_spec_augment_2d_torch_generator_and_determinism() -> None:
    features = torch.randn(200, 40)
    first = spec_augment(features, torch.Generator().manual_seed(3))
    assert first.shape == (200, 40)
    assert torch.equal(first, spec_augment(features, torch.Generator().manual_seed(3)))
    a = spec_augment(features, np.random.default_rng(3))
    assert torch.equal(a, spec_augment(features, np.random.default_rng(3)))
    assert not torch.equal(a, spec_augment(features, np.random.default_rng(4)))
    with pytest.raises(ValueError, match="dims"):
        spec_augment(torch.randn(5), np.random.default_rng(0))
