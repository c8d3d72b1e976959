"""Reading CTC output: greedy decoding, lexicon scoring and fuzzy matching.

Lexicon scoring asks, for every word of a lexicon given at run time, how likely its pronunciation
is under a clip's emissions: ``log P(phones | audio)``, summed over all CTC alignments (the CTC
forward algorithm, the same quantity ``ctc_loss`` negates). The best-scoring words are the
recognition result, so a new drug name needs a pronunciation, not retraining. The forward pass
runs over the whole lexicon and several clips at once, in the probability domain with the
per-frame rescaling of HMM textbooks (Rabiner 1989), which needs no ``logsumexp``.

The seed project's baseline is kept for comparison: decode a transcript, then find the closest
lexicon entry by edit distance (:func:`fuzzy_rank`, rapidfuzz).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from phonex.lexicon import LexiconError
from phonex.phonemes import Vocabulary, brief

# Frame probabilities are floored so that a word the audio rules out still gets a finite,
# very low score (about -69 nats per frame) instead of underflowing the whole row to zero.
_PROB_FLOOR = 1e-30


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


# --- lexicon scoring ------------------------------------------------------------------------


@dataclass
class CompiledLexicon:
    """A lexicon as CTC label sequences of one model's vocabulary.

    A word may have several pronunciations (variants); its score is the best of theirs.

    Attributes:
        words: the entries, in input order.
        variants: ``[M]`` token strings, e.g. ``"n oʊ v ə | l ɔ ɡ"``.
        variant_word: ``[M]`` index into ``words`` of each variant.
        labels: ``[M, S]`` token ids, padded with the blank id.
        label_lengths: ``[M]`` tokens per variant.
        blank: the blank id.
    """

    words: list[str]
    variants: list[str]
    variant_word: torch.Tensor
    labels: torch.Tensor
    label_lengths: torch.Tensor
    blank: int

    def __len__(self) -> int:
        return len(self.words)

    def pronunciations(self) -> dict[str, list[str]]:
        """``{word: [variant, ...]}``."""
        out: dict[str, list[str]] = {w: [] for w in self.words}
        for variant, w in zip(self.variants, self.variant_word.tolist()):
            out[self.words[w]].append(variant)
        return out

    def frames_needed(self) -> torch.Tensor:
        """``[M]`` the fewest frames each variant fits in: a frame per token, and a blank
        between two equal tokens (CTC would merge them otherwise)."""
        labels, lengths = self.labels, self.label_lengths
        same = labels[:, 1:] == labels[:, :-1]
        inside = torch.arange(1, labels.shape[1]) < lengths[:, None]
        return lengths + (same & inside).sum(1)

    def shortest(self) -> tuple[str, int]:
        """The word that fits in the fewest frames, and that number of frames."""
        needed = self.frames_needed()
        best = int(needed.argmin())
        return self.words[int(self.variant_word[best])], int(needed[best])


def compile_lexicon(
    pronunciations: Mapping[str, Sequence[str]],
    vocab: Vocabulary,
    on_error: str = "skip",
    problems: Mapping[str, str] | None = None,
) -> CompiledLexicon:
    """Turn ``{word: [token string, ...]}`` into label tensors for :func:`ctc_log_likelihoods`.

    Args:
        pronunciations: one or more space-separated token strings per word (phones, or
            characters with ``|`` between words). Repeated variants are merged.
        vocab: the model's output tokens.
        on_error: a word none of whose variants the vocabulary can spell (or with no variant at
            all): ``"skip"`` (left out, with one warning naming every such word) or ``"raise"``.
        problems: why a word has no variant (e.g. from :func:`phonex.lexicon.pronounce`), for
            the message; a word without variants and without a reason is called ``empty``.

    Raises:
        LexiconError: nothing left to score, or an unusable word with ``on_error="raise"``.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
    words, variants, owner, unusable = [], [], [], {}
    for word, prons in pronunciations.items():
        usable = [p for p in dict.fromkeys(prons) if p.split() and _spellable(p, vocab)]
        if not usable:
            missing = sorted({t for p in prons for t in p.split() if t not in vocab.index})
            why = (problems or {}).get(word, "empty")
            unusable[word] = f"{' '.join(missing[:10])} not in the model" if missing else why
            continue
        words.append(word)
        variants += usable
        owner += [len(words) - 1] * len(usable)
    if unusable:
        listed = "; ".join(f"{brief(w)}: {why}" for w, why in list(unusable.items())[:10])
        listed += f"; and {len(unusable) - 10} more" if len(unusable) > 10 else ""
        if on_error == "raise":
            raise LexiconError(f"{len(unusable)} lexicon word(s) cannot be scored: {listed}")
        warnings.warn(f"skipping {len(unusable)} lexicon word(s): {listed}", stacklevel=2)
    if not words:
        raise LexiconError("the lexicon has no word this model can score")
    ids = [vocab.encode(v) for v in variants]
    labels = torch.full((len(ids), max(map(len, ids))), vocab.blank_id, dtype=torch.long)
    for i, seq in enumerate(ids):
        labels[i, : len(seq)] = torch.tensor(seq)
    return CompiledLexicon(
        words, variants, torch.tensor(owner), labels,
        torch.tensor([len(s) for s in ids]), vocab.blank_id,
    )  # fmt: skip


