import math

import pytest
import torch
import torch.nn.functional as F

from phonex.decode import (
    compile_lexicon,
    ctc_log_likelihoods,
    fuzzy_rank,
    greedy_decode,
    top_candidates,
)
from phonex.phonemes import Vocabulary

VOCAB = Vocabulary.build(["a b c d"])  # [PAD]=0 [UNK]=1 |=2 a=3 b=4 c=5 d=6


def one_hot(ids: list[int]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), len(VOCAB)).float()


def test_greedy_decode_merges_repeats_and_drops_blanks():
    # a a _ a b b _ | c : "a a b | c" (the blank separates the two a's)
    frames = one_hot([3, 3, 0, 3, 4, 4, 0, 2, 5])
    padded = torch.cat([frames, one_hot([4, 4])])  # two frames past the end of clip 1
    out = greedy_decode(torch.stack([padded, padded]), VOCAB, torch.tensor([9, 11]))
    assert out == ["a a b | c", "a a b | c b"]


def ctc_loss_reference(log_probs, length, tokens):
    """-ctc_loss of one clip and one token string: what lexicon scoring must equal."""
    target = torch.tensor([VOCAB.encode(tokens)])
    loss = F.ctc_loss(
        log_probs[:length, None], target, torch.tensor([length]), torch.tensor([target.shape[1]]),
        blank=VOCAB.blank_id, reduction="sum",
    )  # fmt: skip
    return -loss.item()


def test_lexicon_scores_equal_ctc_loss_for_every_word_clip_and_length():
    prons = {
        "ab": ["a b"], "aab": ["a a b"], "two words": ["c | d", "c d"], "dd": ["d d d"],
        "too long": ["a b c d a b c d a b c d"],
    }  # fmt: skip
    lexicon = compile_lexicon(prons, VOCAB)
    torch.manual_seed(0)
    log_probs = torch.log_softmax(3 * torch.randn(5, 12, len(VOCAB)), -1)
    lengths = torch.tensor([12, 9, 7, 5, 4])
    scores = ctc_log_likelihoods(log_probs, lexicon, lengths, clips_per_chunk=2)
    assert scores.shape == (5, 5)
    for clip in range(5):
        for w, (word, variants) in enumerate(prons.items()):
            want = max(ctc_loss_reference(log_probs[clip], lengths[clip], v) for v in variants)
            got = scores[clip, w].item()
            assert got == pytest.approx(want, rel=1e-4, abs=1e-4) or got == want == -math.inf
    # "d d d" needs 5 frames (d _ d _ d), so the 4-frame clip rules it out
    assert scores[4, 3] == -math.inf and torch.isfinite(scores[3, 3])
    needed = lexicon.frames_needed()
    assert needed.tolist() == [2, 4, 3, 2, 5, 12]  # ab, aab, c | d, c d, d d d, too long
    assert lexicon.shortest() == ("ab", 2)


def test_ranking_puts_the_most_likely_word_first():
    # emissions that spell "b a" clearly: the seed project sorted losses the wrong way round
    frames = torch.full((6, len(VOCAB)), 1e-3)
    for t, token in enumerate([0, 4, 0, 3, 3, 0]):
        frames[t, token] = 1.0
    log_probs = torch.log(frames / frames.sum(-1, keepdim=True))[None]
    lexicon = compile_lexicon({"ab": ["a b"], "ba": ["b a"], "bad": ["b a d"]}, VOCAB)
    (ranked,) = top_candidates(ctc_log_likelihoods(log_probs, lexicon), lexicon.words, top=3)
    assert [c.word for c in ranked] == ["ba", "bad", "ab"]
    assert ranked[0].score > ranked[1].score > ranked[2].score


def test_words_the_model_cannot_spell_are_named_and_skipped_or_refused():
    prons = {"ok": ["a b"], "alien": ["a x"], "silent": []}
    with pytest.warns(UserWarning, match=r"'alien': x not in the model; 'silent': empty"):
        lexicon = compile_lexicon(prons, VOCAB)
    assert lexicon.words == ["ok"]
    with pytest.raises(ValueError, match="'alien'"):
        compile_lexicon(prons, VOCAB, on_error="raise")
    with pytest.raises(ValueError, match="no word"), pytest.warns(UserWarning, match="alien"):
        compile_lexicon({"alien": ["x"]}, VOCAB, on_error="skip")


def test_fuzzy_rank_finds_the_closest_pronunciation_and_merges_variants():
    prons = {"abc": ["a b c"], "abd": ["a b d", "a b d d"], "cd": ["c d"]}
    (ranked,) = fuzzy_rank(["a b | d d"], prons, top=2)
    assert [c.word for c in ranked] == ["abd", "abc"]
    assert ranked[0].score == 1.0  # the second variant matches exactly
    (text,) = fuzzy_rank(["Zyrtek"], {"Zyrtec": ["Zyrtec"], "Xanax": ["Xanax"]}, tokens=False)
    assert text[0].word == "Zyrtec" and text[0].score == pytest.approx(5 / 6)


def test_words_too_long_for_a_clip_rank_last_in_lexicon_order_never_nan():
    lexicon = compile_lexicon({"long": ["a b c d a"], "ab": ["a b"], "longer": ["a b c d a b"]},
                              VOCAB)  # fmt: skip
    log_probs = torch.log_softmax(torch.randn(1, 3, len(VOCAB)), -1)
    scores = ctc_log_likelihoods(log_probs, lexicon)
    assert not scores.isnan().any()
    (ranked,) = top_candidates(scores, lexicon.words, top=3)
    assert [c.word for c in ranked] == ["ab", "long", "longer"]
    assert math.isfinite(ranked[0].score) and ranked[1].score == ranked[2].score == -math.inf
    with pytest.warns(UserWarning, match=r"'xxx+\.\.\. \(200000 characters\): not Latin"):
        compile_lexicon({"x" * 200_000: [], "ab": ["a b"]}, VOCAB,
                        problems={"x" * 200_000: "not Latin"})  # fmt: skip
