"""TIMIT as the hand-labelled reference: its phone intervals and FA-Bench's TIMIT protocol.

Before two phone segmentations are compared, both become *protocol units*: TIMIT-39 labels
(:data:`phonex.phonesets.TIMIT61_TO_39`) with times, tiling the utterance. The rules follow
FA-Bench's TIMIT protocol (fold to 39, merge closures, join silences); where it leaves a case
open, the choice below agrees with the TIMIT mapping the Montreal Forced Aligner's benchmark
scripts use (mfa-models ``scripts/alignment_benchmarks/mapping_files/arpa_timit_mapping.yaml``,
read only), in which ``bcl b`` and a lone ``bcl`` are both the stop B:

1. A closure and its own release become one unit labelled by the release, spanning both
   (``bcl b`` -> ``b``; ``tcl ch`` -> ``ch``, ``dcl jh`` -> ``jh``; ``tcl q``, a glottalised
   /t/, -> ``t``). A closure without its release (``dcl y`` in "had your", ``kcl t`` in "act")
   is its own stop, unreleased (``dcl`` -> ``d``). The reduced set's ``cl``/``vcl`` say which
   voicing but not which stop: before a stop or affricate they merge into it, alone they are
   silence.
2. ``q`` (a glottal stop, deleted by the 39-fold) gives its time to the phone after it, the
   vowel it attacks; before a silence or at the end, to the phone before it.
3. Every other label folds to 39 (``ix`` -> ``ih``, ``zh`` -> ``sh`` ...). ``h#``, ``pau``,
   ``epi``, aligner silences (``sil``, ``sp``), empty labels and uncovered time are all
   ``sil``; adjacent silences join into one.

espeak-ng IPA (phonex's own alignments) comes in through :func:`phonex.phonesets.ipa_to_39`
(``"timit"`` convention). A unit that folds to several phones (``iə`` -> ``iy ah``) keeps its
outer times; the boundary inside it is unknown (``None``). A unit that folds to none (``ʔ``)
is handled like ``q``.

Boundaries of two segmentations are then paired in order (:func:`paired_units`,
:func:`paired_errors`) or matched one-to-one within a tolerance (:func:`one_to_one_hits`,
:func:`segmentation_scores`); :func:`phonex.metrics.score_alignment` is the scorer built on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rapidfuzz.distance import Levenshtein

from phonex.intervals import Interval, read_alignment
from phonex.phonemes import UNK, WORD_SEP
from phonex.phonesets import arpabet_to_39, ipa_to_39

if TYPE_CHECKING:
    from phonex.corpus import Utterance

SILENCE = "sil"
MATCH_TOLERANCE = 0.020  # seconds: the window of a boundary hit
LABEL_SETS = ("timit", "espeak")
_SILENCES = frozenset(("", "h#", "pau", "epi", "sil", "sp"))
_STOP_OF_CLOSURE = {"bcl": "b", "dcl": "d", "gcl": "g", "pcl": "p", "tcl": "t", "kcl": "k"}
_RELEASES = {
    "bcl": ("b",), "dcl": ("d", "jh"), "gcl": ("g",), "pcl": ("p",), "tcl": ("t", "ch", "q"),
    "kcl": ("k",), "cl": ("p", "t", "k", "ch"), "vcl": ("b", "d", "g", "jh"),
}  # fmt: skip


@dataclass(frozen=True)
class Unit:
    """One protocol unit: a TIMIT-39 label (or ``sil``) and its times in seconds.

    ``start``/``end`` are ``None`` for a boundary the labels do not give (inside a unit that
    folds to several phones).
    """

    label: str
    start: float | None
    end: float | None


def _fold_timit(label: str) -> list[str]:
    """TIMIT-61, the reduced set or ARPAbet (stress digits allowed) -> 39 labels."""
    return ["t"] if label == "q" else arpabet_to_39([label])


def _timit_units(items: Sequence[Interval]) -> list[Unit]:
    """Rule 1 and 3 for TIMIT-style labels; ``q`` is left as a ``q`` unit for rule 2."""
    out: list[Unit] = []
    k = 0
    while k < len(items):
        item, label = items[k], items[k].label.strip().lower()
        following = items[k + 1].label.strip().lower() if k + 1 < len(items) else ""
        if label in _RELEASES and following in _RELEASES[label]:
            out.append(Unit(_fold_timit(following)[0], item.start, items[k + 1].end))
            k += 2
            continue
        if label in _SILENCES or label in ("cl", "vcl"):
            out.append(Unit(SILENCE, item.start, item.end))
        elif label == "q":
            out.append(Unit("q", item.start, item.end))
        else:
            folded = [_STOP_OF_CLOSURE[label]] if label in _STOP_OF_CLOSURE else _fold_timit(label)
            out.extend(Unit(p, item.start, item.end) for p in folded)
        k += 1
    return out


def _espeak_units(items: Sequence[Interval]) -> list[Unit]:
    """espeak-ng IPA through ipa_to_39; an empty fold becomes a ``q`` unit for rule 2."""
    labels = [i.label.strip() for i in items]
    out: list[Unit] = []
    for k, item in enumerate(items):
        if labels[k] in _SILENCES:
            out.append(Unit(SILENCE, item.start, item.end))
            continue
        if labels[k] == UNK:  # a recogniser's unknown phone: an error, never a match
            out.append(Unit(UNK, item.start, item.end))
            continue
        following = labels[k + 1] if k + 1 < len(labels) and labels[k + 1] != UNK else ""
        # the next phone decides some folds (oː before ɹ); its own part is dropped again
        phones = ipa_to_39([labels[k], following], convention="timit")
        phones = phones[: len(phones) - len(ipa_to_39([following], convention="timit"))]
        if not phones:
            out.append(Unit("q", item.start, item.end))
        for n, phone in enumerate(phones):
            out.append(Unit(phone, item.start if n == 0 else None,
                            item.end if n == len(phones) - 1 else None))  # fmt: skip
    return out


def _absorb_glottal(units: list[Unit]) -> list[Unit]:
    """Rule 2: a ``q`` unit's time joins the phone after it, else the phone before it."""
    out: list[Unit] = []
    for k, unit in enumerate(units):
        if unit.label != "q":
            out.append(unit)
            continue
        after = units[k + 1] if k + 1 < len(units) else None
        if after is not None and after.label not in (SILENCE, "q"):
            units[k + 1] = Unit(after.label, unit.start, after.end)
        elif out and out[-1].label != SILENCE:
            out[-1] = Unit(out[-1].label, out[-1].start, unit.end)
        else:
            out.append(Unit(SILENCE, unit.start, unit.end))
    return out


