"""How good is a result: error rates (jiwer), top-k, confusions, phonetic distance, alignments.

Error rates are corpus-level (all edits over all reference tokens) through jiwer, with phones or
characters as the "words" jiwer counts; ``|`` is not a phone and is left out of the PER. Phonetic
distance is panphon's articulatory feature edit distance, next to the plain phone edit distance.
Alignments are scored against hand labels under FA-Bench's TIMIT protocol: one scorer,
:func:`score_alignment` per utterance and :func:`summarize_alignments` per corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jiwer
import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from phonex import timit
from phonex.phonemes import WORD_SEP
from phonex.timit import MATCH_TOLERANCE, SILENCE, protocol_phones, protocol_units

TOP_K = (1, 2, 3, 4, 5)


@dataclass
class ErrorRate:
    """Edits against references, counted over tokens (phones, characters or words)."""

    rate: float
    substitutions: int
    deletions: int
    insertions: int
    reference_tokens: int

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {
            prefix: self.rate,
            f"{prefix}_sub": self.substitutions,
            f"{prefix}_del": self.deletions,
            f"{prefix}_ins": self.insertions,
        }


def _tokens(text: str, keep_word_sep: bool) -> str:
    return " ".join(t for t in text.split() if keep_word_sep or t != WORD_SEP)


def error_rate(
    references: Sequence[str], hypotheses: Sequence[str], keep_word_sep: bool = False
) -> ErrorRate:
    """Token error rate of space-separated token strings: PER for phones, CER for characters,
    WER for words.

    Args:
        references: true token strings, e.g. ``"n oʊ v oʊ | l ɔ ɡ"``.
        hypotheses: decoded token strings, same order.
        keep_word_sep: count ``|`` as a token (CER over characters with spaces).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [_tokens(r, keep_word_sep) for r in references]
    hyps = [_tokens(h, keep_word_sep) for h in hypotheses]
    if not refs or any(not r for r in refs):
        raise ValueError("error rate needs non-empty references")
    out = jiwer.process_words(refs, hyps)
    total = out.hits + out.substitutions + out.deletions
    return ErrorRate(out.wer, out.substitutions, out.deletions, out.insertions, total)


# --- ranked recognition results -------------------------------------------------------------


def rank_of(truth: str, ranked: Sequence[str]) -> int:
    """1-based position of ``truth`` in ``ranked`` (case-insensitive), 0 when it is absent."""
    folded = [w.casefold() for w in ranked]
    return folded.index(truth.casefold()) + 1 if truth.casefold() in folded else 0


def top_k_accuracy(ranks: Iterable[int], ks: Sequence[int] = TOP_K) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}``: fraction of clips whose truth is within the first k."""
    ranks = np.asarray(list(ranks))
    if ranks.size == 0:
        raise ValueError("top-k accuracy of no clips")
    return {f"top{k}": float(np.mean((ranks >= 1) & (ranks <= k))) for k in ks}


def mean_reciprocal_rank(ranks: Iterable[int]) -> float:
    """Mean of 1/rank, counting a truth outside the ranked list (rank 0) as 0."""
    ranks = np.asarray(list(ranks), dtype=float)
    if ranks.size == 0:
        raise ValueError("mean reciprocal rank of no clips")
    return float(np.mean(np.divide(1.0, ranks, out=np.zeros_like(ranks), where=ranks > 0)))


def summarize_ranks(ranks: Sequence[int]) -> dict[str, float]:
    """Top-1..top-5 accuracy, MRR and the clip count: one row of a results table."""
    return {**top_k_accuracy(ranks), "mrr": mean_reciprocal_rank(ranks), "clips": len(ranks)}


def confusion_matrix(
    truths: Sequence[str], predictions: Sequence[str], labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Counts of (true word, recognised word): rows are truths, columns predictions.

    Args:
        labels: row and column order (default: every word seen, sorted); both axes get all.
    """
    labels = sorted(set(truths) | set(predictions)) if labels is None else list(labels)
    frame = pd.crosstab(pd.Categorical(truths, labels), pd.Categorical(predictions, labels),
                        dropna=False)  # fmt: skip
    frame.index.name, frame.columns.name = "truth", "recognised"
    return frame


