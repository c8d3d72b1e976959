"""Reading CTC output: greedy decoding and error rates.

Error rates are corpus-level (all edits over all reference tokens) through jiwer, with phones or
characters as the "words" jiwer counts; the word separator ``|`` is not a phone and is left out
of the phone error rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
import torch

from phonex.phonemes import WORD_SEP, Vocabulary


def greedy_decode(
    emissions: torch.Tensor, vocab: Vocabulary, lengths: torch.Tensor | None = None
) -> list[str]:
    """Best path: argmax per frame, merge repeats, drop blanks.

    Args:
        emissions: [batch, frames, vocab] logits or log-probabilities.
        vocab: the model's output tokens.
        lengths: [batch] valid frames per row (default: all).

    Returns:
        one space-separated token string per row.
    """
    best = emissions.argmax(dim=-1)  # [batch, frames]
    if lengths is None:
        lengths = torch.full((best.shape[0],), best.shape[1])
    out = []
    for row, n in zip(best, lengths.tolist()):
        ids = torch.unique_consecutive(row[:n])
        out.append(vocab.decode(i for i in ids.tolist() if i != vocab.blank_id))
    return out


@dataclass
class ErrorRate:
    """Edits against references, counted over tokens (phones or characters)."""

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
    """Token error rate of space-separated token strings (PER for phones, CER for characters).

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
