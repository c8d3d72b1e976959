"""Text to IPA phones through phonemizer's espeak-ng backend, and CTC phone vocabularies.

A pronunciation is kept as a list of words, each a list of phones; on disk (manifests, lexicon
caches) it is one string with phones separated by spaces and words by `` | ``, e.g.
``"h aɪ d ɹ ɑː k s ɪ z iː n"``. The same espeak-ng translation also drives synthesis
(:mod:`phonex.tts`), so the phones a clip is labelled with are the phones it speaks.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from phonex.espeak import find_espeak

WORD_SEP = "|"
PAD = "[PAD]"  # also the CTC blank
UNK = "[UNK]"

Pronunciation = list[list[str]]  # words -> phones

# espeak-ng writes a few phonemes in its ASCII notation even in IPA mode (some en-* voices).
_ASCII_TO_IPA = {"a:": "aː", "i:": "iː", "u:": "uː", "o:": "oː", "e:": "eː", "3:": "ɜː"}
_STRESS = "ˈˌ"

# Scripts an espeak-ng language reads besides Latin (by Unicode character name). A letter of any
# other script it names instead ("中" is "Chinese letter" in English) or reads by another
# language's rules, so such text is refused rather than silently mispronounced.
_SCRIPTS = {
    "ru": ("CYRILLIC",), "uk": ("CYRILLIC",), "bg": ("CYRILLIC",), "be": ("CYRILLIC",),
    "mk": ("CYRILLIC",), "sr": ("CYRILLIC",), "kk": ("CYRILLIC",), "ky": ("CYRILLIC",),
    "el": ("GREEK",), "grc": ("GREEK",), "ar": ("ARABIC",), "fa": ("ARABIC",),
    "ur": ("ARABIC",), "he": ("HEBREW",), "hi": ("DEVANAGARI",), "mr": ("DEVANAGARI",),
    "ne": ("DEVANAGARI",), "bn": ("BENGALI",), "ta": ("TAMIL",), "th": ("THAI",),
    "ka": ("GEORGIAN",), "hy": ("ARMENIAN",), "ko": ("HANGUL",), "cmn": ("CJK",),
    "yue": ("CJK",), "ja": ("CJK", "HIRAGANA", "KATAKANA"),
}  # fmt: skip


class PhonemizeError(ValueError):
    """A text that phonemizes to nothing (or that espeak-ng cannot read)."""


def brief(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters with the full length said."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(str(value))} characters)"


def text_problem(text: str, language: str = "en-us") -> str | None:
    """Why espeak-ng would not read ``text`` as written, or ``None`` when it would.

    Refused: letters outside the language's script (an English voice says "Chinese letter" for
    each Chinese character and spells Cyrillic letter by letter), symbols espeak-ng reads as
    words that are not part of the text ("®" is "registered", an emoji its name) and control
    or invisible characters. Digits, punctuation and symbols such as ``% & +`` are read as
    words the way espeak-ng reads them ("2" is "two").

    Args:
        text: a word, name or sentence.
        language: the espeak-ng language it is read in.

    Returns:
        a short reason naming the characters (with their Unicode names), or ``None``.
    """
    scripts = ("LATIN", *_SCRIPTS.get(language.split("-")[0].lower(), ()))
    foreign, symbols = [], []
    for char in dict.fromkeys(text):
        category = unicodedata.category(char)
        name = unicodedata.name(char, f"U+{ord(char):04X}")
        if category.startswith("L") and not name.startswith(scripts):
            foreign.append(f"{char!r} ({name})")
        elif category == "So" or (category.startswith("C") and not char.isspace()):
            symbols.append(f"{char!r} ({name})")
    reasons = []
    if foreign:
        written = " or ".join(s.title() for s in scripts)
        reasons.append(f"letters outside the {written} script: {', '.join(foreign[:3])}")
    if symbols:
        reasons.append(f"symbols or invisible characters: {', '.join(symbols[:3])}")
    return "; ".join(reasons) or None


def normalize_phone(phone: str, stress: bool = False) -> str:
    """NFC-normalise one espeak-ng phone, map ASCII leftovers to IPA, drop stress unless asked."""
    phone = unicodedata.normalize("NFC", phone.strip())
    if not stress:
        phone = phone.strip(_STRESS)
    return _ASCII_TO_IPA.get(phone, phone)


@lru_cache(maxsize=8)
def _backend(language: str, stress: bool):
    """One phonemizer backend per language, reused: creating one loads the library."""
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    found = find_espeak()
    EspeakWrapper.set_library(found.library)
    if found.data:
        EspeakWrapper.set_data_path(found.data)
    return EspeakBackend(
        language, with_stress=stress, words_mismatch="ignore", language_switch="remove-flags"
    )


def phonemize(
    texts: Sequence[str], language: str = "en-us", stress: bool = False
) -> list[Pronunciation]:
    """Phonemize many texts in one espeak-ng call.

    Args:
        texts: words or sentences.
        language: an espeak-ng language/voice such as ``en-us`` or ``en-gb-x-rp``.
        stress: keep primary/secondary stress marks.

    Returns:
        For each text, its words, each a list of IPA phones.

    Raises:
        PhonemizeError: naming the first text that phonemizes to nothing.
    """
    from phonemizer.separator import Separator

    for text in texts:
        if not text or not text.strip():
            raise PhonemizeError(f"cannot phonemize an empty text (entry {texts.index(text)})")
    separator = Separator(phone=" ", word=WORD_SEP, syllable=None)
    out = _backend(language, stress).phonemize(list(texts), separator=separator, strip=True)
    result = []
    for text, line in zip(texts, out):
        words = [
            [normalize_phone(p, stress) for p in word.split()] for word in line.split(WORD_SEP)
        ]
        words = [[p for p in w if p] for w in words]
        words = [w for w in words if w]
        if not words:
            raise PhonemizeError(f"{brief(text)} phonemizes to nothing in espeak-ng {language!r}")
        result.append(words)
    return result


def to_string(pron: Pronunciation) -> str:
    """``[["h", "aɪ"], ["d", "ɹ"]]`` -> ``"h aɪ | d ɹ"``."""
    return f" {WORD_SEP} ".join(" ".join(word) for word in pron)


def from_string(text: str) -> Pronunciation:
    """Inverse of :func:`to_string`."""
    words = [w.split() for w in text.split(WORD_SEP)]
    return [w for w in words if w]


def flatten(pron: Pronunciation) -> list[str]:
    """All phones of a pronunciation, word boundaries dropped."""
    return [p for word in pron for p in word]


def inventory(pronunciations: Iterable[str]) -> Counter[str]:
    """Phone counts over pronunciation strings (word separators not counted)."""
    return Counter(p for text in pronunciations for p in text.split() if p != WORD_SEP)


class Vocabulary:
    """CTC token vocabulary, saved as a HuggingFace-style ``vocab.json`` ({token: id}).

    Built vocabularies are ``[PAD]`` (= blank) at id 0, ``[UNK]``, ``|``, then sorted phones.
    Checkpoints' own vocabularies (``<pad>``, ``<unk>``, letters) load too.
    """

    def __init__(self, tokens: Sequence[str], pad: str = PAD, unk: str = UNK):
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary has duplicate tokens")
        if pad not in tokens:
            raise ValueError(f"vocabulary has no blank/padding token {pad}")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.pad, self.unk = pad, unk if unk in self.index else None

    @classmethod
    def from_index(cls, index: dict[str, int]) -> Vocabulary:
        """From ``{token: id}`` with ids 0..n-1; finds ``[PAD]``/``<pad>`` and ``[UNK]``/``<unk>``."""
        tokens = sorted(index, key=index.get)
        if [index[t] for t in tokens] != list(range(len(tokens))):
            raise ValueError("vocabulary ids are not 0..n-1")
        pad = next((t for t in (PAD, "<pad>") if t in index), PAD)
        unk = next((t for t in (UNK, "<unk>") if t in index), UNK)
        return cls(tokens, pad, unk)

    @classmethod
    def build(cls, pronunciations: Iterable[str]) -> Vocabulary:
        """From pronunciation strings of the *training* split only (dev/test symbols don't leak)."""
        phones = {p for text in pronunciations for p in text.split() if p != WORD_SEP}
        return cls([PAD, UNK, WORD_SEP, *sorted(phones)])

    @property
    def blank_id(self) -> int:
        return self.index[self.pad]

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, unknown: str = "error", word_sep: bool = True) -> list[int]:
        """Pronunciation string to ids.

        Args:
            text: ``"p1 p2 | p3"``.
            unknown: ``"error"`` to raise on phones outside the vocabulary, ``"unk"`` to map them
                to ``[UNK]``.
            word_sep: keep ``|`` tokens between words.
        """
        missing = sorted({p for p in text.split() if p not in self.index})
        if missing and (unknown == "error" or self.unk is None):
            raise PhonemizeError(
                f"phones not in the vocabulary: {' '.join(missing)} (in {text!r})"
            )
        ids = [self.index.get(p, self.index.get(self.unk)) for p in text.split()]
        return ids if word_sep else [i for i in ids if i != self.index.get(WORD_SEP)]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids to a pronunciation string (no CTC collapsing; see phonex.decode)."""
        return " ".join(self.tokens[i] for i in ids if i != self.blank_id)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.index, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls.from_index(json.loads(Path(path).read_text()))