def _spellable(tokens: str, vocab: Vocabulary) -> bool:
    return all(t in vocab.index and t != vocab.pad for t in tokens.split())


@torch.no_grad()
def ctc_log_likelihoods(
    log_probs: torch.Tensor,
    lexicon: CompiledLexicon,
    lengths: torch.Tensor | None = None,
    clips_per_chunk: int = 32,
    length_groups: int = 4,
) -> torch.Tensor:
    """``log P(word | clip)`` of every lexicon word, summed over CTC alignments (nats).

    Equal to ``-ctc_loss(reduction="none")`` of each pronunciation, maximised over a word's
    variants, but computed for all words and several clips at once. Clips are taken longest
    first, so a chunk stops at its longest clip and finished clips drop out; pronunciations are
    grouped by length, so short words do not pay for the longest one.

    Args:
        log_probs: ``[clips, frames, vocab]`` log-softmax output.
        lexicon: from :func:`compile_lexicon`, in the same vocabulary.
        lengths: ``[clips]`` valid frames (default: all).
        clips_per_chunk: clips scored together (memory: chunk x variants x 2 x tokens floats).
        length_groups: pronunciation groups of similar length.

    Returns:
        ``[clips, words]`` scores; ``-inf`` for a word none of whose pronunciations fits in
        the clip (:meth:`CompiledLexicon.frames_needed`), never NaN.
    """
    clips, frames, vocab_size = log_probs.shape
    lengths = torch.full((clips,), frames) if lengths is None else lengths.cpu()
    groups = _label_groups(lexicon, length_groups, zero_column=vocab_size)
    variant_scores = torch.empty(clips, len(lexicon.variants))
    order = torch.argsort(lengths, descending=True, stable=True)
    for start in range(0, clips, clips_per_chunk):
        idx = order[start : start + clips_per_chunk]
        probs = log_probs[idx, : int(lengths[idx[0]])].float().exp().clamp_min(_PROB_FLOOR)
        probs = torch.cat([probs, probs.new_zeros(*probs.shape[:2], 1)], dim=-1)
        for variants, ext, skip, last in groups:
            variant_scores[idx[:, None], variants] = _forward(probs, lengths[idx], ext, skip, last)
    fits = lexicon.frames_needed()[None, :] <= lengths[:, None]
    variant_scores = variant_scores.nan_to_num(-math.inf).masked_fill(~fits, -math.inf)
    words = torch.full((clips, len(lexicon.words)), -math.inf)
    index = lexicon.variant_word.expand(clips, -1)
    return words.scatter_reduce(1, index, variant_scores, reduce="amax")