# --- phonetic distance ----------------------------------------------------------------------

# espeak-ng symbols that panphon's IPA tables lack, by their nearest panphon segments.
_PANPHON_SPELLING = {"ᵻ": "ɨ", "ɚ": "ə˞", "aɪɚ": "aɪə˞"}


def phone_edit_distance(a: str, b: str) -> float:
    """Phone edits between two pronunciation strings over the longer one's length (0..1)."""
    x, y = _phones(a), _phones(b)
    return Levenshtein.normalized_distance(x, y)


@lru_cache(maxsize=1)
def _panphon_distance():
    import panphon.distance

    return panphon.distance.Distance()


def feature_distance(a: str, b: str) -> float:
    """Articulatory feature edit distance (panphon), per phone of the longer pronunciation.

    Substitution costs the fraction of the 24 phonological features that differ, so
    /s/ -> /z/ is cheap and /s/ -> /a/ dear; insertions and deletions cost 1.
    """
    x, y = _phones(a), _phones(b)
    ipa = ["".join(_PANPHON_SPELLING.get(p, p) for p in s) for s in (x, y)]
    return _panphon_distance().feature_edit_distance(*ipa) / max(len(x), len(y), 1)


def _phones(text: str) -> list[str]:
    return [p for p in text.split() if p != WORD_SEP]


def pair_confusions(
    truths: Sequence[str],
    predictions: Sequence[str],
    pairs: Iterable[tuple[str, str]],
    pronunciations: dict[str, str],
) -> pd.DataFrame:
    """How often each look-alike/sound-alike pair is confused, and how close it sounds.

    Args:
        truths, predictions: true and top-1 words per clip.
        pairs: ``(a, b)`` word pairs, e.g. :func:`phonex.lexicon.load_lasa_pairs`.
        pronunciations: ``{word: phone string}``; pairs with a word outside it are left out.

    Returns:
        one row per pair: clips of a and b, a heard as b and b as a, their combined rate (NaN
        without clips), and the phone and feature distance, most confused first.
    """
    truths = pd.Series(truths, dtype=object)
    predictions = pd.Series(predictions, dtype=object)
    rows = []
    for a, b in pairs:
        if a not in pronunciations or b not in pronunciations:
            continue
        n_a, n_b = int((truths == a).sum()), int((truths == b).sum())
        a_as_b = int(((truths == a) & (predictions == b)).sum())
        b_as_a = int(((truths == b) & (predictions == a)).sum())
        pa, pb = pronunciations[a], pronunciations[b]
        rows.append({
            "a": a, "b": b, "clips_a": n_a, "clips_b": n_b, "a_as_b": a_as_b, "b_as_a": b_as_a,
            "confusion_rate": (a_as_b + b_as_a) / (n_a + n_b) if n_a + n_b else float("nan"),
            "phone_distance": phone_edit_distance(pa, pb),
            "feature_distance": feature_distance(pa, pb),
        })  # fmt: skip
    columns = ["a", "b", "clips_a", "clips_b", "a_as_b", "b_as_a", "confusion_rate",
               "phone_distance", "feature_distance"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["confusion_rate", "feature_distance"], ascending=[False, True],
                             ignore_index=True)  # fmt: skip


# --- alignment against hand labels: FA-Bench's TIMIT protocol --------------------------------

TOLERANCES = (0.010, 0.020, 0.050)


def phone_boundary_errors(reference: Sequence, hypothesis: Sequence) -> np.ndarray:
    """Onset and offset differences of two alignments of the same phone sequence.

    Args:
        reference, hypothesis: intervals (``label``, ``start``, ``end``) of the same phones in
            the same order; empty labels (gaps) are left out of both.

    Returns:
        ``[phones, 2]`` absolute differences in seconds: column 0 onsets, column 1 offsets.

    Raises:
        ValueError: the two do not hold the same phone sequence.
    """
    ref = [i for i in reference if i.label.strip()]
    hyp = [i for i in hypothesis if i.label.strip()]
    if [i.label for i in ref] != [i.label for i in hyp]:
        raise ValueError(f"different phone sequences: {[i.label for i in ref]} against "
                         f"{[i.label for i in hyp]}")  # fmt: skip
    pairs = [(abs(r.start - h.start), abs(r.end - h.end)) for r, h in zip(ref, hyp)]
    return np.array(pairs, dtype=float).reshape(-1, 2)


