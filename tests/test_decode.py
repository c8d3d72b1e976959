import pytest
import torch

from phonex.decode import error_rate, greedy_decode
from phonex.phonemes import Vocabulary

VOCAB = Vocabulary.build(["a b c"])  # [PAD]=0 [UNK]=1 |=2 a=3 b=4 c=5


def one_hot(ids: list[int]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), len(VOCAB)).float()


def test_greedy_decode_merges_repeats_and_drops_blanks():
    # a a _ a b b _ | c : "a a b | c" (the blank separates the two a's)
    frames = one_hot([3, 3, 0, 3, 4, 4, 0, 2, 5])
    padded = torch.cat([frames, one_hot([4, 4])])  # two frames past the end of clip 1
    out = greedy_decode(torch.stack([padded, padded]), VOCAB, torch.tensor([9, 11]))
    assert out == ["a a b | c", "a a b | c b"]


def test_error_rate_counts_edits_over_reference_phones_without_word_separators():
    rate = error_rate(["a b | c", "a a"], ["a c | c c", ""])
    # utterance 1: b->c substitution, one inserted c; utterance 2: two deletions; 5 ref phones
    assert (rate.substitutions, rate.insertions, rate.deletions) == (1, 1, 2)
    assert rate.reference_tokens == 5
    assert rate.rate == pytest.approx(4 / 5)
    assert error_rate(["a b"], ["a b"]).rate == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        error_rate([""], ["a"])
