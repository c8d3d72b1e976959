"""CTC Viterbi search: the single most likely frame path that spells a transcript.

The search runs over the transcript's CTC states (blank, t1, blank, t2, ..., blank). phonex uses
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
from functools import lru_cache

import numba
import numpy as np
import torch

from phonex.intervals import AlignmentError


def _check_lengths(frames: int, targets: Sequence[int]) -> None:
    repeats = sum(1 for a, b in itertools.pairwise(targets) if a == b)
    if not targets:
        raise AlignmentError("nothing to align: the transcript has no tokens")
    if frames < len(targets) + repeats:
        raise AlignmentError(
            f"{len(targets)} tokens ({repeats} repeated, each needing a blank between) do not fit "
            f"in {frames} frames: the clip is too short for this transcript"
        )


def _compiled(function):
    """numba-compiled with an on-disk cache, or without one where no cache folder is writable."""
    try:
        return numba.njit(cache=True)(function)
    except RuntimeError:  # numba found no writable cache location: compile in each process
        return numba.njit(function)


@_compiled
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
