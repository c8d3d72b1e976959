"""Phone-set maps: sizes, TIMIT folding, round trips, espeak-ng coverage and known words."""

from __future__ import annotations

import unicodedata

import pytest

from phonex import phonesets as ps
from phonex.config import SHARED_DATA_DIR
from phonex.phonemes import flatten, phonemize

VOICES = [
    "en-us", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-us-nyc", "en-gb",
]  # fmt: skip

# Wells' lexical sets, their r-coloured and reduced forms, flaps, glottal stops, syllabic
# consonants, loans and drug names: words that bring out every corner of the espeak inventories.
_WORD_TEXT = """
kit dress trap lot strut foot bath cloth nurse fleece face palm thought goat goose price choice
mouth near square start north force cure happy letter comma horses roses wanted butter water
city pretty mountain button kitten certain written bottle little able rhythm prism loch bach
hour our fire hire tire science lion player lawyer idea area nuclear poor tour sure curious
boring story more four carry very sorry hurry mirror bird word heard herr measure azure genre
beige garage judge church thing this the a to of and which when what whale huge human new tune
music usual vision eighth twelfth strengths months clothes croissant ensemble rendezvous
llanelli sing singer finger accompanying alarm attorney affirmed awarded accessors meanwhile
atorvastatin hydroxyzine metformin lisinopril amlodipine omeprazole simvastatin losartan
albuterol gabapentin hydrochlorothiazide sertraline acetaminophen ibuprofen amoxicillin
azithromycin levothyroxine prednisone tramadol warfarin clopidogrel montelukast escitalopram
rosuvastatin pantoprazole furosemide fluoxetine citalopram trazodone meloxicam carvedilol
alprazolam zolpidem insulin methotrexate ciprofloxacin doxycycline cephalexin clonazepam
"""
WORDS = _WORD_TEXT.split()

# Pronunciations from CMUdict (stress removed); espeak-ng en-us agrees on these words.
CMUDICT = {
    "hydroxyzine": "hh ay d r aa k s ih z iy n",
    "water": "w ao t er",
    "button": "b ah t ah n",
    "fire": "f ay er",
    "boring": "b ao r ih ng",
    "more": "m ao r",
    "able": "ey b ah l",
    "hour": "aw er",
    "measure": "m eh zh er",
    "judge": "jh ah jh",
    "choice": "ch oy s",
    "mouth": "m aw th",
    "thing": "th ih ng",
    "goat": "g ow t",
    "client": "k l ay ah n t",
}

TIMIT_EXTRAS = ("ax", "axr", "ix", "ux", "dx", "q", "el", "em", "en", "eng")


def _phonemize_or_skip(words: list[str], voice: str) -> list[list[str]]:
    try:
        return [flatten(p) for p in phonemize(words, voice)]
    except RuntimeError as err:  # phonemizer: voice missing from this espeak-ng build
        pytest.skip(f"espeak-ng has no voice {voice}: {err}")


def test_sizes():
    assert len(ps.ARPABET) == len(set(ps.ARPABET)) == 39
    assert len(ps.TIMIT61) == len(set(ps.TIMIT61)) == 61
    assert len(ps.TIMIT39) == len(set(ps.TIMIT39)) == 39
    assert set(ps.ARPABET) <= set(ps.TIMIT61)


def test_every_timit61_label_folds_into_timit39():
    folded = ps.timit_to_39(ps.TIMIT61)
    assert set(folded) == set(ps.TIMIT39)
    assert len(folded) == 60  # only q is removed
    for label in ps.TIMIT61:
        assert ps.timit_to_39([label]) in ([], *[[c] for c in ps.TIMIT39])


