"""How a voice speaks: duration, speaking rate and pitch of clips, for comparing TTS engines.

Pitch comes from librosa's pYIN (probabilistic YIN), the standard f0 tracker for speech; only
voiced frames count. The pitch range is the spread between the 5th and 95th percentiles of f0,
in semitones, so it compares across low and high voices.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import numpy as np
import pandas as pd

from phonex.audio import trim_silence
from phonex.phonemes import WORD_SEP

F0_MIN, F0_MAX = 50.0, 500.0  # Hz: the search range of pYIN, wide enough for any adult voice


def pitch(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """f0 in Hz of the voiced frames (10 ms hop), empty when nothing is voiced."""
    f0, voiced, _ = librosa.pyin(wave, fmin=F0_MIN, fmax=F0_MAX, sr=sample_rate,
                                 frame_length=2048 if sample_rate > 24000 else 1024,
                                 hop_length=sample_rate // 100)  # fmt: skip
    return f0[voiced & np.isfinite(f0)]


def describe(wave: np.ndarray, sample_rate: int, phones: str = "") -> dict[str, float]:
    """Duration, speech duration (edges trimmed at -40 dB), phones per second of speech, and
    the median f0 and its 5-95 % range in semitones (NaN for an unvoiced clip).

    Args:
        phones: the clip's phone string (``"z ɜː t ɛ k"``; ``|`` between words is skipped).
    """
    speech = trim_silence(wave, sample_rate)
    speech_s = len(speech) / sample_rate
    count = sum(1 for p in phones.split() if p != WORD_SEP)
    f0 = pitch(speech, sample_rate) if len(speech) else np.array([])
    low, median, high = np.percentile(f0, [5, 50, 95]) if len(f0) else (np.nan,) * 3
    return {
        "duration_s": len(wave) / sample_rate,
        "speech_s": speech_s,
        "phones_per_s": count / speech_s if speech_s and count else np.nan,
        "f0_median_hz": float(median),
        "f0_range_semitones": float(12 * np.log2(high / low)) if len(f0) else np.nan,
        "voiced_share": min(1.0, len(f0) / max(1, round(speech_s * 100))),
    }


def describe_rows(rows: Sequence, progress: bool = True) -> pd.DataFrame:
    """:func:`describe` for manifest rows (audio at its own rate), with engine and speaker."""
    import soundfile as sf
    from tqdm.auto import tqdm

    records = []
    for row in tqdm(rows, desc="describing", disable=not progress):
        wave, sr = sf.read(row.audio, dtype="float32", always_2d=True)
        records.append({"id": row.id, "engine": row.engine, "speaker": row.speaker,
                         **describe(wave.mean(axis=1), sr, row.phones)})  # fmt: skip
    return pd.DataFrame(records)
