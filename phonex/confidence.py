"""Per-phone confidence of a forced alignment: a goodness-of-pronunciation (GOP) score.

The score is the log posterior ratio of DNN-era GOP (Hu et al. 2015, after Witt & Young 2000)
on the phone's own CTC frames, the segments of the forced path as in the self-alignment GOP of
CTC models (GOP-SA, Cao et al. 2025)::

    gop(p) = mean_t log P(p | x_t) - max_{q != p} mean_t log P(q | x_t)

over the frames ``t`` where the forced path emits ``p``, with ``q`` every other *phone* of the
model. Positive: the frames favour the expected phone, by that many nats on average; negative:
another phone fits them better (mispronounced, misread, or misaligned). The blank is no
competitor: every frame of a peaky CTC model is mostly blank, and a difference of two phones'
log posteriors is the same whether or not the blank's share is renormalised away, so the
score says *which phone*, not *whether a phone*. (The alignment's ``score``, the mean
posterior of the phone's frames, says the latter.)

Why this one and not the segmentation-free GOP of CTC models (GOP-AF/SF, Cao et al. 2025, a CTC
forward pass per competing phone): it costs one pass over the frames already aligned, so every
alignment carries it, and it reads the same segments the boundaries come from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from phonex.align import TokenSpan, WordSpan
from phonex.intervals import Interval
from phonex.phonemes import PAD, UNK, WORD_SEP

TIER = "confidence"  # the TextGrid tier of the phones' scores, beside ``phones``


def phone_classes(tokens: Sequence[str], classes: int | None = None) -> torch.Tensor:
    """``[classes]`` bool: which output classes are phones (or characters) that can compete.

    Blank, ``[UNK]``, the word separator, ``<s>``-style specials and any extra class past the
    vocabulary (the wildcard of :func:`phonex.align.with_wildcard`) are not.

    Args:
        tokens: the vocabulary's tokens, by id.
        classes: the emission matrix's width (default: the vocabulary's size).
    """
    special = {PAD, UNK, WORD_SEP, "<pad>", "<unk>"}
    mask = torch.zeros(classes or len(tokens), dtype=torch.bool)
    for i, token in enumerate(tokens):
        bracketed = token[:1] + token[-1:] in ("<>", "[]")
        mask[i] = token not in special and not bracketed
    return mask


def span_gop(log_probs: torch.Tensor, span: TokenSpan, target: int,
             competitors: torch.Tensor) -> float | None:  # fmt: skip
    """The GOP of one aligned token (module docstring), or None when it is no phone.

    Args:
        log_probs: ``[frames, classes]`` log posteriors.
        span: the token's own frames ``[start, end)`` on the forced path.
        target: the class the path emits there.
        competitors: ``[classes]`` bool, :func:`phone_classes`.
    """
    if not bool(competitors[target]) or span.end <= span.start:
        return None
    means = log_probs[span.start : span.end].double().mean(0)
    rivals = competitors.clone()
    rivals[target] = False
    if not bool(rivals.any()):
        return None
    return float(means[target] - means[rivals].max())


def token_gops(log_probs: torch.Tensor, spans: Sequence[TokenSpan], targets: Sequence[int],
               tokens: Sequence[str]) -> list[float | None]:  # fmt: skip
    """The GOP of each aligned token (None for word separators and wildcards).

    Args:
        log_probs: ``[frames, classes]``, the matrix the path was found in.
        spans: :func:`phonex.align.token_spans` of the path, before any extension.
        targets: the class of each span.
        tokens: the vocabulary's tokens, by id.
    """
    competitors = phone_classes(tokens, log_probs.shape[1])
    return [span_gop(log_probs, s, t, competitors) for s, t in zip(spans, targets)]


def with_gops(words: Sequence[WordSpan], spans: Sequence[TokenSpan],
              gops: Sequence[float | None]) -> list[WordSpan]:  # fmt: skip
    """The words with the GOP of each of their phones (``WordSpan.gop``).

    Args:
        words: :func:`phonex.align.word_spans` of ``spans``.
        spans, gops: every aligned token and its score, separators included.
    """
    phone_gops = [g for s, g in zip(spans, gops) if s.token != WORD_SEP]
    out, i = [], 0
    for word in words:
        n = len(word.phones)
        out.append(WordSpan(word.word, word.start, word.end, word.phones,
                            tuple(phone_gops[i : i + n])))  # fmt: skip
        i += n
    if i != len(phone_gops):
        raise ValueError(f"{len(phone_gops)} phone scores for {i} aligned phones")
    return out


def confidence_tier(words: Sequence[WordSpan]) -> list[Interval]:
    """The phones' intervals labelled with their GOP (two decimals; empty when there is none)."""
    out = []
    for word in words:
        gops = word.gop or (None,) * len(word.phones)
        for (_, start, end, _), gop in zip(word.phones, gops):
            out.append(Interval("" if gop is None else f"{gop:.2f}", start, end))
    return out