def test_lee_hon_folding():
    # Kaldi timit/s5/conf/phones.60-48-39.map
    merges = {
        "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l",
        "em": "m", "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
        "pcl": "sil", "tcl": "sil", "kcl": "sil", "bcl": "sil", "dcl": "sil", "gcl": "sil",
        "h#": "sil", "pau": "sil", "epi": "sil",
    }  # fmt: skip
    for label, target in merges.items():
        assert ps.timit_to_39([label.upper()]) == [target], label
    assert ps.timit_to_39(["q", "dx", "b"]) == ["dx", "b"]


def test_arpabet_round_trips_through_ipa():
    for phone in ps.ARPABET:
        assert ps.ipa_to_arpabet(ps.arpabet_to_ipa([phone])) == [phone]
        for stress in "012":
            ipa = ps.arpabet_to_ipa([phone.upper() + stress])
            assert ps.ipa_to_arpabet(ipa) == [phone], (phone, stress)
    for phone in TIMIT_EXTRAS:
        assert ps.ipa_to_arpabet(ps.arpabet_to_ipa([phone]), convention="timit") == [phone]


def test_arpabet_to_ipa_reads_cmudict_stress():
    assert ps.arpabet_to_ipa(["AH0", "AH1", "ER0", "ER1"]) != ps.arpabet_to_ipa(
        ["AH1", "AH1", "ER1", "ER1"]
    )
    assert ps.arpabet_to_ipa(["HH", "AH0", "|", "l", "ow1"])[2] == "|"
    assert ps.arpabet_to_ipa(["bcl", "b", "h#"]) == ps.arpabet_to_ipa(["b"])


@pytest.mark.parametrize("voice", VOICES)
def test_every_espeak_phone_maps(voice: str):
    prons = _phonemize_or_skip(WORDS, voice)
    phones = {p for pron in prons for p in pron}
    assert not phones - ps.ESPEAK_PHONES
    for convention in ("cmu", "timit"):
        for pron in prons:
            arpabet = ps.ipa_to_arpabet(pron, convention=convention)
            assert set(arpabet) <= set(ps.TIMIT61)
            assert set(ps.ipa_to_39(pron, convention=convention)) <= set(ps.TIMIT39)
        if convention == "cmu":
            assert set(ps.ipa_to_arpabet(sorted(phones))) <= set(ps.ARPABET)
    assert {ps.broad_class(p) for p in phones} <= set(ps.PHONE_CLASSES.values())


def test_known_words_en_us():
    prons = _phonemize_or_skip(list(CMUDICT), "en-us")
    for (word, expected), pron in zip(CMUDICT.items(), prons):
        assert " ".join(ps.ipa_to_arpabet(pron)) == expected, word


def test_timit_convention_matches_timit_transcription():
    # TIMIT writes "button" b ah q en and "water" w ao dx axr
    button, water = _phonemize_or_skip(["button", "water"], "en-us")
    assert ps.ipa_to_39(button, convention="timit") == ps.timit_to_39(["b", "ah", "q", "en"])
    assert ps.ipa_to_39(water, convention="timit") == ps.timit_to_39(["w", "ao", "dx", "axr"])


def test_long_o_is_goat_unless_an_r_follows():
    (go,) = _phonemize_or_skip(["go"], "en-gb-x-gbclan")
    (boring,) = _phonemize_or_skip(["boring"], "en-us")
    assert ps.ipa_to_arpabet(go) == ["g", "ow"]
    assert ps.ipa_to_arpabet(boring)[1] == "ao"


def test_word_separator_passes_through():
    assert ps.ipa_to_arpabet(["h", "aɪ", "|", "oːɹ"]) == ["hh", "ay", "|", "ao", "r"]
    assert ps.ipa_to_39(["ʒ", "|", "ɔː"]) == ["sh", "|", "aa"]
    assert ps.arpabet_to_39(["ZH", "|", "SIL", "sp"]) == ["sh", "|", "sil", "sil"]


