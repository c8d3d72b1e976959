"""Boundary-aware alignment: a frame classifier on the model's hidden states, then segmentation.

CTC puts each phone on a spike somewhere inside it, so a CTC path's boundaries are only where
spikes fire (:mod:`phonex.boundaries` shifts them by what is typical). A frame classifier is
trained to say which phone each frame *is in*, so the change from one phone to the next is
what it learns. As in charsiu's frame-classification aligner:

1. :func:`frame_features`: the model's last hidden states, each frame with its neighbours
   (``[frames, dim * (2 * CONTEXT + 1)]``);
2. :class:`FrameClassifier`: a linear softmax over TIMIT-39 phones and ``sil`` (L2-regularised,
   fitted by L-BFGS on frames labelled from hand-labelled protocol units, :func:`frame_labels`);
3. :func:`segment`: the transcript's phones (espeak-ng, folded to TIMIT-39,
   :func:`transcript_states`) laid over the frames by Viterbi: each phone at least one frame,
   in order, an optional silence before, between and after words.

The phones it returns are TIMIT-39 labels, scored with ``hypothesis_labels="timit"``. The only
hand labels here are TIMIT's, so a classifier is fitted and scored leave-speakers-out
(:func:`cross_validate_frames`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from phonex.intervals import Interval
from phonex.phonemes import WORD_SEP
from phonex.timit import SILENCE, Unit

CONTEXT = 1  # neighbouring frames on each side stacked with each frame
L2 = 1e-3  # weight decay of the classifier (per frame, on standardised features)
STEPS = 60  # L-BFGS iterations
_IMPOSSIBLE = -1e9


def frame_features(loaded, wave: np.ndarray, layer: int = -1) -> np.ndarray:
    """``[frames, dim * (2 * CONTEXT + 1)]``: one layer's hidden states of a clip, each frame
    beside its neighbours (edges repeated)."""
    from phonex.probe import clip_hidden_states

    states = clip_hidden_states(loaded.model, wave)[layer].numpy()
    padded = np.pad(states, ((CONTEXT, CONTEXT), (0, 0)), mode="edge")
    width = 2 * CONTEXT + 1
    return np.concatenate([padded[k : k + len(states)] for k in range(width)], axis=1)


def frame_labels(units: Sequence[Unit], frames: int, frame_seconds: float) -> np.ndarray:
    """``[frames]``: the protocol unit (TIMIT-39 or ``sil``) holding each frame's centre."""
    centres = frame_seconds * (np.arange(frames) + 0.5)
    labels = np.full(frames, SILENCE, dtype=object)
    for unit in units:
        if unit.start is not None and unit.end is not None:
            labels[(centres >= unit.start) & (centres < unit.end)] = unit.label
    return labels


def transcript_states(loaded, text: str) -> list[tuple[str, bool]]:
    """The phones to lay over the frames, ``(TIMIT-39 label, optional)``: each word's phones
    (espeak-ng in the model's language, folded), an optional ``sil`` around every word."""
    from phonex.align import transcript_tokens
    from phonex.phonesets import ipa_to_39

    _, tokens = transcript_tokens(loaded, text)
    states = [(SILENCE, True)]
    for word in tokens.split(WORD_SEP):
        folded = ipa_to_39(word.split(), strict=False, convention="timit")
        states += [(label, False) for label in folded] + [(SILENCE, True)]
    return states


@dataclass
class FrameClassifier:
    """A linear softmax over frame features: ``log_softmax((x - mean) / std @ weight + bias)``."""

    classes: list[str]
    weight: torch.Tensor  # [features, classes]
    bias: torch.Tensor  # [classes]
    mean: torch.Tensor  # [features]
    std: torch.Tensor  # [features]

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, l2: float = L2,
            steps: int = STEPS) -> FrameClassifier:  # fmt: skip
        """Fit on ``[frames, features]`` and their ``[frames]`` labels (full batch, ``steps``
        L-BFGS iterations)."""
        classes = sorted(set(labels.tolist()))
        x = torch.as_tensor(features, dtype=torch.float32)
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        x = (x - mean) / std
        y = torch.as_tensor([classes.index(label) for label in labels])
        weight = torch.zeros(x.shape[1], len(classes), requires_grad=True)
        bias = torch.zeros(len(classes), requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [weight, bias], max_iter=steps, line_search_fn="strong_wolfe"
        )

        def loss() -> torch.Tensor:
            optimizer.zero_grad()
            value = torch.nn.functional.cross_entropy(x @ weight + bias, y)
            value = value + l2 * weight.pow(2).sum()
            value.backward()
            return value

        optimizer.step(loss)
        return cls(classes, weight.detach(), bias.detach(), mean, std)

    def log_proba(self, features: np.ndarray) -> np.ndarray:
        """``[frames, classes]`` log posteriors."""
        x = (torch.as_tensor(features, dtype=torch.float32) - self.mean) / self.std
        return torch.log_softmax(x @ self.weight + self.bias, dim=1).numpy()