def _tile(units: list[Unit], start: float | None, end: float | None) -> list[Unit]:
    """Fill uncovered time (and the span's edges) with silence, then join adjacent silences."""
    filled: list[Unit] = []
    cursor = start
    for unit in units:
        if cursor is not None and unit.start is not None and unit.start > cursor + 1e-9:
            filled.append(Unit(SILENCE, cursor, unit.start))
        filled.append(unit)
        cursor = unit.end if unit.end is not None else cursor
    if end is not None and cursor is not None and end > cursor + 1e-9:
        filled.append(Unit(SILENCE, cursor, end))
    joined: list[Unit] = []
    for unit in filled:
        if joined and unit.label == SILENCE and joined[-1].label == SILENCE:
            joined[-1] = Unit(SILENCE, joined[-1].start, unit.end)
        else:
            joined.append(unit)
    return joined


def protocol_units(
    intervals: Sequence[Interval],
    labels: str = "timit",
    span: tuple[float, float] | None = None,
) -> list[Unit]:
    """A phone segmentation as protocol units (module docstring): folded, merged, joined.

    Args:
        intervals: ``label, start, end`` in seconds, in time order; ``|`` labels are dropped.
        labels: ``"timit"`` (TIMIT-61, its reduced cl/vcl/sil set, TIMIT-39 or ARPAbet) or
            ``"espeak"`` (espeak-ng IPA).
        span: utterance ``(start, end)``; time outside the intervals becomes silence. Default:
            from the first start to the last end.

    Returns:
        Units tiling the span, no two silences adjacent.

    Raises:
        ValueError: an unknown label set.
        phonex.phonesets.UnknownPhoneError: a label outside its set.
    """
    if labels not in LABEL_SETS:
        raise ValueError(f"label set {labels!r}: expected one of {LABEL_SETS}")
    items = [i for i in intervals if i.label.strip() != WORD_SEP]
    units = _timit_units(items) if labels == "timit" else _espeak_units(items)
    if span is None:
        span = (items[0].start, items[-1].end) if items else (None, None)
    return _tile(_absorb_glottal(units), *span)


def protocol_phones(tokens: Sequence[str], labels: str = "timit") -> list[str]:
    """The protocol's phone labels of a token sequence, silences dropped (for PER).

    Args:
        tokens: phone labels in order, e.g. a ``.phn`` file's or a recogniser's.
        labels: as :func:`protocol_units`.
    """
    items = [Interval(t, float(k), float(k + 1)) for k, t in enumerate(tokens)]
    return [u.label for u in protocol_units(items, labels) if u.label != SILENCE]


# --- pairing and matching the boundaries of two segmentations ---------------------------------


