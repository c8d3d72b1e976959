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
