"""Boundary-aware alignment: frame labels, a linear frame classifier and Viterbi segmentation,
on hand-made frames whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from phonex.frame_align import FrameClassifier, frame_labels, segment, segment_intervals
from phonex.intervals import Interval
from phonex.timit import SILENCE, Unit

CLASSES = ["aa", "b", SILENCE]


def log_proba(*rows):
    probs = np.array(rows, dtype=float)
    return np.log(probs / probs.sum(1, keepdims=True))


def test_frames_take_the_unit_holding_their_centre_and_silence_elsewhere():
    units = [Unit(SILENCE, 0.0, 0.05), Unit("b", 0.05, 0.09), Unit("aa", 0.09, None)]
    assert frame_labels(units, 6, 0.02).tolist() == [SILENCE, SILENCE, "b", "b", SILENCE,
                                                     SILENCE]  # fmt: skip


def test_segmentation_follows_the_frames_and_skips_silences_that_are_not_there():
    frames = log_proba(
        [0.1, 0.8, 0.1],  # b
        [0.1, 0.8, 0.1],
        [0.8, 0.1, 0.1],  # aa
        [0.1, 0.1, 0.8],  # a pause
        [0.1, 0.8, 0.1],  # b
    )
    states = [(SILENCE, True), ("b", False), ("aa", False), (SILENCE, True), ("b", False),
              (SILENCE, True)]  # fmt: skip
    path = segment(frames, CLASSES, states)
    assert path.tolist() == [1, 1, 2, 3, 4]  # no leading or trailing silence
    assert segment_intervals(path, states, 0.02) == [
        Interval("b", 0.0, 0.04), Interval("aa", 0.04, 0.06), Interval(SILENCE, 0.06, 0.08),
        Interval("b", 0.08, 0.1),
    ]  # fmt: skip


def test_every_phone_gets_a_frame_even_against_the_evidence_and_too_few_frames_fail():
    frames = log_proba([0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1])
    states = [("b", False), ("aa", False), ("b", False)]
    assert segment(frames, CLASSES, states).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="2 frames cannot hold 3 phones"):
        segment(frames[:2], CLASSES, states)


def test_the_classifier_learns_separable_frames():
    rng = np.random.default_rng(0)
    centres = {"aa": np.array([3.0, 0.0]), "b": np.array([0.0, 3.0]), SILENCE: np.zeros(2)}
    labels = np.array([c for c in centres for _ in range(50)], dtype=object)
    features = np.stack([centres[c] + rng.normal(0, 0.5, 2) for c in labels])
    classifier = FrameClassifier.fit(features, labels)
    predicted = np.array(classifier.classes)[classifier.log_proba(features).argmax(1)]
    assert np.mean(predicted == labels) > 0.95
    assert np.allclose(np.exp(classifier.log_proba(features)).sum(1), 1, atol=1e-5)
