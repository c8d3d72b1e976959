"""Maps between phone sets: espeak-ng IPA, ARPAbet (CMUdict), TIMIT-61 and folded TIMIT-39.

TIMIT-39 (Lee and Hon 1989, as in Kaldi's ``timit/s5/conf/phones.60-48-39.map``) is the common
set everything is scored in: :func:`ipa_to_39`, :func:`arpabet_to_39` and :func:`timit_to_39`
bring espeak-ng phones, CMUdict pronunciations and TIMIT labels into it. The word separator ``|``
passes through every function unchanged.

espeak-ng phones map by the sound espeak-ng synthesises for the symbol, not by lexical set (a
regional voice is scored on what it says). Sounds CMUdict has no symbol for follow one of two
conventions: ``"cmu"`` (default; output within :data:`ARPABET`, as CMUdict spells words) or
``"timit"`` (TIMIT's extra labels, as TIMIT transcribes speech; speechocean762's British lexicon,
with syllabic consonants and no schwa, also agrees better with it).

Every ambiguous choice, in one place (espeak phone -> cmu / timit, and why):

==================  ==============  ===========  =========================================
espeak-ng           cmu             timit        why
==================  ==============  ===========  =========================================
ə ɐ                 ah              ax           schwa; ɐ is espeak's open schwa (about,
                                                 RP lettER); ax folds to ah
ᵻ                   ih              ix           en-us reduced vowel of -ed/-es; ix -> ih
ɚ                   er              axr          axr folds to er
ɜː ɜ əɹ ʌɹ əɪ       er              er           NURSE/lettER in every voice (ɜ əɹ ʌɹ
                                                 Scottish, əɪ NYC); RP's r-less ɜː too
ɾ                   t               dx           espeak-ng only flaps /t/ (its t#), so
                                                 CMUdict writes t; dx is a TIMIT-39 class
ʔ                   t               q (dropped)  only /t/ before syllabic n (button)
n̩ m̩ ŋ̩ l̩ əl          ah + n/m/ng/l   en em eng    CMUdict writes AH0 N; TIMIT one syllabic
                                    el           phone that folds to n/m/ng/l
ʉ ʉː                uw              ux           Scottish FOOT/GOOSE
x                   hh              hh           loch, Bach: kept a fricative (CMUdict's k
                                                 would count it as a stop in class probes)
ɬ                   l               l            Welsh ll (Llanelli)
ʍ                   w               w            Scottish wh; CMUdict has no wh
r                   r               r            trill (Scottish voice, German names)
t̪ d̪                 t d             t d          en-029 stops θ/ð: the sound is a stop
ɒ ɑː ɑ aː aa ɑə     aa              aa           one open back vowel in ARPAbet (LOT,
                                                 BATH, START; aa/ɑə are en-029's [aː])
a                   ae              ae           British/Caribbean TRAP
ɛə                  ae              ae           NYC tensed TRAP; TIMIT labels it ae
eə                  eh              eh           SQUARE, a long monophthong in espeak
e eʲ                eh              eh           Scottish [e] (happY, SQUARE)
ei                  iy              iy           West Midlands FLEECE (symbol unique to it)
əu                  uw              uw           West Midlands GOOSE (symbol unique to it)
ɔɪ oɪ               oy              oy           also West Midlands PRICE [ɔɪ]: said as oy
oː                  ow, ao before   same         GOAT in Scottish/Lancaster; en-us FORCE
                    ɹ/r                          only appears before ɹ (boring)
o oə ɔə             ao              ao           Scottish/Caribbean NORTH/FORCE
iə                  iy ah           iy ax        two syllables in en-us (area, idea)
ʊə aɪə aʊə aɪʊ      uh/ay/aw + ah   + ax         centring glide written as a schwa
oːɹ ɔːɹ ɑːɹ ɪɹ ɛɹ   vowel + r       vowel + r    en-us r-coloured units split, as CMUdict
ʊɹ ʉɹ aɪɚ aɪʊɹ      (aɪɚ: ay er)    (ay axr)     (aɪʊɹ is en-us's rendering of hour)
ɑ̃ ɔ̃                  aa n, ao n      same         French nasal vowels (croissant), CMUdict
==================  ==============  ===========  =========================================

Other systems' phones come into the same set through these maps (the baselines of
``benchmarks/baselines``): CMUdict/pocketsphinx ARPAbet through :func:`arpabet_to_39`, a Whisper
transcript through espeak-ng (:func:`phonex.phonemes.phonemize`, so its phones are espeak-ng's),
and generic IPA such as hama's through :func:`generic_ipa_to_espeak` first:

==================  ==============  =========================================================
generic IPA         espeak-ng       why
==================  ==============  =========================================================
t͡ʃ d͡ʒ (any tie)    tʃ dʒ           the tie bar only says "one phone"; espeak-ng writes none
ɝ                   ɜː              stressed r-coloured NURSE (en-us ɜː, er)
ɟ                   ɡ               voiced palatal stop: English /g/ before a front vowel
ʝ                   j               voiced palatal fricative: a strongly articulated /j/
bare diacritics,    (dropped)       a lone ̪ ̩ ͡ or the ‿ linker, emitted as its own token,
‿                                   marks no phone of its own
==================  ==============  =========================================================

Every phone espeak-ng 1.51 wrote for ~6900 words and ~700 sentences in en-us, en-gb, en-gb-x-rp,
en-029, en-gb-scotland, en-gb-x-gbclan, en-gb-x-gbcwmd and en-us-nyc is mapped (see
:data:`ESPEAK_PHONES`); any other phone raises :class:`UnknownPhoneError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from phonex.phonemes import WORD_SEP, normalize_phone

ARPABET = (
    "aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g", "hh",
    "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th", "uh",
    "uw", "v", "w", "y", "z", "zh",
)  # fmt: skip
TIMIT61 = (
    "aa", "ae", "ah", "ao", "aw", "ax", "ax-h", "axr", "ay", "b", "bcl", "ch", "d", "dcl", "dh",
    "dx", "eh", "el", "em", "en", "eng", "epi", "er", "ey", "f", "g", "gcl", "h#", "hh", "hv",
    "ih", "ix", "iy", "jh", "k", "kcl", "l", "m", "n", "ng", "nx", "ow", "oy", "p", "pau", "pcl",
    "q", "r", "s", "sh", "t", "tcl", "th", "uh", "uw", "ux", "v", "w", "y", "z", "zh",
)  # fmt: skip
TIMIT39 = (
    "aa", "ae", "ah", "aw", "ay", "b", "ch", "d", "dh", "dx", "eh", "er", "ey", "f", "g", "hh",
    "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "sil", "t", "th",
    "uh", "uw", "v", "w", "y", "z",
)  # fmt: skip

# TIMIT-61 labels that fold into another class (None: deleted); all others map to themselves.
TIMIT61_TO_39: dict[str, str | None] = {
    **{p: p for p in TIMIT61},
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l",
    "em": "m", "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw", "q": None,
    **{s: "sil" for s in ("bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "h#", "pau", "epi")},
}  # fmt: skip

PHONE_CLASSES: dict[str, str] = {
    **dict.fromkeys(("iy", "ih", "eh", "ae", "ah", "uw", "uh", "aa", "er"), "vowel"),
    **dict.fromkeys(("ey", "ay", "oy", "aw", "ow"), "diphthong"),
    **dict.fromkeys(("b", "d", "g", "p", "t", "k", "dx"), "stop"),  # dx: a short alveolar closure
    **dict.fromkeys(("ch", "jh"), "affricate"),
    **dict.fromkeys(("f", "v", "th", "dh", "s", "z", "sh", "hh"), "fricative"),
    **dict.fromkeys(("m", "n", "ng"), "nasal"),
    **dict.fromkeys(("l", "r", "w", "y"), "approximant"),  # liquids and glides
    "sil": "silence",
}

# espeak-ng IPA -> ARPAbet, "cmu" convention. Choices are explained in the module docstring.
_IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # consonants
    "p": ("p",), "b": ("b",), "t": ("t",), "d": ("d",), "k": ("k",), "ɡ": ("g",), "g": ("g",),
    "f": ("f",), "v": ("v",), "θ": ("th",), "ð": ("dh",), "s": ("s",), "z": ("z",),
    "ʃ": ("sh",), "ʒ": ("zh",), "h": ("hh",), "x": ("hh",), "tʃ": ("ch",), "dʒ": ("jh",),
    "m": ("m",), "n": ("n",), "ŋ": ("ng",), "l": ("l",), "ɫ": ("l",), "ɬ": ("l",),
    "ɹ": ("r",), "r": ("r",), "w": ("w",), "ʍ": ("w",), "j": ("y",),
    "ɾ": ("t",), "ʔ": ("t",), "t̪": ("t",), "d̪": ("d",),
    "n̩": ("ah", "n"), "m̩": ("ah", "m"), "ŋ̩": ("ah", "ng"), "l̩": ("ah", "l"), "əl": ("ah", "l"),
    # monophthongs
    "iː": ("iy",), "i": ("iy",), "ɪ": ("ih",), "ᵻ": ("ih",), "e": ("eh",), "eʲ": ("eh",),
    "ɛ": ("eh",), "eə": ("eh",), "æ": ("ae",), "a": ("ae",), "ɛə": ("ae",),
    "ɑː": ("aa",), "ɑ": ("aa",), "aː": ("aa",), "aa": ("aa",), "ɑə": ("aa",), "ɒ": ("aa",),
    "ɔː": ("ao",), "ɔ": ("ao",), "o": ("ao",), "oə": ("ao",), "ɔə": ("ao",),
    "ʌ": ("ah",), "ə": ("ah",), "ɐ": ("ah",),
    "ɜː": ("er",), "ɜ": ("er",), "ɚ": ("er",), "əɹ": ("er",), "ʌɹ": ("er",), "əɪ": ("er",),
    "ʊ": ("uh",), "uː": ("uw",), "u": ("uw",), "ʉː": ("uw",), "ʉ": ("uw",), "əu": ("uw",),
    # diphthongs
    "eɪ": ("ey",), "eː": ("ey",), "ei": ("iy",), "aɪ": ("ay",), "ɔɪ": ("oy",), "oɪ": ("oy",),
    "aʊ": ("aw",), "æʊ": ("aw",), "ʌʉ": ("aw",), "oʊ": ("ow",), "əʊ": ("ow",), "ʌʊ": ("ow",),
    "oː": ("ow",),
    # centring glides and triphthongs
    "iə": ("iy", "ah"), "ʊə": ("uh", "ah"), "aɪə": ("ay", "ah"), "aʊə": ("aw", "ah"),
    "aɪʊ": ("aw", "ah"),
    # en-us r-coloured units
    "oːɹ": ("ao", "r"), "ɔːɹ": ("ao", "r"), "ɑːɹ": ("aa", "r"), "ɪɹ": ("ih", "r"),
    "ɛɹ": ("eh", "r"), "ʊɹ": ("uh", "r"), "ʉɹ": ("uw", "r"), "aɪɚ": ("ay", "er"),
    "aɪʊɹ": ("aw", "er"),
    # nasal vowels of French loans
    "ɑ̃": ("aa", "n"), "ɔ̃": ("ao", "n"),
}  # fmt: skip

# "timit" convention: TIMIT's labels for what CMUdict spells with its 39 phones.
_TIMIT_OVERRIDES: dict[str, tuple[str, ...]] = {
    "ə": ("ax",), "ɐ": ("ax",), "ᵻ": ("ix",), "ɚ": ("axr",), "ɾ": ("dx",), "ʔ": ("q",),
    "n̩": ("en",), "m̩": ("em",), "ŋ̩": ("eng",), "l̩": ("el",), "əl": ("el",),
    "ʉ": ("ux",), "ʉː": ("ux",), "iə": ("iy", "ax"), "ʊə": ("uh", "ax"),
    "aɪə": ("ay", "ax"), "aʊə": ("aw", "ax"), "aɪʊ": ("aw", "ax"), "aɪɚ": ("ay", "axr"),
    "aɪʊɹ": ("aw", "axr"),
}  # fmt: skip

_CONVENTIONS = {"cmu": _IPA_TO_ARPABET, "timit": {**_IPA_TO_ARPABET, **_TIMIT_OVERRIDES}}
_RHOTIC = ("ɹ", "r")
_BEFORE_RHOTIC = {"oː": ("ao",)}  # en-us FORCE: written oː when its r links to a vowel

#: Every espeak-ng phone this module maps.
ESPEAK_PHONES: frozenset[str] = frozenset(_IPA_TO_ARPABET)

_ARPABET_TO_IPA: dict[str, str] = {
    "aa": "ɑː", "ae": "æ", "ah": "ʌ", "ao": "ɔː", "aw": "aʊ", "ay": "aɪ", "b": "b", "ch": "tʃ",
    "d": "d", "dh": "ð", "eh": "ɛ", "er": "ɜː", "ey": "eɪ", "f": "f", "g": "ɡ", "hh": "h",
    "ih": "ɪ", "iy": "iː", "jh": "dʒ", "k": "k", "l": "l", "m": "m", "n": "n", "ng": "ŋ",
    "ow": "oʊ", "oy": "ɔɪ", "p": "p", "r": "ɹ", "s": "s", "sh": "ʃ", "t": "t", "th": "θ",
    "uh": "ʊ", "uw": "uː", "v": "v", "w": "w", "y": "j", "z": "z", "zh": "ʒ",
    # TIMIT-only labels; nx, hv and ax-h have no espeak-ng phone of their own
    "ax": "ə", "ax-h": "ə", "axr": "ɚ", "ix": "ᵻ", "ux": "ʉ", "dx": "ɾ", "q": "ʔ", "el": "əl",
    "em": "m̩", "en": "n̩", "eng": "ŋ̩", "nx": "n", "hv": "h",
}  # fmt: skip
_UNSTRESSED_IPA = {"ah": "ə", "er": "ɚ", "iy": "i"}  # CMUdict AH0, ER0, IY0 (happY)
_SILENT = frozenset(("bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "h#", "pau", "epi", "sil", "sp"))
_STRESSED = re.compile(r"^([a-z]+(?:-h)?)([012])?$")


class UnknownPhoneError(ValueError):
    """A phone that is not in the phone set a function reads."""


def _unknown(kind: str, missing: list[str], phones: Sequence[str], hint: str = "") -> None:
    """Raise one error that names every missing phone and the sequence it came from."""
    names = ", ".join(repr(p) for p in dict.fromkeys(missing))
    context = " ".join(phones)
    raise UnknownPhoneError(f"no mapping for {kind} phone(s) {names} (in {context!r}){hint}")


def ipa_to_arpabet(
    phones: Sequence[str], strict: bool = True, convention: str = "cmu"
) -> list[str]:
    """espeak-ng IPA phones to lowercase ARPAbet; one phone may give several.

    Args:
        phones: espeak-ng phones as :func:`phonex.phonemes.phonemize` writes them (stress marks
            and ASCII leftovers are normalised); ``|`` passes through.
        strict: raise on phones outside :data:`ESPEAK_PHONES`; if False they are dropped.
        convention: ``"cmu"`` (output within :data:`ARPABET`) or ``"timit"`` (TIMIT-61 labels
            for flaps, glottal stops, syllabic consonants, reduced vowels); see the module table.

    Returns:
        ARPAbet phones, without stress digits.

    Raises:
        UnknownPhoneError: naming every unmapped phone, when ``strict``.
    """
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be 'cmu' or 'timit', got {convention!r}")
    table = _CONVENTIONS[convention]
    norm = [p if p == WORD_SEP else normalize_phone(p) for p in phones]
    norm = [p for p in norm if p]
    out: list[str] = []
    missing: list[str] = []
    for i, phone in enumerate(norm):
        following = norm[i + 1] if i + 1 < len(norm) else ""
        if phone == WORD_SEP:
            out.append(phone)
        elif phone in _BEFORE_RHOTIC and following in _RHOTIC:
            out.extend(_BEFORE_RHOTIC[phone])
        elif phone in table:
            out.extend(table[phone])
        else:
            missing.append(phone)
    if missing and strict:
        _unknown("espeak-ng", missing, norm, "; strict=False drops them")
    return out


def _split_stress(phone: str) -> tuple[str, str]:
    """``"AH0"`` -> ``("ah", "0")``; ``"ax-h"`` -> ``("ax-h", "")``."""
    match = _STRESSED.match(phone.strip().lower())
    return (match.group(1), match.group(2) or "") if match else (phone, "")


def arpabet_to_ipa(phones: Iterable[str]) -> list[str]:
    """ARPAbet (CMUdict, either case, stress digits allowed) to espeak-ng en-us style IPA.

    Stress picks the reduced vowel: ``AH0`` -> ə, ``AH1`` -> ʌ, ``ER0`` -> ɚ, ``IY0`` -> i.
    TIMIT-only labels (ax, dx, en...) are read too; closures and pauses have no IPA phone and are
    dropped. ``|`` passes through.

    Args:
        phones: e.g. ``["HH", "AY1", "D", "R", "AA1", "K", "S", "IH0", "Z", "IY2", "N"]``.

    Returns:
        IPA phones, one per input phone that is not a closure or pause.

    Raises:
        UnknownPhoneError: naming every phone that is not ARPAbet.
    """
    phones = list(phones)
    out: list[str] = []
    missing: list[str] = []
    for raw in phones:
        phone, stress = _split_stress(raw)
        if raw == WORD_SEP:
            out.append(raw)
        elif phone in _SILENT:
            continue
        elif phone in _ARPABET_TO_IPA:
            reduced = _UNSTRESSED_IPA.get(phone) if stress == "0" else None
            out.append(reduced or _ARPABET_TO_IPA[phone])
        else:
            missing.append(raw)
    if missing:
        _unknown("ARPAbet", missing, phones)
    return out


def timit_to_39(phones: Iterable[str]) -> list[str]:
    """TIMIT-61 labels to the 39 folded classes: q removed, closures and pauses -> ``sil``.

    Args:
        phones: TIMIT labels (either case, no stress digits); ``|`` passes through.

    Returns:
        TIMIT-39 classes; consecutive ``sil`` are kept (as TIMIT's closure + burst pairs).

    Raises:
        UnknownPhoneError: naming every label outside :data:`TIMIT61`.
    """
    phones = list(phones)
    out: list[str] = []
    missing: list[str] = []
    for raw in phones:
        phone = raw.strip().lower()
        if raw == WORD_SEP:
            out.append(raw)
        elif phone not in TIMIT61_TO_39:
            missing.append(raw)
        elif TIMIT61_TO_39[phone] is not None:
            out.append(TIMIT61_TO_39[phone])
    if missing:
        _unknown("TIMIT-61", missing, phones)
    return out


def arpabet_to_39(phones: Iterable[str]) -> list[str]:
    """ARPAbet (CMUdict with stress digits, or TIMIT's extra labels) to TIMIT-39.

    Args:
        phones: e.g. ``["W", "AO1", "T", "ER0"]``; ``sil``/``sp`` (aligner silences) -> ``sil``.

    Returns:
        TIMIT-39 classes (``ao`` -> ``aa``, ``zh`` -> ``sh``, ...).

    Raises:
        UnknownPhoneError: naming every phone that is not ARPAbet.
    """
    phones = list(phones)
    plain = [p if p == WORD_SEP else _split_stress(p)[0] for p in phones]
    plain = ["pau" if p in ("sil", "sp") else p for p in plain]
    missing = [raw for raw, p in zip(phones, plain) if p != WORD_SEP and p not in TIMIT61_TO_39]
    if missing:
        _unknown("ARPAbet", missing, phones)
    return timit_to_39(plain)


def ipa_to_39(phones: Sequence[str], strict: bool = True, convention: str = "cmu") -> list[str]:
    """espeak-ng IPA phones to TIMIT-39, through :func:`ipa_to_arpabet` then folding.

    Args:
        phones: espeak-ng phones; ``|`` passes through.
        strict: raise on unmapped phones; if False they are dropped.
        convention: ``"cmu"`` (flaps -> t, syllabic n -> ah n) or ``"timit"`` (flaps -> dx,
            syllabic n -> n, glottal stops dropped).

    Returns:
        TIMIT-39 classes.
    """
    return arpabet_to_39(ipa_to_arpabet(phones, strict=strict, convention=convention))


# Generic IPA (hama's phone recognizer and G2P) -> espeak-ng phones; see the module table.
_GENERIC_TO_ESPEAK = {"ɝ": "ɜː", "ɟ": "ɡ", "ʝ": "j"}
_TIE = "\u0361"  # combining double inverted breve: t͡ʃ
_NOT_A_PHONE = re.compile(r"^[\u0300-\u036f\u203f]*$")  # bare combining marks, the ‿ linker


def generic_ipa_to_espeak(phones: Iterable[str], strict: bool = True) -> list[str]:
    """IPA phones as other systems write them (e.g. hama's ``t͡ʃ``, ``ɝ``) to espeak-ng's.

    Args:
        phones: one phone per item; ``|`` passes through.
        strict: raise on a phone that is neither espeak-ng's nor in the module table; if False,
            it is dropped (count what was dropped by comparing lengths).

    Returns:
        espeak-ng phones (within :data:`ESPEAK_PHONES`), ready for :func:`ipa_to_39`.

    Raises:
        UnknownPhoneError: naming every phone with no mapping, when ``strict``.
    """
    phones = list(phones)
    out: list[str] = []
    missing: list[str] = []
    for raw in phones:
        if raw == WORD_SEP:
            out.append(raw)
            continue
        phone = normalize_phone(raw.replace(_TIE, ""))
        if _NOT_A_PHONE.match(phone):
            continue
        phone = _GENERIC_TO_ESPEAK.get(phone, phone)
        if phone in ESPEAK_PHONES:
            out.append(phone)
        else:
            missing.append(raw)
    if missing and strict:
        _unknown("IPA", missing, phones, "; strict=False drops them")
    return out


def broad_class(ipa_phone: str, unknown: str | None = None) -> str:
    """Broad class of one espeak-ng phone (``"vowel"``, ``"nasal"``...; see PHONE_CLASSES).

    ``unknown``: the class of a phone outside :data:`ESPEAK_PHONES` (default: raise).

    The TIMIT convention is used so that syllabic consonants stay consonants (n̩ -> nasal); a
    unit that expands to several phones takes the class of its first (oːɹ -> vowel, aɪɚ ->
    diphthong); ʔ, whose TIMIT q has no 39 class, is a stop.

    Raises:
        UnknownPhoneError: for a phone outside :data:`ESPEAK_PHONES`.
    """
    try:
        arpabet = ipa_to_arpabet([ipa_phone], convention="timit")
    except UnknownPhoneError:
        if unknown is None:
            raise
        return unknown
    if not arpabet or arpabet[0] == WORD_SEP:
        if unknown is not None:
            return unknown
        raise UnknownPhoneError(f"{ipa_phone!r} is not a phone")
    if arpabet[0] == "q":
        return "stop"
    return PHONE_CLASSES[timit_to_39(arpabet[:1])[0]]
