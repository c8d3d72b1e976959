"""Forced alignment: where each token of a known transcript sits in a clip's emissions.

CTC forced alignment is a Viterbi search over the transcript's CTC states (blank, t1, blank, t2,
..., blank): the single most likely frame path that spells the transcript. phonex uses
``torchaudio.functional.forced_align`` where torchaudio imports, and otherwise its own:
:func:`viterbi` (one clip, compiled with numba, for the CPU) or :func:`viterbi_batch` (a batch,
in torch, on the CPU or CUDA). All three break ties the same way, torchaudio's: a skip over a
blank only when strictly better than both other moves, a step when strictly better than staying,
and the path ends on the last token unless the final blank is strictly better. So they give
identical paths, which the tests check.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import torch

from phonex.intervals import AlignmentError, Interval
from phonex.phonemes import WORD_SEP


def _check_lengths(frames: int, targets: Sequence[int]) -> None:
    repeats = sum(1 for a, b in itertools.pairwise(targets) if a == b)
    if not targets:
        raise AlignmentError("nothing to align: the transcript has no tokens")
    if frames < len(targets) + repeats:
        raise AlignmentError(
            f"{len(targets)} tokens ({repeats} repeated, each needing a blank between) do not fit "
            f"in {frames} frames: the clip is too short for this transcript"
        )


@numba.njit(cache=True)
def _viterbi_numba(log_probs, targets, blank):  # pragma: no cover - compiled
    frames, n_states = log_probs.shape[0], 2 * len(targets) + 1
    neg_inf = -np.inf
    prev = np.full(n_states, neg_inf, dtype=np.float64)
    cur = np.full(n_states, neg_inf, dtype=np.float64)
    back = np.zeros((frames, n_states), dtype=np.int8)
    prev[0] = log_probs[0, blank]
    if n_states > 1:
        prev[1] = log_probs[0, targets[0]]
    for t in range(1, frames):
        for s in range(n_states):
            label = blank if s % 2 == 0 else targets[s // 2]
            x0 = prev[s]
            x1 = prev[s - 1] if s > 0 else neg_inf
            x2 = neg_inf
            if s % 2 == 1 and s > 1 and targets[s // 2] != targets[s // 2 - 1]:
                x2 = prev[s - 2]
            if x2 > x1 and x2 > x0:
                best, move = x2, 2
            elif x1 > x0:
                best, move = x1, 1
            else:
                best, move = x0, 0
            cur[s] = best + log_probs[t, label]
            back[t, s] = move
        prev, cur = cur, prev
    state = (
        n_states - 1 if n_states == 1 or prev[n_states - 1] > prev[n_states - 2] else n_states - 2
    )
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = blank if state % 2 == 0 else targets[state // 2]
        state -= back[t, state]
    return path


def viterbi(
    log_probs: torch.Tensor, targets: Sequence[int], blank: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best CTC path of one clip (compiled loop; CPU).

    Args:
        log_probs: ``[frames, classes]`` log-softmax emissions.
        targets: token ids of the transcript (no blanks).
        blank: the blank id.

    Returns:
        ``path`` ``[frames]`` (the token id emitted at each frame, blank included) and
        ``scores`` ``[frames]`` (its log-probability).
    """
    targets = [int(t) for t in targets]
    _check_lengths(log_probs.shape[0], targets)
    emissions = log_probs.detach().float().cpu().numpy()
    path = torch.from_numpy(_viterbi_numba(emissions, np.asarray(targets, np.int64), blank))
    return path, log_probs.detach().cpu()[torch.arange(len(path)), path]