def _label_groups(lexicon: CompiledLexicon, n_groups: int, zero_column: int) -> list[tuple]:
    """Pronunciations in groups of similar length, each as CTC state tensors.

    Per group: variant indices, ``ext`` [variants, states] (blank, l1, blank, ..., blank; states
    past a variant's end read ``zero_column``, an all-zero emission, so nothing flows there),
    ``skip`` (1 where s-2 -> s is allowed: into a label unlike the one before it) and ``last``
    (the final blank; ``last - 1`` is the final label).
    """
    order = torch.argsort(lexicon.label_lengths, stable=True)
    groups = []
    for variants in torch.tensor_split(order, min(n_groups, len(order))):
        lengths = lexicon.label_lengths[variants]
        labels = lexicon.labels[variants, : int(lengths.max())]
        states = 2 * labels.shape[1] + 1
        ext = torch.full((len(variants), states), lexicon.blank, dtype=torch.long)
        ext[:, 1::2] = labels
        ext[torch.arange(states) >= (2 * lengths + 1)[:, None]] = zero_column
        skip = torch.zeros(len(variants), states)
        skip[:, 3::2] = (labels[:, 1:] != labels[:, :-1]).float()
        groups.append((variants, ext, skip, 2 * lengths))
    return groups


def _forward(probs, lengths, ext, skip, last) -> torch.Tensor:
    """Scaled CTC forward pass over ``[clips, frames, vocab + 1]`` emission probabilities.

    Clips are sorted longest first, so the clips still running at frame t are a prefix. Each
    frame's forward variables are divided by their sum (whose log is kept), so nothing
    underflows. Returns ``[clips, variants]`` log P.
    """
    alpha = probs[:, 0][:, ext]  # [clips, variants, states]
    alpha[..., 2:] = 0.0  # a path starts with a blank or the first label
    total = alpha.sum(-1, keepdim=True)
    alpha /= total
    log_scale = total.squeeze(-1).log()
    skip = skip[:, 2:]
    for t in range(1, probs.shape[1]):
        n = int((lengths > t).sum())
        prev = alpha[:n]
        moved = prev.clone()
        moved[..., 1:] += prev[..., :-1]
        moved[..., 2:] += prev[..., :-2] * skip
        moved *= probs[:n, t][:, ext]
        total = moved.sum(-1, keepdim=True)
        alpha[:n] = moved / total
        log_scale[:n] += total.squeeze(-1).log()
    end = alpha.gather(2, last.expand(len(alpha), -1)[..., None]).squeeze(-1)
    end += alpha.gather(2, (last - 1).expand(len(alpha), -1)[..., None]).squeeze(-1)
    return log_scale + end.log()


# --- ranking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A lexicon word and its score: CTC log-likelihood in nats, or fuzzy similarity in [0, 1]."""

    word: str
    score: float


def top_candidates(
    scores: torch.Tensor, words: Sequence[str], top: int = 5
) -> list[list[Candidate]]:
    """Rank each row of ``[clips, words]`` scores, best first (ties keep lexicon order)."""
    k = min(top, len(words))
    order = torch.sort(scores, dim=-1, descending=True, stable=True)
    return [
        [Candidate(words[i], float(s)) for i, s in zip(idx[:k].tolist(), vals[:k].tolist())]
        for idx, vals in zip(order.indices, order.values)
    ]


def fuzzy_rank(
    queries: Sequence[str],
    pronunciations: Mapping[str, Sequence[str]],
    top: int = 5,
    tokens: bool = True,
) -> list[list[Candidate]]:
    """The seed project's baseline: the lexicon entries closest to each decoded transcript.

    Args:
        queries: decoded transcripts (phone strings, or text from a seq2seq model).
        pronunciations: ``{word: [variant, ...]}`` in the same form as the queries.
        top: candidates per query.
        tokens: compare space-separated tokens (phones; ``|`` ignored) rather than characters.

    Returns:
        per query, the best ``top`` words by normalised Levenshtein similarity (1 = identical).
    """

    def prepare(text: str):
        return [t for t in text.split() if t != "|"] if tokens else " ".join(text.lower().split())

    choices, owners = [], []
    for word, prons in pronunciations.items():
        for p in dict.fromkeys(prons):
            choices.append(prepare(p))
            owners.append(word)
    out = []
    for query in queries:
        hits = process.extract(
            prepare(query), choices, scorer=Levenshtein.normalized_similarity,
            limit=None, processor=None,
        )  # fmt: skip
        best: dict[str, float] = {}
        for _, score, i in sorted(hits, key=lambda h: (-h[1], h[2])):
            best.setdefault(owners[i], score)
        out.append([Candidate(w, s) for w, s in list(best.items())[:top]])
    return out
