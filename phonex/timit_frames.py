"""Frame labels of real speech for layer probes: TIMIT's hand labels, or a forced alignment.

Probes on real speech need the phone under every 20 ms frame. Two sources, one label set:

- TIMIT (``timit-sample-dev``): its ``.phn`` hand labels become FA-Bench protocol units
  (:func:`phonex.timit.protocol_units`: TIMIT-61 folded to 39, each closure merged into its
  release, silences joined), the same units the alignment scorer and PER use;
- any transcribed clip (speechocean762): a forced alignment by a phone model
  (:func:`phonex.align.align`), its espeak-ng IPA folded to the same 39 classes.

Frames under silence (``sil``, the 39th class) are left out, as in the synthetic probes: the
probes read phone identity, not speech activity. Probes are fitted and tested on disjoint
speakers (:func:`speaker_folds`). TIMIT's two dialect sentences (SA1, SA2), which every speaker
reads, are left out by default, as in TIMIT's own test sets: the same sentence on both sides of a
split would let a probe (and the control task) recognise contexts instead of phones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phonex import probe
from phonex.intervals import Interval
from phonex.timit import SILENCE, protocol_units


@dataclass
class LabelledClips:
    """Clips with protocol phone intervals (``sil`` included) and their speakers.

    Attributes:
        rows: manifest rows (``.id``, ``.audio``, ``.checksum``, ``.speaker``).
        intervals: per clip, 39-class phone intervals tiling it (seconds).
        source: where the labels come from, for reports (``"TIMIT .phn"``, ``"forced alignment
            by phonex-en"``).
    """

    rows: list
    intervals: list[list[Interval]]
    source: str

    @property
    def speakers(self) -> list[str]:
        return [row.speaker for row in self.rows]


def unit_intervals(units) -> list[Interval]:
    """Protocol units as intervals; a run of units that share outer times only (a fold into
    several phones, ``iə`` -> ``iy ah``) divides its span equally."""
    out: list[Interval] = []
    run: list = []
    for unit in units:
        run.append(unit)
        if unit.end is None:
            continue
        start = run[0].start if run[0].start is not None else (out[-1].end if out else 0.0)
        step = (unit.end - start) / len(run)
        out.extend(Interval(u.label, start + k * step, start + (k + 1) * step)
                   for k, u in enumerate(run))  # fmt: skip
        run = []
    return out


def clip_labels(
    intervals: Sequence[Interval], frames: int, frame_seconds: float
) -> tuple[np.ndarray, np.ndarray]:
    """The phone under each frame's centre and its triphone context; silence is ``NO_LABEL``.

    Returns:
        ``(phones [frames], contexts [frames])``, object arrays; contexts name silence
        neighbours ``sil``.
    """
    phones, contexts = probe.frame_labels(intervals, frames, frame_seconds)
    silent = phones == SILENCE
    phones[silent], contexts[silent] = probe.NO_LABEL, probe.NO_LABEL
    return phones, contexts


def label_clips(states: probe.HiddenStates, clips: LabelledClips) -> probe.FrameLabels:
    """:class:`phonex.probe.FrameLabels` for every frame of ``states`` (same clips, same order).

    Raises:
        ValueError: ``states`` holds other clips than ``clips``.
    """
    ids = [row.id for row in clips.rows]
    if list(states.ids) != ids:
        raise ValueError("hidden states and labels are of different clips (or another order)")
    phones, contexts, index = [], [], []
    for i, intervals in enumerate(clips.intervals):
        p, c = clip_labels(intervals, states.frames(i), states.frame_seconds)
        phones.append(p), contexts.append(c), index.append(np.full(len(p), i))
    return probe.FrameLabels(np.concatenate(phones), np.concatenate(contexts),
                             np.concatenate(index))  # fmt: skip


def timit_clips(root: str | Path, keep_sa: bool = False) -> LabelledClips:
    """TIMIT recordings (``timit-sample-dev``) with their hand labels as protocol phones.

    Args:
        root: the TIMIT tree.
        keep_sa: keep the SA1/SA2 sentences that every speaker reads (module docstring).

    Raises:
        phonex.corpus.CorpusError: a recording without its ``.phn`` labels, or no recordings.
    """
    from phonex.timit import read_timit_reference

    rows, intervals = [], []
    for row, labels in read_timit_reference(root):
        if not keep_sa and row.id.lower().rsplit("_", 1)[-1] in ("sa1", "sa2"):
            continue
        units = protocol_units(labels.phones, "timit", span=(0.0, row.duration))
        rows.append(row), intervals.append(unit_intervals(units))
    return LabelledClips(rows, intervals, "TIMIT .phn hand labels")


def _sex(speaker: str) -> str:
    """TIMIT speaker folders read ``drN-<sex><initials><n>`` (``dr1-fvmh0``: female)."""
    name = speaker.split("-", 1)[-1].lower()
    return name[:1] if name[:1] in ("f", "m") else "?"


def speaker_folds(speakers: Sequence[str], folds: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Test clip indices of each fold: every speaker tested once, never where it was fitted.

    Speakers are dealt into ``folds`` groups after a seeded shuffle, women and men in turn, so
    that a fold of TIMIT's 4 women and 4 men tests one of each.

    Args:
        speakers: the speaker of each clip.
        folds: number of folds (at most the number of speakers, at least 2).

    Raises:
        ValueError: fewer than 2 folds, or more folds than speakers.
    """
    names = sorted(set(speakers))
    if not 2 <= folds <= len(names):
        raise ValueError(f"{folds} folds of {len(names)} speakers: need 2 to {len(names)}")
    rng = np.random.default_rng(seed)
    ordered = []
    for sex in ("f", "m", "?"):
        group = [s for s in names if _sex(s) == sex]
        ordered += [group[i] for i in rng.permutation(len(group))]
    fold_of = {speaker: k % folds for k, speaker in enumerate(ordered)}
    return [np.flatnonzero([fold_of[s] == k for s in speakers]) for k in range(folds)]


def aligned_clips(
    loaded, rows, name: str = "", progress: bool = False
) -> tuple[LabelledClips, dict[str, str]]:
    """Clips labelled by a forced alignment of their phones, folded to the 39 classes.

    Args:
        loaded: a phone :class:`phonex.models.LoadedModel` (the aligner).
        rows: transcribed rows with reference phones (``row.phones``, espeak-ng IPA with ``|``).
        name: the aligner's name in reports (default: ``loaded.source``).

    Returns:
        The aligned clips, and per clip that could not be aligned or folded, why (it is left
        out, the others kept).
    """
    from tqdm.auto import tqdm

    from phonex.align import align, to_tiers
    from phonex.audio import load_audio

    kept, intervals, skipped = [], [], {}
    for row in tqdm(rows, desc="aligning", disable=not progress):
        try:
            wave = load_audio(row.audio, loaded.sample_rate)
            phones = to_tiers(align(loaded, wave, row.text, tokens=row.phones or None))["phones"]
            units = protocol_units(phones, "espeak", span=(0.0, len(wave) / loaded.sample_rate))
        except ValueError as err:  # AlignmentError, AudioError, UnknownPhoneError
            skipped[row.id] = f"{type(err).__name__}: {err}"
            continue
        kept.append(row), intervals.append(unit_intervals(units))
    return LabelledClips(kept, intervals, f"forced alignment by {name or loaded.source}"), skipped


def reference_clips(rows, source: str = "espeak-ng's own phone times") -> LabelledClips:
    """Clips with reference alignments in espeak-ng IPA (the synthetic corpus), folded to the
    same 39 classes as TIMIT, so that synthetic and real curves count the same phones.

    Raises:
        phonex.intervals.AlignmentError: a reference alignment that cannot be read (named).
    """
    from phonex.intervals import read_alignment

    intervals = []
    for row in rows:
        phones = read_alignment(row.alignment)["phones"]
        span = (0.0, max(row.duration, phones[-1].end if phones else 0.0))
        intervals.append(unit_intervals(protocol_units(phones, "espeak", span=span)))
    return LabelledClips(list(rows), intervals, source)


def frame_agreement(
    reference: LabelledClips, hypothesis: LabelledClips, frame_seconds: float = 0.02
) -> dict[str, float | int]:
    """How often two labellings of the same clips name the same phone at a frame's centre.

    Scored on the frames where ``reference`` has a phone (not silence), over the clips both
    hold: a frame the hypothesis calls silence counts as a disagreement.

    Returns:
        ``agreement`` (share of those frames), ``frames`` and ``clips`` counted.
    """
    theirs = dict(zip((row.id for row in hypothesis.rows), hypothesis.intervals))
    same = counted = clips = 0
    for row, intervals in zip(reference.rows, reference.intervals):
        if row.id not in theirs:
            continue
        frames = int(np.ceil(max(i.end for i in intervals) / frame_seconds))
        truth, _ = clip_labels(intervals, frames, frame_seconds)
        guess, _ = clip_labels(theirs[row.id], frames, frame_seconds)
        labelled = truth != probe.NO_LABEL
        same += int(np.sum(truth[labelled] == guess[labelled]))
        counted, clips = counted + int(labelled.sum()), clips + 1
    return {"agreement": same / counted if counted else 0.0, "frames": counted, "clips": clips}
