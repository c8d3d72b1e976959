"""One English phone inventory for real speech, and the CTC vocabulary built from it.

A vocabulary built from a training split only knows the phones of that split: one built from drug
names lacks ð, so every "the" of real speech is an error it cannot avoid. :data:`ENGLISH_PHONES`
is every phone espeak-ng writes for ordinary English text in ``en-us`` and ``en-gb``, tokenized
the way :func:`phonex.phonemes.phonemize` tokenizes (stress dropped; length marks, diphthongs,
r-coloured vowels and syllabic consonants are one token each: ``iː``, ``aɪə``, ``ɑːɹ``, ``n̩``).

How it was derived (espeak-ng 1.51 through phonemizer, :func:`derive_inventory`): every text of
:func:`derivation_texts` phonemized in both accents: the transcripts of speechocean762-train
(1500 utterances), the words of its lexicon (2604), LJ Speech (32), pocketsphinx's and
mfa-samples' transcripts, scikit-learn's 318 English function words and the 565 drug names of
``phonex/data/drugs.csv``; 64 phones. timit-sample-dev's transcripts were left out (it is the
test set). The 117 000 lowercase words of CMUdict add only the phones of foreign names (x, r,
ɬ, ɑ̃, ɔ̃, nʲ, ɡʲ, o, iːː: 9, each rarer than 1 in 200 words); they are not ordinary English
and are left out, so they map to ``[UNK]``. Every phone here folds to TIMIT-39
(:func:`phonex.phonesets.ipa_to_39`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from phonex.phonemes import PAD, UNK, WORD_SEP, Vocabulary, phonemize

ACCENTS = ("en-us", "en-gb")

# fmt: off
ENGLISH_PHONES: tuple[str, ...] = (
    "a", "aɪ", "aɪə", "aɪɚ", "aʊ", "b", "d", "dʒ", "eə", "eɪ", "f", "h", "i", "iə", "iː", "j",
    "k", "l", "m", "n", "n̩", "oʊ", "oː", "oːɹ", "p", "s", "t", "tʃ", "uː", "v", "w", "z", "æ",
    "ð", "ŋ", "ɐ", "ɑː", "ɑːɹ", "ɒ", "ɔ", "ɔɪ", "ɔː", "ɔːɹ", "ə", "əl", "əʊ", "ɚ", "ɛ", "ɛɹ",
    "ɜː", "ɡ", "ɪ", "ɪɹ", "ɹ", "ɾ", "ʃ", "ʊ", "ʊə", "ʊɹ", "ʌ", "ʒ", "ʔ", "θ", "ᵻ",
)
# fmt: on


def english_vocabulary() -> Vocabulary:
    """The CTC vocabulary of :data:`ENGLISH_PHONES`: ``[PAD]`` (blank), ``[UNK]``, ``|``, phones.

    Ordered as :meth:`phonex.phonemes.Vocabulary.build` orders a built vocabulary (phones
    sorted), so the same phones always get the same ids.
    """
    return Vocabulary([PAD, UNK, WORD_SEP, *sorted(ENGLISH_PHONES)])


def derive_inventory(texts: Sequence[str], accents: Iterable[str] = ACCENTS) -> Counter[str]:
    """Phone counts of ``texts`` phonemized in each accent (words with no phones are skipped).

    Args:
        texts: sentences or words.
        accents: espeak-ng voices.

    Returns:
        phone -> count over all accents.
    """
    texts = [t for t in texts if re.search(r"\w", t)]
    counts: Counter[str] = Counter()
    for accent in accents:
        for pron in phonemize(texts, accent):
            counts.update(p for word in pron for p in word)
    return counts


def derivation_texts(shared_data: str | Path) -> list[str]:
    """The texts :data:`ENGLISH_PHONES` was derived from (those of the corpora found).

    Args:
        shared_data: the folder of real speech corpora (``../shared/data``).
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from phonex.lexicon import load_drugs

    root = Path(shared_data)
    texts = sorted(ENGLISH_STOP_WORDS) + [d.name for d in load_drugs()]
    ocean = root / "speechocean762-train"
    if (ocean / "text").exists():
        lines = (ocean / "text").read_text(encoding="utf-8").splitlines()
        texts += [line.split(maxsplit=1)[1] for line in lines if len(line.split()) > 1]
    if (ocean / "lexicon.txt").exists():
        lines = (ocean / "lexicon.txt").read_text(encoding="utf-8").splitlines()
        texts += sorted({line.split()[0].lower() for line in lines if line.strip()})
    for path in sorted(root.glob("ljspeech-32/*.psv")):
        lines = path.read_text(encoding="utf-8").splitlines()
        texts += [line.split("|", 1)[1] for line in lines if "|" in line]
    transcripts = [
        *root.glob("pocketsphinx-testdata/**/*.txt"),
        *root.glob("mfa-samples/lab/*.lab"),
    ]
    texts += [p.read_text(encoding="utf-8").strip() for p in sorted(transcripts)
              if p.name not in ("SOURCE.txt",)]  # fmt: skip
    return texts
