"""pocketsphinx (PyPI) with its bundled en-us acoustic model, phone language model and CMUdict.

- Phones: all-phone decoding with the bundled phone trigram (``en-us-phone.lm.bin``).
- Words: a JSGF grammar with one alternative per lexicon entry; ranked by the decoder's n-best
  list (often shorter than :data:`TOP`: a missing word has no rank).
- Pronunciations: CMUdict (the decoder's dictionary) word by word; a word it lacks, as most drug
  names, from espeak-ng through :func:`phonex.phonesets.ipa_to_arpabet`.
- Alignment: the decoder's two-pass phone alignment of a transcript. Given reference phones
  (espeak-ng IPA) it aligns those, as ARPAbet; given words, their pronunciations. It is tried
  with and without a leading optional pause (the decoder adds one only at the end), and the
  better-scoring alignment is kept.

espeak-ng's audio has runs of exact zeros, whose log energy breaks pocketsphinx's alignment, so
every clip gets dither of about one 16-bit step (seeded, so runs repeat).
"""

from __future__ import annotations

import os
import re

import numpy as np

from baselines import SAMPLE_RATE, TOP, System
from phonex.intervals import Interval
from phonex.lexicon import pronunciations
from phonex.phonemes import WORD_SEP
from phonex.phonesets import arpabet_to_39, ipa_to_arpabet

DITHER = 1.0 / 32768  # one 16-bit step (standard deviation)
NBEST = 50  # n-best hypotheses read when ranking (many repeat one word)
_FILLERS = re.compile(r"^(SIL|\+.*\+|<.*>|\[.*\])$", re.IGNORECASE)
_WORD = re.compile(r"[^a-z']+")


def pcm16(wave: np.ndarray) -> bytes:
    """16-bit PCM bytes of ``wave`` with seeded dither of :data:`DITHER`."""
    wave = np.asarray(wave, dtype=np.float64)
    wave = wave + DITHER * np.random.default_rng(len(wave)).standard_normal(len(wave))
    return (np.clip(wave, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class PocketsphinxSystem(System):
    name = "pocketsphinx"
    align_labels = "timit"

    def __init__(self):
        import pocketsphinx

        self.pocketsphinx = pocketsphinx
        model = pocketsphinx.get_model_path()
        self.phones = self._decoder(allphone=os.path.join(model, "en-us", "en-us-phone.lm.bin"))
        self.words = self._decoder()
        self.aligner = self._decoder()
        self._grammars: dict[tuple[str, ...], tuple[str, dict[str, str]]] = {}
        self._aligned_words = 0

    def _decoder(self, **options):
        return self.pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **options)

    @staticmethod
    def _decode(decoder, pcm: bytes) -> None:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()

    def arpabet(self, words: list[str]) -> list[list[str]]:
        """Each word's ARPAbet phones: CMUdict, else espeak-ng mapped to ARPAbet (in one call)."""
        out = [(self.aligner.lookup_word(w) or "").split() for w in words]
        missing = [w for w, phones in zip(words, out) if not phones]
        if missing:
            guessed = pronunciations(missing, on_error="skip")
            for i, word in enumerate(words):
                if not out[i] and word in guessed:
                    out[i] = [p for p in ipa_to_arpabet(guessed[word].split(), strict=False)
                              if p != WORD_SEP]  # fmt: skip
        return out

    @staticmethod
    def _add(decoder, entries: dict[str, list[str]]) -> None:
        """Add pseudo-words to the dictionary; the search is rebuilt once, after the last."""
        for n, (token, phones) in enumerate(entries.items()):
            if not phones:
                raise ValueError(f"pocketsphinx: no pronunciation for {token!r}")
            decoder.add_word(token, " ".join(p.upper() for p in phones), n == len(entries) - 1)

    def recognizer(self, words):
        words = list(dict.fromkeys(words))
        key = tuple(words)
        if key not in self._grammars:
            # one dictionary entry per lexicon entry, named uniquely (a word cannot be redefined)
            search = f"lexicon{len(self._grammars)}"
            tokens = {f"{search}_{i}": entry for i, entry in enumerate(words)}
            split = [[w for w in _WORD.split(entry.lower()) if w] for entry in words]
            vocabulary = list(dict.fromkeys(w for entry in split for w in entry))
            phones = dict(zip(vocabulary, self.arpabet(vocabulary)))
            self._add(self.words, {t: [p for w in entry for p in phones[w]]
                                   for t, entry in zip(tokens, split)})  # fmt: skip
            grammar = f"#JSGF V1.0;\ngrammar {search};\npublic <entry> = {' | '.join(tokens)};\n"
            self.words.add_jsgf_string(search, grammar)
            self._grammars[key] = (search, tokens)
        search, tokens = self._grammars[key]

        def recognize(wave):
            self.words.activate_search(search)
            self._decode(self.words, pcm16(wave))
            ranked = []
            for i, hypothesis in enumerate(self.words.nbest() or ()):  # None: nothing heard
                if i >= NBEST or len(ranked) == TOP:
                    break
                entry = tokens.get(hypothesis.hypstr.strip()) if hypothesis else None
                if entry is not None and entry not in ranked:
                    ranked.append(entry)
            return ranked

        return recognize

    def transcribe(self, wave):
        self._decode(self.phones, pcm16(wave))
        return arpabet_to_39(s.word for s in self.phones.seg() if not _FILLERS.match(s.word))

    def align(self, wave, text, phones=None):
        if phones:  # the reference phones, one pseudo-word per word
            per_word = [ipa_to_arpabet(w.split(), strict=False) for w in phones.split(WORD_SEP)]
        else:
            per_word = self.arpabet([w for w in _WORD.split(text.lower()) if w])
        entries = {}
        for arpabet in (p for p in per_word if p):  # a new pseudo-word each: no redefinition
            self._aligned_words += 1
            entries[f"utt{self._aligned_words}"] = arpabet
        self._add(self.aligner, entries)
        tokens = list(entries)
        pcm = pcm16(wave)
        best = None
        for transcript in (" ".join(tokens), "<sil> " + " ".join(tokens)):
            self.aligner.set_align_text(transcript)
            self._decode(self.aligner, pcm)
            score = self.aligner.hyp().best_score if self.aligner.hyp() else -np.inf
            if best is None or score > best[0]:
                best = (score, transcript)
        self.aligner.set_align_text(best[1])
        self._decode(self.aligner, pcm)
        self.aligner.set_alignment()
        self._decode(self.aligner, pcm)
        frame = 1.0 / self.aligner.config["frate"]
        return [Interval(p.name.lower(), p.start * frame, (p.start + p.duration) * frame)
                for word in self.aligner.get_alignment() for p in word
                if not _FILLERS.match(p.name)]  # fmt: skip


def load() -> PocketsphinxSystem:
    return PocketsphinxSystem()
