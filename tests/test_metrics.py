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
    score_alignment,
    summarize_alignments,
    summarize_ranks,
    timit_error_rate,
    top_k_accuracy,
)
from phonex.timit import one_to_one_hits, segmentation_scores


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


# --- FA-Bench's TIMIT protocol: scores on hand-made cases whose answers are known ------------

# h# s iy n h#: boundaries at 0.10, 0.20, 0.35 and 0.45 s
THREE = _tier(("h#", 0.0, 0.1), ("s", 0.1, 0.2), ("iy", 0.2, 0.35), ("n", 0.35, 0.45),
              ("h#", 0.45, 0.6))  # fmt: skip


def _shifted(seconds):
    return _tier(*[(p, s + seconds, e + seconds) for p, s, e in
                   (("s", 0.1, 0.2), ("iy", 0.2, 0.35), ("n", 0.35, 0.45))])  # fmt: skip


def test_a_prediction_15_ms_late_is_within_20_ms_and_hits_every_boundary():
    result = summarize_alignments([score_alignment(THREE, _shifted(0.015))])
    assert (result["reference_boundaries"], result["paired_boundaries"]) == (4, 4)
    assert (result["within_10ms"], result["within_20ms"], result["within_50ms"]) == (0, 1, 1)
    assert result["mean_abs_error_s"] == pytest.approx(0.015)
    assert (result["precision"], result["recall"], result["f1"]) == (1, 1, 1)
    assert result["r_value"] == pytest.approx(1.0)
    assert result["same_phones"] == 1


def test_a_prediction_30_ms_late_misses_20_ms_and_every_one_to_one_hit():
    result = summarize_alignments([score_alignment(THREE, _shifted(0.030))])
    assert (result["within_10ms"], result["within_20ms"], result["within_50ms"]) == (0, 0, 1)
    assert result["mean_abs_error_s"] == pytest.approx(0.030)
    assert (result["hits"], result["precision"], result["recall"], result["f1"]) == (0, 0, 0, 0)
    # HR = 0, OS = 4/4 - 1 = 0: r1 = 1, r2 = -1/sqrt(2), R = 1 - (1 + 0.7071) / 2
    assert result["r_value"] == pytest.approx(1 - (1 + 2**-0.5) / 2)


def test_precision_recall_f1_and_r_value_by_hand():
    reference, hypothesis = [0.1, 0.2, 0.3, 0.4], [0.105, 0.23, 0.31, 0.5, 0.6]
    hits = one_to_one_hits(reference, hypothesis, 0.02)  # 0.1-0.105 and 0.3-0.31
    assert hits == 2
    scores = segmentation_scores(hits, len(reference), len(hypothesis))
    assert scores["precision"] == pytest.approx(2 / 5) and scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    over = 5 / 4 - 1  # over-segmentation
    r1, r2 = ((1 - 0.5) ** 2 + over**2) ** 0.5, (0.5 - over - 1) / 2**0.5
    assert scores["r_value"] == pytest.approx(1 - (abs(r1) + abs(r2)) / 2)
    assert scores["r_value"] == pytest.approx(0.4553, abs=1e-4)
    # one-to-one: a reference boundary confirms one of two close predictions, not both
    assert one_to_one_hits([0.1], [0.095, 0.105], 0.02) == 1
    assert segmentation_scores(0, 0, 3) == {"precision": 0.0, "recall": None, "f1": None,
                                            "r_value": None}  # fmt: skip


def test_closures_merge_into_their_release_and_stand_for_their_stop_without_one():
    # "bad your": bcl+b is one b from 0.1; dcl before y is an unreleased d
    reference = _tier(("h#", 0.0, 0.1), ("bcl", 0.1, 0.15), ("b", 0.15, 0.17),
                      ("ae", 0.17, 0.3), ("dcl", 0.3, 0.36), ("y", 0.36, 0.4),
                      ("ux", 0.4, 0.5), ("h#", 0.5, 0.6))  # fmt: skip
    hypothesis = _tier(("b", 0.11, 0.17), ("ae", 0.17, 0.3), ("d", 0.3, 0.36),
                       ("y", 0.36, 0.4), ("uw", 0.4, 0.5))  # fmt: skip
    result = score_alignment(reference, hypothesis)
    assert result.same_phones and result.reference_boundaries == 6
    # only the b onset differs (0.01: the closure's start, not the burst's at 0.15)
    assert sorted(result.errors) == pytest.approx([0, 0, 0, 0, 0, 0.01])
    merged = matched_boundary_errors(reference, hypothesis, hypothesis_labels="timit")
    assert (merged.matched, merged.reference_phones) == (5, 5)


def test_adjacent_silences_join_and_uncovered_time_is_silence():
    # h# pau epi in a row is one silence: one boundary before "s", not three
    reference = _tier(("h#", 0.0, 0.1), ("pau", 0.1, 0.2), ("epi", 0.2, 0.25),
                      ("s", 0.25, 0.4), ("h#", 0.4, 0.5))  # fmt: skip
    # the hypothesis leaves 0-0.26 and 0.39-0.5 uncovered: silence on both sides
    result = score_alignment(reference, _tier(("s", 0.26, 0.39)))
    assert (result.reference_boundaries, result.hypothesis_boundaries) == (2, 2)
    assert result.errors == pytest.approx([0.01, 0.01])
    empty = summarize_alignments([score_alignment(reference, [])])
    assert (empty["within_20ms"], empty["hypothesis_boundaries"], empty["recall"]) == (None, 0, 0)


def test_substituted_phones_time_their_boundaries_by_the_paired_neighbours():
    # iy heard as ih: s and n are paired; s|iy is timed by s's end, iy|n by n's start
    hypothesis = _tier(("s", 0.1, 0.22), ("ih", 0.22, 0.33), ("n", 0.33, 0.45))
    result = score_alignment(THREE, hypothesis)
    assert not result.same_phones
    assert sorted(result.errors) == pytest.approx([0, 0, 0.02, 0.02])


def test_timit_error_rate_folds_merges_and_drops_silences():
    reference = ["h#", "dh", "ix", "dcl", "d", "ao", "gcl", "g", "q", "h#"]  # dh ih d aa g
    hypothesis = ["ð", "ə", "|", "d", "ɑː", "ɡ"]  # dh ah d aa g: one substitution
    rate = timit_error_rate([reference], [hypothesis])
    assert (rate.substitutions, rate.deletions, rate.insertions) == (1, 0, 0)
    assert rate.rate == pytest.approx(1 / 5)


def test_an_unknown_phone_from_the_recogniser_is_an_error_not_a_crash():
    reference = ["h#", "d", "ao", "gcl", "g", "h#"]  # d aa g
    rate = timit_error_rate([reference], [["d", "[UNK]", "ɡ"]])
    assert (rate.substitutions, rate.deletions, rate.insertions) == (1, 0, 0)
    rate = timit_error_rate([reference], [["d", "ɑː", "[UNK]", "ɡ"]])
    assert (rate.substitutions, rate.deletions, rate.insertions) == (0, 0, 1)