def test_unknown_phones_are_named():
    with pytest.raises(ps.UnknownPhoneError, match="'ç'"):
        ps.ipa_to_arpabet(["h", "ç", "iː"])
    assert ps.ipa_to_arpabet(["h", "ç", "iː"], strict=False) == ["hh", "iy"]
    with pytest.raises(ps.UnknownPhoneError, match="'XX1'"):
        ps.arpabet_to_39(["AH0", "XX1"])
    with pytest.raises(ps.UnknownPhoneError, match="'kx'"):
        ps.arpabet_to_ipa(["k", "kx"])
    with pytest.raises(ps.UnknownPhoneError, match="'ah1'"):
        ps.timit_to_39(["ah1"])
    with pytest.raises(ValueError, match="convention"):
        ps.ipa_to_arpabet(["a"], convention="ipa")


def test_espeak_phone_table_is_nfc_and_stress_free():
    for phone in ps.ESPEAK_PHONES:
        assert unicodedata.normalize("NFC", phone) == phone
        assert "ˈ" not in phone and "ˌ" not in phone
    assert ps.ipa_to_arpabet(["ˈaɪ", "a:"]) == ["ay", "aa"]  # stress and ASCII leftovers


def test_broad_classes_cover_timit39():
    assert set(ps.PHONE_CLASSES) == set(ps.TIMIT39)
    expected = {
        "iː": "vowel", "aɪɚ": "diphthong", "oːɹ": "vowel", "t": "stop", "ʔ": "stop",
        "tʃ": "affricate", "x": "fricative", "n̩": "nasal", "ɹ": "approximant",
    }  # fmt: skip
    for phone, cls in expected.items():
        assert ps.broad_class(phone) == cls, phone
    with pytest.raises(ps.UnknownPhoneError):
        ps.broad_class("|")
    with pytest.raises(ps.UnknownPhoneError):
        ps.broad_class("☃")
    assert ps.broad_class("|", unknown="other") == ps.broad_class("☃", unknown="other") == "other"
    assert ps.broad_class("t", unknown="other") == "stop"


def test_agrees_with_speechocean762_lexicon():
    lexicon_path = SHARED_DATA_DIR / "speechocean762-train" / "lexicon.txt"
    if not lexicon_path.exists():
        pytest.skip(f"{lexicon_path} is absent")
    from rapidfuzz.distance import Levenshtein

    lexicon: dict[str, list[str]] = {}
    for line in lexicon_path.read_text().splitlines():
        word, _, pron = line.partition("\t")
        if word.isalpha():
            lexicon.setdefault(word.lower(), pron.split())
    words = sorted(lexicon)[:1000]
    # the lexicon is British (non-rhotic, syllabic consonants without a schwa)
    prons = _phonemize_or_skip(words, "en-gb")
    errors = total = 0
    for word, pron in zip(words, prons):
        reference = ps.arpabet_to_39(lexicon[word])
        errors += Levenshtein.distance(reference, ps.ipa_to_39(pron, convention="timit"))
        total += len(reference)
    assert errors / total < 0.1


def test_generic_ipa_comes_into_espeak_phones_by_the_module_table():
    # hama writes affricates with a tie bar and NURSE as ɝ; a stray diacritic is no phone
    heard = ["t͡ʃ", "ɝ", "d͡ʒ", "‿", "̪", "ɟ", "ʝ", "|", "ɔ", "i"]
    assert ps.generic_ipa_to_espeak(heard) == ["tʃ", "ɜː", "dʒ", "ɡ", "j", "|", "ɔ", "i"]
    assert ps.ipa_to_39(ps.generic_ipa_to_espeak(heard)) == [
        "ch", "er", "jh", "g", "y", "|", "aa", "iy"]  # fmt: skip
    with pytest.raises(ps.UnknownPhoneError, match="'kʰ', 't͈'"):
        ps.generic_ipa_to_espeak(["kʰ", "m", "t͈"])
    assert ps.generic_ipa_to_espeak(["kʰ", "m", "t͈"], strict=False) == ["m"]
