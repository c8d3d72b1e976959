import pytest

from phonex.phonemes import (
    PAD,
    UNK,
    WORD_SEP,
    PhonemizeError,
    Vocabulary,
    brief,
    flatten,
    from_string,
    inventory,
    normalize_phone,
    phonemize,
    text_problem,
    to_string,
)


def test_phonemize_keeps_words_and_drops_stress_by_default():
    (pron,) = phonemize(["hydroxyzine tablets"])
    assert len(pron) == 2
    assert pron[0] == ["h", "aɪ", "d", "ɹ", "ɑː", "k", "s", "ɪ", "z", "iː", "n"]
    assert not any("ˈ" in p or "ˌ" in p for p in flatten(pron))
    (stressed,) = phonemize(["hydroxyzine"], stress=True)
    assert any("ˈ" in p for p in flatten(stressed))


def test_accents_differ_where_they_should():
    us, gb = phonemize(["hydroxyzine"], "en-us")[0], phonemize(["hydroxyzine"], "en-gb-x-rp")[0]
    assert "ɑː" in flatten(us) and "ɒ" in flatten(gb)


def test_batch_equals_one_by_one():
    texts = ["metformin", "Tylenol PM", "amoxicillin"]
    assert phonemize(texts) == [phonemize([t])[0] for t in texts]


@pytest.mark.parametrize("text", ["", "   ", "..."])
def test_empty_or_unpronounceable_text_is_a_clear_error(text):
    with pytest.raises(PhonemizeError):
        phonemize(["aspirin", text])


def test_string_round_trip_and_inventory():
    pron = [["h", "aɪ"], ["d", "ɹ", "ɑː"]]
    assert to_string(pron) == "h aɪ | d ɹ ɑː"
    assert from_string(to_string(pron)) == pron
    assert inventory(["h aɪ | h iː"]) == {"h": 2, "aɪ": 1, "iː": 1}


def test_normalize_maps_ascii_leftovers_and_strips_stress():
    assert normalize_phone("a:") == "aː"
    assert normalize_phone("ˈaɪ") == "aɪ"
    assert normalize_phone("ˈaɪ", stress=True) == "ˈaɪ"


def test_vocabulary_from_training_strings(tmp_path):
    vocab = Vocabulary.build(["h aɪ | d ɹ", "d iː"])
    assert vocab.tokens[:3] == [PAD, UNK, WORD_SEP] and vocab.blank_id == 0
    assert vocab.tokens[3:] == sorted({"h", "aɪ", "d", "ɹ", "iː"})
    ids = vocab.encode("h aɪ | d iː")
    assert vocab.decode(ids) == "h aɪ | d iː"
    assert WORD_SEP not in vocab.decode(vocab.encode("h aɪ | d iː", word_sep=False))
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").tokens == vocab.tokens


def test_vocabulary_rejects_unknown_phones_unless_asked():
    vocab = Vocabulary.build(["h aɪ"])
    with pytest.raises(ValueError, match="not in the vocabulary: ʒ"):
        vocab.encode("h ʒ aɪ")
    assert vocab.encode("h ʒ aɪ", unknown="unk")[1] == vocab.index[UNK]
    with pytest.raises(ValueError, match="no blank"):
        Vocabulary(["a", UNK])


def test_vocabulary_reads_a_character_checkpoint_vocab():
    # wav2vec2-base-960h's vocab.json: <pad> is the blank, "|" the word separator
    hf = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6}
    vocab = Vocabulary.from_index(hf)
    assert (vocab.blank_id, vocab.unk) == (0, "<unk>")
    assert vocab.encode("T E | Q", unknown="unk") == [6, 5, 4, 3]
    with pytest.raises(ValueError, match="0..n-1"):
        Vocabulary.from_index({"<pad>": 0, "a": 2})


@pytest.mark.parametrize(
    ("text", "language", "named"),
    [("中文", "en-us", "CJK UNIFIED IDEOGRAPH-4E2D"), ("Ибупрофен", "en-us", "CYRILLIC"),
     ("Zyrtec®", "en-us", "REGISTERED SIGN"), ("pill 💊", "en-us", "PILL"),
     ("Ｚyrtec", "en-us", "FULLWIDTH"), ("a\u200bb", "en", "ZERO WIDTH SPACE")],
)  # fmt: skip
def test_text_espeak_ng_would_misread_is_named(text, language, named):
    assert named in text_problem(text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [("take 2 tablets, 3x daily!", "en-us"), ("café naïve", "fr-fr"),
     ("5% & co-trimoxazole", "en-gb"), ("Ибупрофен", "ru")],
)  # fmt: skip
def test_text_espeak_ng_reads_as_written_passes(text, language):
    assert text_problem(text, language) is None


def test_brief_cuts_long_values_and_says_how_long():
    assert brief("Xanax") == "'Xanax'"
    cut = brief("x" * 200_000, limit=40)
    assert len(cut) < 70 and cut.endswith("(200000 characters)")
