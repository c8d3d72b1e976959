"""How good is a result: error rates (jiwer), top-k accuracy, confusions, phonetic distance.

Error rates are corpus-level (all edits over all reference tokens) through jiwer, with phones or
characters as the "words" jiwer counts; the word separator ``|`` is not a phone and is left out
of the phone error rate. Phonetic distance between two pronunciations is panphon's articulatory
feature edit distance (substituting /p/ for /b/ costs less than /p/ for /a/), next to the plain
phone edit distance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jiwer
import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from phonex.phonemes import WORD_SEP
from phonex.phonesets import arpabet_to_39, ipa_to_39

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


# --- alignment boundaries -------------------------------------------------------------------

TOLERANCES = (0.010, 0.020, 0.050)


def boundary_errors(reference, hypothesis) -> np.ndarray:
    """Absolute differences (s) between matching phone onsets and offsets of two alignments.

    Args:
        reference, hypothesis: the same phones in the same order, as intervals (``label``,
            ``start``, ``end``); labels are compared after dropping stress and length marks.

    Raises:
        ValueError: the two do not hold the same phone sequence.
    """
    ref = [i for i in reference if i.label.strip()]
    hyp = [i for i in hypothesis if i.label.strip()]
    if [i.label for i in ref] != [i.label for i in hyp]:
        raise ValueError(f"different phone sequences: {[i.label for i in ref]} against "
                         f"{[i.label for i in hyp]}")  # fmt: skip
    return np.array([abs(r.start - h.start) for r, h in zip(ref, hyp)]
                    + [abs(r.end - h.end) for r, h in zip(ref, hyp)])  # fmt: skip


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


# --- boundaries on a common phone set -------------------------------------------------------

# TIMIT closures (TIMIT-61's bcl..kcl, the reduced set's cl and vcl) and pauses.
_CLOSURES = frozenset(("cl", "vcl", "bcl", "dcl", "gcl", "pcl", "tcl", "kcl"))
_PAUSES = frozenset(("sil", "sp", "pau", "h#", "epi"))
_RELEASES = frozenset(("b", "d", "g", "p", "t", "k", "ch", "jh"))
LABEL_SETS = ("timit", "espeak")


@dataclass
class MatchedBoundaries:
    """Boundary errors of the phones two alignments agree on, once both are in TIMIT-39.

    Attributes:
        onset_error, offset_error: absolute differences (s) over matched phones; a boundary inside
            a unit that maps to two phones (espeak-ng ``iə`` -> ``iy ah``) is unknown, left out.
        matched: reference phones paired by the edit alignment with a phone of the same label.
        reference_phones, hypothesis_phones: phones on each side after mapping.
    """

    onset_error: np.ndarray
    offset_error: np.ndarray
    matched: int
    reference_phones: int
    hypothesis_phones: int


def _timit39_phones(
    intervals: Sequence, label_set: str
) -> list[tuple[str, float | None, float | None]]:
    """``(TIMIT-39 label, start, end)`` per phone; None is a boundary the labels do not give."""
    if label_set not in LABEL_SETS:
        raise ValueError(f"label set {label_set!r}: expected one of {LABEL_SETS}")
    items = [i for i in intervals if i.label.strip() and i.label.strip() != WORD_SEP]
    out: list[tuple[str, float | None, float | None]] = []
    closure_start = None
    for k, item in enumerate(items):
        label = item.label.strip()
        following = items[k + 1].label.strip() if k + 1 < len(items) else ""
        if label_set == "timit":
            label = label.lower()
            if label in _PAUSES or label in _CLOSURES:
                # espeak-ng's stop spans its closure and burst, so a closure joins the stop (or
                # affricate) after it; an unreleased closure says no stop, and is dropped
                if label in _CLOSURES and following.lower() in _RELEASES:
                    closure_start = item.start
                continue
            phones = arpabet_to_39([label])  # TIMIT's own labels fold too (q: none)
        else:
            # espeak-ng's oː is ao before ɹ: ipa_to_39 reads the next phone, then drop its part
            phones = ipa_to_39([label, following], convention="timit")
            phones = phones[: len(phones) - len(ipa_to_39([following], convention="timit"))]
        start = item.start if closure_start is None else closure_start
        closure_start = None
        for n, phone in enumerate(phones):
            out.append((phone, start if n == 0 else None,
                        item.end if n == len(phones) - 1 else None))  # fmt: skip
    return out


def matched_boundary_errors(
    reference: Sequence,
    hypothesis: Sequence,
    reference_labels: str = "timit",
    hypothesis_labels: str = "espeak",
) -> MatchedBoundaries:
    """Boundary errors of the phones two alignments share when their phone sequences differ.

    Both sides are mapped to TIMIT-39 (:mod:`phonex.phonesets`): pauses dropped, a TIMIT closure
    merged into the stop after it. The two label sequences are aligned by edit distance, and
    only phones paired with the same label count: substituted, inserted and deleted phones have
    no counterpart to time against.

    Args:
        reference, hypothesis: intervals (``label``, ``start``, ``end``) in seconds.
        reference_labels, hypothesis_labels: ``"timit"`` (TIMIT-61, its reduced cl/vcl/sil
            set, or ARPAbet with stress digits) or ``"espeak"`` (espeak-ng IPA).

    Raises:
        phonex.phonesets.UnknownPhoneError: a label outside its set.
    """
    ref = _timit39_phones(reference, reference_labels)
    hyp = _timit39_phones(hypothesis, hypothesis_labels)
    onsets, offsets, matched = [], [], 0
    for op in Levenshtein.opcodes([p[0] for p in ref], [p[0] for p in hyp]):
        if op.tag != "equal":
            continue
        for (_, r_start, r_end), (_, h_start, h_end) in zip(
            ref[op.src_start : op.src_end], hyp[op.dest_start : op.dest_end]
        ):
            matched += 1
            if r_start is not None and h_start is not None:
                onsets.append(abs(r_start - h_start))
            if r_end is not None and h_end is not None:
                offsets.append(abs(r_end - h_end))
    return MatchedBoundaries(np.array(onsets), np.array(offsets), matched, len(ref), len(hyp))
