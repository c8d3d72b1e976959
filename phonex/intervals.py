"""Reference alignments as interval tiers: Praat TextGrids and TIMIT ``.phn``/``.wrd`` files.

Times are in seconds. TextGrids are read and written with praatio; files are written atomically
(:func:`phonex.files.atomic_write`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from praatio import textgrid

from phonex.files import atomic_write

TIMIT_SAMPLE_RATE = 16000  # TIMIT .phn/.wrd boundaries are sample offsets at 16 kHz
_EPS = 1e-9  # tolerance for float boundaries that should touch


class AlignmentError(ValueError):
    """A reference alignment that cannot be read or written; names the file, tier and interval."""


@dataclass(frozen=True)
class Interval:
    """A labelled stretch of time in seconds; an empty label marks a gap."""

    label: str
    start: float
    end: float


def _read_textgrid(path: Path) -> dict[str, list[Interval]]:
    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    except Exception as err:  # praatio raises many unrelated types on malformed files
        raise AlignmentError(f"{path}: not a readable TextGrid: {err}") from err
    return {
        tier.name: [Interval(e.label, float(e.start), float(e.end)) for e in tier.entries]
        for tier in grid.tiers
        if tier.tierType == textgrid.INTERVAL_TIER  # point tiers have no extent
    }


def _read_timit_tier(path: Path, sample_rate: int) -> list[Interval]:
    intervals = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=2)
        try:
            start, end, label = int(parts[0]), int(parts[1]), parts[2].strip()
        except (IndexError, ValueError) as err:
            raise AlignmentError(
                f"{path}: line {number}: expected 'start end label' in samples, got {line!r}"
            ) from err
        intervals.append(Interval(label, start / sample_rate, end / sample_rate))
    return intervals


def read_alignment(
    path: str | Path, keep_empty: bool = False, sample_rate: int = TIMIT_SAMPLE_RATE
) -> dict[str, list[Interval]]:
    """Read a reference alignment: a Praat TextGrid or a TIMIT ``.phn``/``.wrd`` file.

    Args:
        path: ``*.TextGrid`` (interval tiers keep their names; point tiers are skipped), or a
            TIMIT ``.phn`` (tier ``"phones"``) whose sibling ``.wrd``, if present, gives tier
            ``"words"`` (and the other way round).
        keep_empty: keep intervals with empty labels (gaps) instead of dropping them.
        sample_rate: rate of the TIMIT sample offsets.

    Returns:
        Tier name -> intervals in seconds, in file order.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise AlignmentError(f"alignment file not found: {path}")
    if suffix == ".textgrid":
        tiers = _read_textgrid(path)
    elif suffix in (".phn", ".wrd"):
        tiers = {}
        for tier, ext in (("phones", ".phn"), ("words", ".wrd")):
            sibling = next(
                (p for p in (path.with_suffix(ext), path.with_suffix(ext.upper())) if p.is_file()),
                None,
            )
            if sibling is not None:
                tiers[tier] = _read_timit_tier(sibling, sample_rate)
    else:
        raise AlignmentError(f"{path}: unknown alignment format (expected .TextGrid, .phn, .wrd)")
    if not keep_empty:
        tiers = {name: [i for i in tier if i.label.strip()] for name, tier in tiers.items()}
    return tiers


def _check_tier(name: str, intervals: Sequence[Interval], duration: float) -> None:
    previous_end = 0.0
    for index, interval in enumerate(intervals):
        where = f"tier {name!r} interval {index} {interval}"
        if not interval.start < interval.end:
            raise AlignmentError(f"{where}: start must be before end")
        if interval.start < -_EPS or interval.end > duration + _EPS:
            raise AlignmentError(f"{where}: outside [0, {duration}]")
        if interval.start < previous_end - _EPS:
            raise AlignmentError(f"{where}: overlaps or precedes the previous interval")
        previous_end = interval.end


def write_textgrid(
    path: str | Path, tiers: dict[str, Sequence[Interval]], duration: float
) -> Path:
    """Write interval tiers as a long-format Praat TextGrid, atomically.

    Gaps between intervals are written as empty intervals, as Praat expects.

    Args:
        path: output ``.TextGrid``.
        tiers: tier name -> sorted, non-overlapping intervals in seconds.
        duration: length of the recording in seconds; every interval must lie in [0, duration].

    Returns:
        The path written.

    Raises:
        AlignmentError: naming the tier and interval that is empty, reversed, unsorted,
            overlapping or outside the recording.
        OSError: ``path`` is a folder or cannot be written; ``err.filename`` is ``path``.
    """
    path = Path(path)
    if not duration > 0:
        raise AlignmentError(f"{path}: duration must be positive, got {duration}")
    grid = textgrid.Textgrid(0.0, duration)
    for name, intervals in tiers.items():
        _check_tier(name, intervals, duration)
        # clamp the float tolerance accepted above so praatio's own checks pass
        entries = [(max(i.start, 0.0), min(i.end, duration), i.label) for i in intervals]
        grid.addTier(textgrid.IntervalTier(name, entries, 0.0, duration))
    atomic_write(path, lambda tmp: grid.save(tmp, format="long_textgrid", includeBlankSpaces=True))
    return path