@torch.no_grad()
def viterbi_batch(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best CTC paths of a padded batch, in torch (CPU or CUDA), one frame at a time.

    Args:
        log_probs: ``[batch, frames, classes]``.
        targets: ``[batch, tokens]`` padded token ids.
        input_lengths, target_lengths: ``[batch]`` valid frames and tokens.
        blank: the blank id.

    Returns:
        ``paths`` and ``scores`` ``[batch, frames]``; frames past a clip's end hold the blank
        and score 0.
    """
    batch, frames, _ = log_probs.shape
    device = log_probs.device
    for b in range(batch):
        _check_lengths(int(input_lengths[b]), targets[b, : int(target_lengths[b])].tolist())
    n_states = 2 * targets.shape[1] + 1
    ext = torch.full((batch, n_states), blank, dtype=torch.long, device=device)
    ext[:, 1::2] = targets
    skip = torch.zeros(batch, n_states, dtype=torch.bool, device=device)
    skip[:, 3::2] = targets[:, 1:] != targets[:, :-1]
    emit = log_probs.double().gather(2, ext[:, None, :].expand(-1, frames, -1))  # [B, T, S]
    # alpha lives in a buffer with two -inf columns in front, so the moves are views
    buffer = torch.full((batch, n_states + 2), -math.inf, dtype=torch.float64, device=device)
    buffer[:, 2:4] = emit[:, 0, :2]
    back = torch.zeros(batch, frames, n_states, dtype=torch.int8, device=device)
    neg_inf = torch.tensor(-math.inf, dtype=torch.float64, device=device)
    input_lengths = input_lengths.to(device)
    for t in range(1, frames):
        x0, x1 = buffer[:, 2:], buffer[:, 1:-1]
        x2 = torch.where(skip, buffer[:, :-2], neg_inf)
        take2 = (x2 > x1) & (x2 > x0)
        take1 = ~take2 & (x1 > x0)
        best = torch.where(take2, x2, torch.where(take1, x1, x0)) + emit[:, t]
        active = (t < input_lengths)[:, None]  # finished clips keep their last state
        buffer[:, 2:] = torch.where(active, best, x0)
        back[:, t] = torch.where(active, take2.to(torch.int8) * 2 + take1.to(torch.int8), 0)
    last = 2 * target_lengths.to(device)  # final blank; last - 1 is the last token
    alpha = buffer[:, 2:]
    end_blank = alpha.gather(1, last[:, None]).squeeze(1)
    end_token = alpha.gather(1, (last - 1)[:, None]).squeeze(1)
    state = torch.where(end_blank > end_token, last, last - 1)
    paths = torch.full((batch, frames), blank, dtype=torch.long, device=device)
    rows = torch.arange(batch, device=device)
    for t in range(frames - 1, -1, -1):
        active = t < input_lengths
        paths[:, t] = torch.where(active, ext[rows, state], blank)
        state = state - torch.where(active, back[rows, t, state].long(), 0)
    scores = log_probs.gather(2, paths[..., None]).squeeze(-1)
    scores = torch.where(torch.arange(frames, device=device) < input_lengths[:, None], scores, 0.0)
    return paths, scores


@lru_cache(maxsize=1)
def _torchaudio_forced_align():
    """torchaudio's aligner, or None where torchaudio does not import (CPU torch + CUDA wheel)."""
    try:
        from torchaudio.functional import forced_align
    except Exception:  # noqa: BLE001 - ImportError, OSError or RuntimeError from a broken wheel
        return None
    return forced_align


def forced_align(
    log_probs: torch.Tensor, targets: Sequence[int], blank: int = 0, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best CTC path of one clip: ``(path [frames], scores [frames])``, see :func:`viterbi`.

    Args:
        backend: ``"torchaudio"``, ``"numba"`` (:func:`viterbi`), ``"torch"``
            (:func:`viterbi_batch`) or ``"auto"`` (torchaudio where it imports, else numba).
    """
    if backend == "auto":
        backend = "torchaudio" if _torchaudio_forced_align() is not None else "numba"
    if backend == "numba":
        return viterbi(log_probs, targets, blank)
    targets = [int(t) for t in targets]
    _check_lengths(log_probs.shape[0], targets)
    target_tensor = torch.tensor([targets], device=log_probs.device)
    lengths = (torch.tensor([log_probs.shape[0]]), torch.tensor([len(targets)]))
    if backend == "torch":
        paths, scores = viterbi_batch(log_probs[None], target_tensor, *lengths, blank)
    elif backend == "torchaudio":
        if _torchaudio_forced_align() is None:
            raise RuntimeError("torchaudio does not import here; use backend='numba' or 'torch'")
        paths, scores = _torchaudio_forced_align()(log_probs[None].float(), target_tensor.int(),
                                                   blank=blank)  # fmt: skip
    else:
        raise ValueError(f"backend {backend!r}: expected auto, torchaudio, numba or torch")
    return paths[0].long(), scores[0]


# --- spans ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSpan:
    """One aligned token: frames ``[start, end)`` and its mean frame probability."""

    token: str
    start: int
    end: int
    score: float


def token_spans(
    path: torch.Tensor, scores: torch.Tensor, tokens: Sequence[str], blank: int = 0
) -> list[TokenSpan]:
    """The frames of each transcript token in a forced path (repeats are split by a blank).

    Args:
        path, scores: from :func:`forced_align`.
        tokens: the transcript's token strings, in order (one per target id).
    """
    ids, runs, t = path.tolist(), [], 0
    while t < len(ids):
        start = t
        while t < len(ids) and ids[t] == ids[start]:
            t += 1
        if ids[start] != blank:
            runs.append((start, t))
    if len(runs) != len(tokens):
        raise AlignmentError(f"the path spells {len(runs)} tokens, the transcript {len(tokens)}")
    return [
        TokenSpan(token, start, end, float(scores[start:end].float().exp().mean()))
        for token, (start, end) in zip(tokens, runs)
    ]


@dataclass(frozen=True)
class WordSpan:
    """An aligned word with its phone (or character) spans; times in seconds."""

    word: str
    start: float
    end: float
    phones: list[tuple[str, float, float, float]]  # (token, start, end, score)

    def to_json(self) -> dict:
        return {
            "word": self.word, "start": round(self.start, 4), "end": round(self.end, 4),
            "phones": [{"phone": p, "start": round(s, 4), "end": round(e, 4),
                        "score": round(c, 4)} for p, s, e, c in self.phones],
        }  # fmt: skip


def word_spans(
    spans: Sequence[TokenSpan], words: Sequence[str], seconds_per_frame: float
) -> list[WordSpan]:
    """Group token spans into words at the ``|`` separators; frames become seconds.

    Args:
        spans: token spans of the whole transcript, separators included.
        words: the words, as many as separator-delimited groups.
        seconds_per_frame: the model's frame shift (20 ms for wav2vec2).
    """
    groups: list[list[TokenSpan]] = [[]]
    for span in spans:
        if span.token == WORD_SEP:
            groups.append([])
        else:
            groups[-1].append(span)
    groups = [g for g in groups if g]
    if len(groups) != len(words):
        raise AlignmentError(f"{len(words)} words but {len(groups)} aligned token groups")
    out = []
    for word, group in zip(words, groups):
        phones = [(s.token, s.start * seconds_per_frame, s.end * seconds_per_frame, s.score)
                  for s in group]  # fmt: skip
        out.append(WordSpan(word, phones[0][1], phones[-1][2], phones))
    return out


def to_tiers(words: Sequence[WordSpan]) -> dict[str, list[Interval]]:
    """``{"words": [...], "phones": [...]}`` interval tiers for :func:`phonex.intervals.write_textgrid`."""
    return {
        "words": [Interval(w.word, w.start, w.end) for w in words],
        "phones": [Interval(p, s, e) for w in words for p, s, e, _ in w.phones],
    }


# --- a model, a clip and its text -----------------------------------------------------------


def transcript_tokens(loaded, text: str, language: str | None = None) -> tuple[list[str], str]:
    """The words of ``text`` and the token string the model should emit for it.

    Raises:
        AlignmentError: an empty or unpronounceable text.
    """
    from phonex.data import char_tokens
    from phonex.lexicon import LexiconError, pronunciations

    words = text.split()
    if not words:
        raise AlignmentError("nothing to align: the text is empty")
    if loaded.units == "chars":
        tokens = char_tokens(text, loaded.vocab)
    else:
        try:
            tokens = pronunciations([text], language or loaded.language)[text]
        except LexiconError as err:
            raise AlignmentError(f"cannot phonemize {text!r}: {err}") from None
    return _word_labels(words, tokens), tokens


def _word_labels(words: list[str], tokens: str) -> list[str]:
    """One label per ``|``-separated token group: the words, or word1.. when counts differ."""
    groups = [g for g in tokens.split(WORD_SEP) if g.split()]
    if len(groups) != len(words):  # "10mg" -> "ten milligrams", "co-trimoxazole" -> two groups
        return [f"word{i + 1}" for i in range(len(groups))]
    return words


def align(loaded, wave: np.ndarray, text: str, language: str | None = None,
          max_seconds: float = 60.0, backend: str = "auto",
          tokens: str | None = None) -> list[WordSpan]:  # fmt: skip
    """Align ``text`` to a clip: words with their phone (or character) spans, in seconds.

    Args:
        loaded: a :class:`phonex.models.LoadedModel`.
        wave: mono waveform at ``loaded.sample_rate``.
        text: the words spoken; phonemized with espeak-ng for a phone model.
        language: espeak-ng language (default: the model's).
        max_seconds: longer clips are refused (memory grows with length); cut them first.
        backend: see :func:`forced_align`.
        tokens: the token string to align instead of phonemizing ``text`` (e.g. a manifest's
            reference phones, ``"n oʊ | ..."``).
    """
    from phonex.models import emissions

    seconds = len(wave) / loaded.sample_rate
    if seconds > max_seconds:
        raise AlignmentError(
            f"the clip is {seconds:.1f} s, longer than max_seconds={max_seconds:g}: cut it into "
            "sentences and align each, or raise max_seconds"
        )
    if tokens is None:
        words, tokens = transcript_tokens(loaded, text, language)
    else:
        words = _word_labels(text.split(), tokens)
    missing = sorted({t for t in tokens.split() if t not in loaded.vocab.index})
    if missing:
        raise AlignmentError(
            f"{text!r} needs tokens the model does not have: {' '.join(missing)} ({tokens})"
        )
    (log_probs,) = emissions(loaded, [wave])
    ids = loaded.vocab.encode(tokens)
    path, scores = forced_align(log_probs, ids, loaded.vocab.blank_id, backend)
    spans = token_spans(path, scores, tokens.split(), loaded.vocab.blank_id)
    frame = loaded.model.config.inputs_to_logits_ratio / loaded.sample_rate
    return word_spans(spans, words, frame)


def evaluate_alignment(loaded, rows, progress: bool = True):
    """Align each row's reference phones and compare with its reference phone times.

    Args:
        loaded: the model.
        rows: manifest rows with ``phones`` and an ``alignment`` file (a TextGrid with a
            ``phones`` tier, e.g. espeak-ng's own times, or TIMIT ``.phn``).

    Returns:
        one row per phone: ``id, speaker, phone, ref_start, ref_end, start, end, score,
        onset_error, offset_error`` (seconds, absolute).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from phonex.audio import load_audio
    from phonex.intervals import read_alignment

    records = []
    for row in tqdm(rows, desc="aligning", disable=not progress):
        words = align(loaded, load_audio(row.audio, loaded.sample_rate), row.text,
                      tokens=row.phones)  # fmt: skip
        aligned = [p for w in words for p in w.phones]
        reference = read_alignment(row.alignment)["phones"]
        if [r.label for r in reference] != [p[0] for p in aligned]:
            raise AlignmentError(f"{row.alignment}: reference phones differ from {row.phones!r}")
        for ref, (phone, start, end, score) in zip(reference, aligned):
            records.append({
                "id": row.id, "speaker": row.speaker, "phone": phone,
                "ref_start": ref.start, "ref_end": ref.end, "start": start, "end": end,
                "score": score, "onset_error": abs(start - ref.start),
                "offset_error": abs(end - ref.end),
            })  # fmt: skip
    return pd.DataFrame.from_records(records)