def boundary_errors(reference: Sequence, hypothesis: Sequence) -> np.ndarray:
    """All onset differences, then all offset differences (s), of :func:`phone_boundary_errors`."""
    errors = phone_boundary_errors(reference, hypothesis)
    return np.concatenate([errors[:, 0], errors[:, 1]])


def boundary_accuracy(errors: Sequence[float], tolerances: Sequence[float] = TOLERANCES) -> dict:
    """Share of boundaries within each tolerance and the mean absolute error, in seconds."""
    errors = np.asarray(errors, dtype=float)
    if errors.size == 0:
        raise ValueError("boundary accuracy of no boundaries")
    return {
        **{
            f"within_{round(1000 * tol)}ms": float(np.mean(errors <= tol + 1e-9))
            for tol in tolerances
        },
        "mean_abs_error_s": float(errors.mean()),
        "boundaries": int(errors.size),
    }


@dataclass
class UtteranceBoundaries:
    """One utterance scored under the TIMIT protocol (:func:`score_alignment`).

    Attributes:
        errors: absolute differences (s) of the reference boundaries paired in order.
        reference_boundaries, hypothesis_boundaries: boundaries between protocol units.
        hits: boundaries matched one-to-one within the match tolerance.
        same_phones: both hold the same phone sequence after the protocol.
    """

    errors: np.ndarray
    reference_boundaries: int
    hypothesis_boundaries: int
    hits: int
    same_phones: bool


def score_alignment(
    reference: Sequence,
    hypothesis: Sequence,
    reference_labels: str = "timit",
    hypothesis_labels: str = "timit",
    tolerance: float = MATCH_TOLERANCE,
) -> UtteranceBoundaries:
    """Score one alignment against hand labels under FA-Bench's TIMIT protocol.

    Both sides become protocol units (:func:`phonex.timit.protocol_units`: TIMIT-39, closures
    merged into their release, silences joined; the hypothesis spans the reference's time, so
    uncovered time is silence). A boundary is the time between two adjacent units, so a phone
    between two phones has two and the utterance's own start and end are none. Boundaries are
    then compared in two ways:

    - **paired in order** (``errors``; forced alignment, where both sides hold the same phones
      and boundary i is compared with boundary i; MFA's evaluation likewise lines phones up by
      sequence alignment before comparing their times): the phone sequences are lined up by edit
      distance and a reference boundary is timed by the hypothesis phone paired with the phone
      after it (its onset), or else with the phone before it (its offset). With equal sequences
      this is index pairing; boundaries between two unpaired phones are left out.
    - **matched one-to-one** (``hits``; segmentation, as in Räsänen et al. 2009): labels are
      ignored, each boundary may hit one of the other side within ``tolerance``
      (:func:`phonex.timit.one_to_one_hits`).

    Args:
        reference, hypothesis: intervals (``label``, ``start``, ``end``) in seconds.
        reference_labels, hypothesis_labels: ``"timit"`` or ``"espeak"``.
        tolerance: window of a one-to-one hit, in seconds.
    """
    ref = protocol_units(reference, reference_labels)
    span = (ref[0].start, ref[-1].end) if ref else None
    hyp = protocol_units(hypothesis, hypothesis_labels, span=span) if hypothesis else []
    ref_times, hyp_times = timit.unit_boundaries(ref), timit.unit_boundaries(hyp)
    same = [u.label for u in ref if u.label != SILENCE] == [
        u.label for u in hyp if u.label != SILENCE
    ]
    return UtteranceBoundaries(
        errors=np.array(timit.paired_errors(ref, hyp, timit.paired_units(ref, hyp)), dtype=float),
        reference_boundaries=len(ref_times),
        hypothesis_boundaries=len(hyp_times),
        hits=timit.one_to_one_hits(ref_times, hyp_times, tolerance),
        same_phones=same,
    )


