import pytest

from phonex.intervals import Interval
from phonex.metrics import (
    confusion_matrix,
    error_rate,
    feature_distance,
    matched_boundary_errors,
    mean_reciprocal_rank,
    pair_confusions,
    phone_edit_distance,
    rank_of,
    summarize_ranks,
    top_k_accuracy,
)


def test_error_rate_counts_edits_over_reference_phones_without_word_separators():
    rate = error_rate(["a b | c", "a a"], ["a c | c c", ""])
    # utterance 1: b->c substitution, one inserted c; utterance 2: two deletions; 5 ref phones
    assert (rate.substitutions, rate.insertions, rate.deletions) == (1, 1, 2)
    assert rate.reference_tokens == 5
    assert rate.rate == pytest.approx(4 / 5)
    assert error_rate(["a b"], ["a b"]).rate == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        error_rate([""], ["a"])


def test_ranks_give_top_k_accuracy_and_mean_reciprocal_rank():
    assert rank_of("Zyrtec", ["zantac", "zyrtec", "xanax"]) == 2
    assert rank_of("Zyrtec", ["zantac"]) == 0
    ranks = [1, 1, 2, 5, 0]
    assert top_k_accuracy(ranks) == {
        "top1": 0.4, "top2": 0.6, "top3": 0.6, "top4": 0.6, "top5": 0.8,
    }  # fmt: skip
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 + 0.5 + 0.2 + 0) / 5)
    assert summarize_ranks(ranks)["clips"] == 5
    with pytest.raises(ValueError):
        top_k_accuracy([])


def test_confusion_matrix_counts_truth_against_recognised_word():
    frame = confusion_matrix(["a", "a", "b", "c"], ["a", "b", "b", "a"], labels=["a", "b", "c"])
    assert frame.loc["a"].tolist() == [1, 1, 0]
    assert frame.loc["c"].tolist() == [1, 0, 0]
    assert int(frame.values.sum()) == 4


def test_feature_distance_knows_voicing_is_closer_than_a_vowel():
    assert feature_distance("s iː", "z iː") < feature_distance("s iː", "ɑː iː")
    assert feature_distance("ᵻ ɚ", "ᵻ ɚ") == 0.0  # espeak-only symbols map into panphon
    assert phone_edit_distance("a b | c", "a b c d") == pytest.approx(0.25)


def test_pair_confusions_count_each_direction():
    truths = ["Zyrtec", "Zyrtec", "Zantac", "Zantac", "Xanax"]
    recognised = ["Zantac", "Zyrtec", "Zantac", "Zantac", "Xanax"]
    prons = {"Zyrtec": "z ɜː t ɛ k", "Zantac": "z æ n t æ k", "Xanax": "z æ n æ k s"}
    frame = pair_confusions(truths, recognised, [("Zyrtec", "Zantac"), ("Xanax", "Zantac"),
                                                 ("Xanax", "Unknown")], prons)  # fmt: skip
    assert frame.a.tolist() == ["Zyrtec", "Xanax"]  # most confused first; unknown word left out
    first = frame.iloc[0]
    assert (first.a_as_b, first.b_as_a, first.clips_a, first.clips_b) == (1, 0, 2, 2)
    assert first.confusion_rate == pytest.approx(0.25)
    assert 0 < first.feature_distance < first.phone_distance <= 1


def _tier(*phones):
    return [Interval(label, start, end) for label, start, end in phones]


def test_matched_boundaries_skip_substitutions_and_insertions_and_join_closures():
    # TIMIT "the dog" against espeak-ng's: ax heard as ɪ, a schwa inserted, ɑː and ao both aa
    reference = _tier(("h#", 0.0, 0.1), ("dh", 0.1, 0.15), ("ax", 0.15, 0.2), ("vcl", 0.2, 0.25),
                      ("d", 0.25, 0.3), ("ao", 0.3, 0.5), ("gcl", 0.5, 0.55), ("g", 0.55, 0.6),
                      ("h#", 0.6, 0.7))  # fmt: skip
    hypothesis = _tier(("ð", 0.12, 0.15), ("ɪ", 0.15, 0.22), ("d", 0.22, 0.3), ("ɑː", 0.3, 0.45),
                       ("ə", 0.45, 0.5), ("ɡ", 0.5, 0.62))  # fmt: skip
    result = matched_boundary_errors(reference, hypothesis)
    assert (result.matched, result.reference_phones, result.hypothesis_phones) == (4, 5, 6)
    # dh, d (its onset is the closure's), aa, g
    assert result.onset_error == pytest.approx([0.02, 0.02, 0.0, 0.0])
    assert result.offset_error == pytest.approx([0.0, 0.0, 0.05, 0.02])


def test_matched_boundaries_leave_out_boundaries_inside_a_split_unit():
    # espeak-ng's iə is iy + ah; an unreleased closure (no stop after it) and q are dropped
    reference = _tier(("iy", 0.0, 0.1), ("ax", 0.1, 0.2), ("vcl", 0.2, 0.3), ("q", 0.3, 0.35),
                      ("sil", 0.35, 0.5))  # fmt: skip
    hypothesis = _tier(("iə", 0.01, 0.19), ("", 0.19, 0.5))
    result = matched_boundary_errors(reference, hypothesis)
    assert (result.matched, result.reference_phones, result.hypothesis_phones) == (2, 2, 2)
    assert result.onset_error == pytest.approx([0.01])
    assert result.offset_error == pytest.approx([0.01])
    with pytest.raises(ValueError, match="label set"):
        matched_boundary_errors(reference, hypothesis, hypothesis_labels="ipa")
