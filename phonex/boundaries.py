"""Boundary calibration: move CTC phone onsets to where phones really begin.

A CTC model fires a phone's spike somewhere inside the phone, and where depends on the phone
and its neighbours: late in a vowel after a stop, early in a /t/. Clips with reference times
(espeak-ng's own, or hand labels) from *training* voices show by how much. A
:class:`BoundaryCalibration` keeps the median offset (reference onset minus aligned onset) per
context and backs off from specific to general:

1. previous phone's broad class, the phone, next phone's broad class;
2. previous class and the phone;
3. the phone alone (unseen phones are not moved).

A context needs ``min_count`` examples to be used. Onsets stay in order (at least one frame
apart); a phone still ends where the next begins, except before a pause (or at the end), where
its CTC frames say little about where it ends: there the median offset of its end (reference
end minus aligned end) is added, by phone (``end <phone>``), backing off to every phone before
a pause (``end *``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from phonex.align import WordSpan
from phonex.phonesets import broad_class


def contexts(phones: Sequence[str]) -> list[list[str]]:
    """Per phone, its context keys from the most specific to the most general."""
    classes = ["#", *(broad_class(p, unknown="other") for p in phones), "#"]
    return [[f"{classes[i]} {p} {classes[i + 2]}", f"{classes[i]} {p} *", f"* {p} *"]
            for i, p in enumerate(phones)]  # fmt: skip


class CalibrationError(ValueError):
    """A calibration file that cannot be read."""


@dataclass
class BoundaryCalibration:
    """Median onset offsets (seconds) by context; see the module docstring."""

    offsets: dict[str, float]
    counts: dict[str, int]
    frame_seconds: float = 0.02
    min_count: int = 3
    meta: dict = field(default_factory=dict)  # what it was fitted on

    def shifts(self, phones: Sequence[str]) -> list[float]:
        """The offset to add to each phone's onset."""
        out = []
        for keys in contexts(phones):
            usable = [k for k in keys if self.counts.get(k, 0) >= self.min_count]
            out.append(self.offsets[usable[0]] if usable else 0.0)
        return out

    def end_shift(self, phone: str) -> float:
        """The offset to add to the end of ``phone`` before a pause."""
        usable = [k for k in (f"end {phone}", "end *") if self.counts.get(k, 0) >= self.min_count]
        return self.offsets[usable[0]] if usable else 0.0

    def apply(self, words: Sequence[WordSpan]) -> list[WordSpan]:
        """The same words with calibrated phone onsets (and the ends that follow from them)."""
        flat = [p for w in words for p in w.phones]
        if not flat:
            return list(words)
        starts = []
        for (_, start, _, _), shift in zip(flat, self.shifts([p[0] for p in flat])):
            floor = starts[-1] + self.frame_seconds if starts else 0.0
            starts.append(max(start + shift, floor))
        ends = []
        for i, (phone, _, end, _) in enumerate(flat):
            if i + 1 < len(flat) and np.isclose(end, flat[i + 1][1]):  # contiguous
                ends.append(starts[i + 1])
                continue
            end = max(end + self.end_shift(phone), starts[i] + self.frame_seconds)
            ends.append(min(end, starts[i + 1]) if i + 1 < len(flat) else end)
        out, i = [], 0
        for w in words:
            phones = [
                (p, starts[i + k], ends[i + k], c) for k, (p, _, _, c) in enumerate(w.phones)
            ]
            out.append(WordSpan(w.word, phones[0][1], phones[-1][2], phones, w.gop))
            i += len(phones)
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(
            {"offsets": self.offsets, "counts": self.counts, "frame_seconds": self.frame_seconds,
             "min_count": self.min_count, "meta": self.meta}, indent=1, ensure_ascii=False))  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | Path) -> BoundaryCalibration:
        path = Path(path)
        try:
            values = json.loads(path.read_text())
            return cls(**values)
        except (OSError, ValueError, TypeError) as err:
            raise CalibrationError(f"{path}: not a boundary calibration file: {err}") from None


def fit_calibration(phones: pd.DataFrame, frame_seconds: float = 0.02,
                    min_count: int = 3) -> BoundaryCalibration:  # fmt: skip
    """Learn onset offsets from aligned phones with reference times.

    Args:
        phones: aligned phones with reference onsets, one row per phone, in clip order
            (``id, speaker, phone, ref_start, start``): :func:`phonex.align_eval.evaluate_alignment`
            of clips from the *training* voices, or
            :func:`phonex.align_eval.timit_phone_table`, where ``ref_start`` is NaN for a phone
            the hand labels do not confirm (it still gives its neighbours their context).
        frame_seconds: the model's frame shift (the smallest phone kept after calibration).
        min_count: examples a context needs before it is used.
    """
    paired = phones[np.isfinite(phones.ref_start.astype(float))] if not phones.empty else phones
    if paired.empty:
        raise ValueError("no aligned phones with reference times to fit a boundary calibration on")
    offsets = defaultdict(list)
    for _, clip in phones.groupby("id", sort=False):
        errors = (clip.ref_start.astype(float) - clip.start).to_numpy()
        for keys, error in zip(contexts(clip.phone.tolist()), errors):
            for key in keys if np.isfinite(error) else ():  # unpaired: context for others only
                offsets[key].append(error)
        if "ref_end" in clip:
            _end_offsets(clip, offsets)
    return BoundaryCalibration(
        offsets={k: float(np.median(v)) for k, v in offsets.items()},
        counts={k: len(v) for k, v in offsets.items()},
        frame_seconds=frame_seconds,
        min_count=min_count,
        meta={"clips": int(paired.id.nunique()), "phones": len(paired),
              "speakers": sorted(paired.speaker.unique().tolist())},
    )  # fmt: skip


def _end_offsets(clip: pd.DataFrame, offsets: dict[str, list[float]]) -> None:
    """Add the end errors of a clip's phones before a pause, or last (``end`` keys)."""
    ends, following = clip.end.to_numpy(float), clip.start.shift(-1).to_numpy(float)
    errors = clip.ref_end.to_numpy(float) - ends
    for phone, error, end, after in zip(clip.phone, errors, ends, following):
        if np.isfinite(error) and not np.isclose(end, after):
            offsets[f"end {phone}"].append(error)
            offsets["end *"].append(error)