def segment(log_proba: np.ndarray, classes: Sequence[str],
            states: Sequence[tuple[str, bool]]) -> np.ndarray:  # fmt: skip
    """The best left-to-right path of ``states`` through the frames (each state at least one
    frame, an optional state skippable).

    Args:
        log_proba: ``[frames, classes]``.
        classes: the column labels; a state whose label is not one scores nothing there.
        states: ``(label, optional)`` in order, e.g. :func:`transcript_states`.

    Returns:
        ``[frames]``: the state index of each frame.

    Raises:
        ValueError: fewer frames than the states that must be visited.
    """
    frames, count = len(log_proba), len(states)
    if frames < sum(not optional for _, optional in states):
        raise ValueError(f"{frames} frames cannot hold {count} phones")
    column = {label: k for k, label in enumerate(classes)}
    scores = np.stack([log_proba[:, column[label]] if label in column
                       else np.full(frames, _IMPOSSIBLE) for label, _ in states], 1)  # fmt: skip
    skippable = np.array([s >= 2 and states[s - 1][1] for s in range(count)])
    best, back = np.full((frames, count), -np.inf), np.zeros((frames, count), dtype=np.int64)
    best[0, : 2 if states[0][1] else 1] = scores[0, : 2 if states[0][1] else 1]
    for t in range(1, frames):
        stay, step = best[t - 1], np.r_[-np.inf, best[t - 1, :-1]]
        skip = np.where(skippable, np.r_[-np.inf, -np.inf, best[t - 1, :-2]], -np.inf)
        moves = np.stack([stay, step, skip])
        back[t] = moves.argmax(0)
        best[t] = moves.max(0) + scores[t]
    last = count - 1
    if states[-1][1] and count > 1 and best[-1, count - 2] > best[-1, last]:
        last = count - 2
    path = [last]
    for t in range(frames - 1, 0, -1):
        path.append(path[-1] - back[t, path[-1]])
    return np.array(path[::-1])


def segment_intervals(path: np.ndarray, states: Sequence[tuple[str, bool]],
                      frame_seconds: float) -> list[Interval]:  # fmt: skip
    """The states a path visits as intervals in seconds (silences included, labelled ``sil``)."""
    out: list[Interval] = []
    starts = np.flatnonzero(np.r_[True, path[1:] != path[:-1]])
    for start, end in zip(starts, [*starts[1:], len(path)]):
        out.append(Interval(states[path[start]][0], start * frame_seconds, end * frame_seconds))
    return out


def cross_validate_frames(loaded, reference: Sequence, features: Sequence[np.ndarray],
                          l2: float = L2, steps: int = STEPS,
                          ) -> tuple[list[list[Interval]], dict[str, str]]:  # fmt: skip
    """Leave-one-speaker-out: each speaker's utterances segmented by a classifier fitted on the
    other speakers' frames.

    Args:
        loaded: the model (its frame shift, and its language to phonemize the transcripts).
        reference: :func:`phonex.timit.read_timit_reference` pairs.
        features: :func:`frame_features` of each utterance.
        l2, steps: see :meth:`FrameClassifier.fit`.

    Returns:
        per utterance its TIMIT-39 intervals (empty when it failed), and why each failed.
    """
    from phonex.timit import protocol_units

    frame = loaded.model.config.inputs_to_logits_ratio / loaded.sample_rate
    labels = [frame_labels(protocol_units(lab.phones), len(f), frame)
              for (_, lab), f in zip(reference, features)]  # fmt: skip
    speakers = [row.speaker for row, _ in reference]
    out: list[list[Interval]] = [[] for _ in reference]
    failed: dict[str, str] = {}
    for held in sorted(set(speakers)):
        train = [k for k, s in enumerate(speakers) if s != held]
        classifier = FrameClassifier.fit(np.concatenate([features[k] for k in train]),
                                         np.concatenate([labels[k] for k in train]), l2,
                                         steps)  # fmt: skip
        for k in (k for k, s in enumerate(speakers) if s == held):
            row = reference[k][0]
            try:
                states = transcript_states(loaded, row.text)
                path = segment(classifier.log_proba(features[k]), classifier.classes, states)
            except ValueError as err:  # AlignmentError included: text it cannot phonemize
                failed[row.id] = f"{row.audio}: {err}"
                continue
            out[k] = segment_intervals(path, states, frame)
    return out, failed