def one_to_one_hits(
    reference: Sequence[float], hypothesis: Sequence[float], tolerance: float = MATCH_TOLERANCE
) -> int:
    """Most pairs of a reference and a hypothesis boundary within ``tolerance`` of each other,
    each boundary in at most one pair.

    Both lists are sorted and each reference boundary takes the earliest free hypothesis
    boundary in its window; with windows of equal width this greedy sweep is a maximum matching.
    charsiu's precision/recall (``src/evaluation.py``, adapted from UnsupSeg) instead counts, on
    each side, boundaries whose nearest neighbour is within tolerance, so one reference boundary
    can confirm several predictions; here it confirms one.
    """
    ref, hyp = sorted(reference), sorted(hypothesis)
    hits, j = 0, 0
    for time in ref:
        while j < len(hyp) and hyp[j] < time - tolerance - 1e-9:
            j += 1
        if j < len(hyp) and hyp[j] <= time + tolerance + 1e-9:
            hits, j = hits + 1, j + 1
    return hits


def segmentation_scores(hits: int, reference: int, hypothesis: int) -> dict[str, float | None]:
    """Boundary precision, recall, F1 and R-value (Räsänen et al. 2009) from counts.

    R-value combines the hit rate ``HR`` (recall) with over-segmentation
    ``OS = hypothesis / reference - 1``: ``r1 = sqrt((1 - HR)^2 + OS^2)``,
    ``r2 = (HR - OS - 1) / sqrt(2)``, ``R = 1 - (|r1| + |r2|) / 2``; 1 is perfect, and unlike
    F1 it falls when a segmenter buys recall with extra boundaries. ``None`` when undefined.
    """
    precision = hits / hypothesis if hypothesis else None
    recall = hits / reference if reference else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    r_value = None
    if recall is not None:
        over = hypothesis / reference - 1
        r1 = np.hypot(1 - recall, over)
        r2 = (recall - over - 1) / np.sqrt(2)
        r_value = float(1 - (abs(r1) + abs(r2)) / 2)
    return {"precision": precision, "recall": recall, "f1": f1, "r_value": r_value}


def paired_units(ref: list[Unit], hyp: list[Unit]) -> dict[int, int]:
    """Reference unit index -> hypothesis unit index, for phones the edit alignment pairs with
    the same label (every phone when the sequences are equal: then it is pairing by index)."""
    ref_phones = [k for k, u in enumerate(ref) if u.label != SILENCE]
    hyp_phones = [k for k, u in enumerate(hyp) if u.label != SILENCE]
    pairs = {}
    opcodes = Levenshtein.opcodes([ref[k].label for k in ref_phones],
                                  [hyp[k].label for k in hyp_phones])  # fmt: skip
    for op in opcodes:
        if op.tag == "equal":
            for a, b in zip(range(op.src_start, op.src_end), range(op.dest_start, op.dest_end)):
                pairs[ref_phones[a]] = hyp_phones[b]
    return pairs


def paired_errors(ref: list[Unit], hyp: list[Unit], pairs: dict[int, int]) -> list[float]:
    """Each reference boundary (after unit k) against the onset of the hypothesis phone paired
    with unit k + 1, or else the offset of the one paired with unit k."""
    errors = []
    for k in range(len(ref) - 1):
        guesses = [hyp[pairs[k + 1]].start if k + 1 in pairs else None,
                   hyp[pairs[k]].end if k in pairs else None]  # fmt: skip
        guess = next((g for g in guesses if g is not None), None)
        if ref[k].end is not None and guess is not None:
            errors.append(abs(ref[k].end - guess))
    return errors


def unit_boundaries(units: list[Unit]) -> list[float]:
    """Known times between adjacent units (the utterance's own start and end are not ones)."""
    return [u.end for u in units[:-1] if u.end is not None]


@dataclass
class TimitUtterance:
    """A TIMIT recording's hand labels, in seconds."""

    phones: list[Interval]  # TIMIT-61 labels as written in ``.phn``
    words: list[Interval]


def read_timit_labels(phn: str | Path) -> TimitUtterance:
    """The phone intervals of a ``.phn`` file and the word intervals of its sibling ``.wrd``.

    Raises:
        phonex.intervals.AlignmentError: naming the file and line that cannot be read.
    """
    tiers = read_alignment(phn)
    return TimitUtterance(tiers.get("phones", []), tiers.get("words", []))


def read_timit_reference(root: str | Path) -> list[tuple[Utterance, TimitUtterance]]:
    """A TIMIT tree (``timit-sample-dev``) as manifest rows with their hand labels.

    Rows come from :func:`phonex.readers.read_timit` (phones: the ``.phn`` labels; speaker: the
    speaker folder, e.g. ``dr1-fvmh0``, whose first letter after the region is the sex).

    Raises:
        phonex.corpus.CorpusError: a recording without a ``.phn`` file, or no recordings.
    """
    from phonex.corpus import CorpusError
    from phonex.readers import read_timit

    out = []
    for row in read_timit(root):
        if not row.alignment:
            raise CorpusError(f"{row.audio}: no .phn phone labels next to it")
        out.append((row, read_timit_labels(row.alignment)))
    return out