def summarize_alignments(
    scores: Sequence[UtteranceBoundaries], tolerances: Sequence[float] = TOLERANCES
) -> dict[str, float | int | None]:
    """Corpus totals of :func:`score_alignment` results: the FA-Bench TIMIT table row.

    Returns:
        ``within_10ms``/``within_20ms``/``within_50ms`` and ``mean_abs_error_s`` over the paired
        boundaries, ``precision``/``recall``/``f1``/``r_value`` from the one-to-one hits at
        the scores' tolerance, and the counts behind them (``paired_boundaries`` over
        ``reference_boundaries`` is the share that could be paired at all). Values without
        data are ``None``, so the result is strict JSON.
    """
    errors = np.concatenate([s.errors for s in scores]) if scores else np.array([])
    reference = sum(s.reference_boundaries for s in scores)
    hypothesis = sum(s.hypothesis_boundaries for s in scores)
    hits = sum(s.hits for s in scores)
    empty = {**{f"within_{round(1000 * t)}ms": None for t in tolerances}, "mean_abs_error_s": None}
    accuracy = boundary_accuracy(errors, tolerances) if errors.size else empty
    return {
        **{k: v for k, v in accuracy.items() if k != "boundaries"},
        **timit.segmentation_scores(hits, reference, hypothesis),
        "utterances": len(scores),
        "same_phones": sum(s.same_phones for s in scores),
        "reference_boundaries": reference,
        "paired_boundaries": int(errors.size),
        "hypothesis_boundaries": hypothesis,
        "hits": hits,
    }


def timit_error_rate(
    references: Sequence[Sequence[str]],
    hypotheses: Sequence[Sequence[str]],
    hypothesis_labels: str = "espeak",
) -> ErrorRate:
    """Phone error rate on TIMIT-39 under the same protocol, silences dropped.

    Args:
        references: TIMIT-61 labels per utterance (a ``.phn`` file's, in order).
        hypotheses: recognised phones per utterance, ``"espeak"`` IPA or ``"timit"`` labels.
        hypothesis_labels: label set of the hypotheses.
    """
    refs = [" ".join(protocol_phones(r, "timit")) for r in references]
    hyps = [" ".join(protocol_phones(h, hypothesis_labels)) for h in hypotheses]
    return error_rate(refs, hyps)


@dataclass
class MatchedBoundaries:
    """Onset and offset errors of the phones two alignments agree on, once both are protocol
    units (:func:`phonex.timit.protocol_units`).

    Attributes:
        onset_error, offset_error: absolute differences (s) over matched phones; a boundary inside
            a unit that maps to two phones (espeak-ng ``iə`` -> ``iy ah``) is unknown, left out.
        matched: reference phones paired by the edit alignment with a phone of the same label.
        reference_phones, hypothesis_phones: phones (not silences) on each side.
    """

    onset_error: np.ndarray
    offset_error: np.ndarray
    matched: int
    reference_phones: int
    hypothesis_phones: int


def matched_boundary_errors(
    reference: Sequence,
    hypothesis: Sequence,
    reference_labels: str = "timit",
    hypothesis_labels: str = "espeak",
) -> MatchedBoundaries:
    """Per-phone onset and offset errors of the phones two alignments share.

    The phones are paired as in :func:`score_alignment` (edit alignment of the protocol labels,
    same label only); each paired phone's own start and end are compared, so a boundary between
    two paired phones counts twice. Use :func:`score_alignment` for the protocol's table row.

    Args:
        reference, hypothesis: intervals (``label``, ``start``, ``end``) in seconds.
        reference_labels, hypothesis_labels: ``"timit"`` or ``"espeak"``.

    Raises:
        phonex.phonesets.UnknownPhoneError: a label outside its set.
    """
    ref = protocol_units(reference, reference_labels)
    hyp = protocol_units(hypothesis, hypothesis_labels)
    pairs = timit.paired_units(ref, hyp)
    onsets = [abs(ref[a].start - hyp[b].start) for a, b in pairs.items()
              if ref[a].start is not None and hyp[b].start is not None]  # fmt: skip
    offsets = [abs(ref[a].end - hyp[b].end) for a, b in pairs.items()
               if ref[a].end is not None and hyp[b].end is not None]  # fmt: skip
    count = [sum(u.label != SILENCE for u in units) for units in (ref, hyp)]
    return MatchedBoundaries(np.array(onsets), np.array(offsets), len(pairs), *count)
