"""The English phone inventory: every phone of ordinary English in en-us and en-gb, folding to
TIMIT-39, and the CTC vocabulary built from it."""

import pytest

from phonex.config import SHARED_DATA_DIR
from phonex.english_phones import (
    ENGLISH_PHONES,
    derivation_texts,
    derive_inventory,
    english_vocabulary,
)
from phonex.phonemes import PAD, UNK, WORD_SEP, Vocabulary, phonemize, to_string
from phonex.phonesets import TIMIT39, ipa_to_39

SENTENCES = [
    "The rhythm of the button and the bottle.",
    "I thought it was pure water, didn't you?",
    "Who were they, and what would she have said to them at their house?",
    "A little garden with a mountain of cotton, heaven and a tunnel.",
    "Our hour of fire: the area's idea was to tour the poor, sure of hire.",
    "Measure the vision of this thing, then judge which church is theirs.",
]


@pytest.mark.parametrize("accent", ["en-us", "en-gb"])
def test_ordinary_sentences_phonemize_into_the_inventory(accent):
    inventory = set(ENGLISH_PHONES)
    prons = phonemize(SENTENCES, accent)
    outside = {p for pron in prons for word in pron for p in word} - inventory
    assert not outside, f"{accent}: {outside} not in ENGLISH_PHONES"
    vocab = english_vocabulary()
    for pron in prons:  # every label encodes without [UNK]
        ids = vocab.encode(to_string(pron), unknown="error")
        assert vocab.index[UNK] not in ids
    phones = {p for pron in prons for word in pron for p in word}
    assert "ð" in phones


def test_inventory_folds_to_timit_39():
    for convention in ("cmu", "timit"):
        for phone in ENGLISH_PHONES:
            folded = ipa_to_39([phone], convention=convention)
            assert set(folded) <= set(TIMIT39), (phone, convention, folded)
            assert folded or (phone == "ʔ" and convention == "timit")  # TIMIT deletes q


def test_vocabulary_is_sorted_with_blank_first():
    vocab = english_vocabulary()
    assert vocab.tokens[:3] == [PAD, UNK, WORD_SEP] and vocab.blank_id == 0
    assert vocab.tokens[3:] == sorted(ENGLISH_PHONES) and len(set(ENGLISH_PHONES)) == 64
    built = Vocabulary.build([" ".join(reversed(ENGLISH_PHONES))])
    assert built.tokens == vocab.tokens


def test_derivation_reproduces_the_inventory():
    if not (SHARED_DATA_DIR / "speechocean762-train").exists():
        pytest.skip("../shared/data is not here")
    derived = derive_inventory(derivation_texts(SHARED_DATA_DIR))
    assert set(derived) == set(ENGLISH_PHONES)
