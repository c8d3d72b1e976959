"""hama (PyPI): an IPA phone recogniser with its own grapheme-to-phoneme model.

Recognition ranks the lexicon by phone edit distance between what the recogniser hears and
hama's own pronunciation of each entry (both in hama's symbols, so nothing is lost in mapping).
Its phones reach TIMIT-39 through :func:`phonex.phonesets.generic_ipa_to_espeak`; symbols with no
English counterpart (Korean aspirated or tense stops, rare in English speech) are dropped. It
cannot force-align a transcript: ``align`` returns its recognised phones with the times hama's
CTC spans give them (each phone from its first frame to the next phone's), and only phones that
match the reference are scored.
"""

from __future__ import annotations

from baselines import SAMPLE_RATE, TOP, System
from phonex.decode import fuzzy_rank
from phonex.intervals import Interval
from phonex.phonesets import generic_ipa_to_espeak, ipa_to_39


class HamaSystem(System):
    name = "hama"
    forced = False
    align_labels = "espeak"

    def __init__(self):
        import hama

        self.asr = hama.ASRModel()
        self.g2p = hama.G2PModel()
        self._prons: dict[str, str] = {}  # hama's G2P takes ~70 ms a name: once per run

    def pronunciation(self, word: str) -> str:
        if word not in self._prons:
            phones = self.g2p.predict(word).alignments
            self._prons[word] = " ".join(a.phoneme for a in phones if a.phoneme.strip())
        return self._prons[word]

    def heard(self, wave):
        return self.asr(wave, SAMPLE_RATE)

    def recognizer(self, words):
        prons = {word: [self.pronunciation(word)] for word in words}

        def recognize(wave):
            return [c.word for c in fuzzy_rank([self.heard(wave).phoneme_text], prons, TOP)[0]]

        return recognize

    def raw_phones(self, wave):
        return generic_ipa_to_espeak(self.heard(wave).phonemes, strict=False), "espeak"

    def transcribe(self, wave):
        return ipa_to_39(self.raw_phones(wave)[0])

    def align(self, wave, text, phones=None):
        out = []
        for span in self.asr.phoneme_spans(self.heard(wave)):
            for label in generic_ipa_to_espeak([span.phoneme], strict=False):
                out.append(Interval(label, span.start_ms / 1000, span.end_ms / 1000))
        return out


def load() -> HamaSystem:
    return HamaSystem()
