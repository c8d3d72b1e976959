"""Recognising a spoken word from a lexicon given at run time, and measuring it.

A :class:`Recognizer` is a CTC model plus a compiled lexicon: audio -> emissions -> the CTC
log-likelihood of every word (:func:`phonex.decode.ctc_log_likelihoods`) -> top-k words. A
lexicon always has a best word, even for noise, so each result also says how much of that word
the model actually heard: the phone agreement between the greedy transcript and the word's
pronunciation. Below :data:`LOW_CONFIDENCE_AGREEMENT` (silence, noise, a word outside the
lexicon) the result is marked low-confidence. A word too long for a clip (more phones than the
clip has frames) cannot be scored: its score is ``-inf`` (``null`` in JSON) and it ranks last. A
clip too short for every word, or for the model's receptive field, is refused by name
(:class:`ClipError`).

:func:`evaluate_recognition` runs a recognizer over manifest rows, clean and with noise at given
SNRs, next to the seed project's transcript-then-fuzzy-match baseline, one table row per clip and
condition, for :mod:`phonex.metrics` and the notebooks.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from phonex import augment, lexicon
from phonex.audio import AudioError, load_audio
from phonex.corpus import Utterance
from phonex.data import char_tokens
from phonex.decode import (
    Candidate,
    compile_lexicon,
    ctc_log_likelihoods,
    fuzzy_rank,
    greedy_decode,
    top_candidates,
)
from phonex.metrics import phone_edit_distance, rank_of
from phonex.models import LoadedModel, emissions, load_model
from phonex.phonemes import brief

# Below this agreement (1 - normalised phone edit distance between what the model heard and the
# best word) a result is low-confidence. On the offline model, clean held-out clips have a median
# of 1.0 and a minimum of 0.44; noise alone stays under 0.4 (notebook 04 draws the distributions).
LOW_CONFIDENCE_AGREEMENT = 0.5
# A lexicon entry longer than this is no name (a pasted paragraph): its CTC states would cost
# memory for every clip, so it is refused like an unpronounceable one.
MAX_NAME_CHARS = 100


class ClipError(AudioError):
    """A clip too short to score; the message starts with its name."""


def min_samples(loaded: LoadedModel, frames: int = 1) -> int:
    """The fewest samples giving ``frames`` model frames (``frames=1``: the receptive field)."""
    count = loaded.model._get_feat_extract_output_lengths
    low, high = 1, loaded.model.config.inputs_to_logits_ratio * (frames + 2)
    while int(count(torch.tensor(high))) < frames:
        high *= 2
    while low < high:  # bisect for the smallest length that gives ``frames`` frames
        mid = (low + high) // 2
        low, high = (mid + 1, high) if int(count(torch.tensor(mid))) < frames else (low, mid)
    return max(low, getattr(loaded.model.config, "n_fft", 0))  # Whisper's STFT needs a window


def short_clips(
    loaded: LoadedModel, waves: Sequence[np.ndarray], names: Sequence[str], frames: int = 1,
    shortest: str | None = None,
) -> dict[int, str]:  # fmt: skip
    """A message naming each clip from which the model computes fewer than ``frames`` frames.

    Args:
        loaded: the model.
        waves: mono waveforms at ``loaded.sample_rate``.
        names: the clips' files or ids, for the messages.
        frames: frames a clip needs (at least 1: the model's receptive field).
        shortest: the lexicon word that needs ``frames`` frames, for the message.

    Returns:
        ``{index in waves: message}``.
    """
    rate, frames = loaded.sample_rate, max(frames, 1)
    need = min_samples(loaded, frames)
    why = (f"the shortest lexicon word, {brief(shortest)}, needs {frames} model frames "
           f"({need / rate:.3f} s)" if shortest
           else f"under the model's receptive field ({need / rate:.3f} s, one frame)")  # fmt: skip
    return {
        i: f"{name}: too short: {len(wave) / rate:.3f} s of audio; {why}"
        for i, (wave, name) in enumerate(zip(waves, names))
        if len(wave) < need
    }


@dataclass
class Recognition:
    """The ranked words for one clip.

    Attributes:
        path: the file (or clip id) recognised.
        candidates: best first; ``score`` is ``log P(word | audio)`` in nats, ``-inf`` for a
            word too long for the clip (ranked last, in lexicon order).
        phones: what the model hears by greedy decoding (tokens, space-separated).
        agreement: 1 - normalised edit distance between ``phones`` and the best word's closest
            pronunciation (word separators ignored): 1 when the model heard exactly that word.
        low_confidence: ``agreement`` below the recognizer's threshold (always when no phone
            was heard).
    """

    path: str
    candidates: list[Candidate]
    phones: str
    agreement: float
    low_confidence: bool

    @property
    def word(self) -> str:
        return self.candidates[0].word

    def to_json(self) -> dict:
        """The ``phonex recognize --json`` record; strict JSON: a word too long is ``null``."""
        return {
            "path": self.path,
            "candidates": [
                {"word": c.word, "score": round(c.score, 4) if math.isfinite(c.score) else None}
                for c in self.candidates
            ],
            "low_confidence": self.low_confidence,
            "phones": self.phones,
        }


def phone_agreement(heard: str, pronunciation: str) -> float:
    """1 - normalised token edit distance, word separators ignored (0 when nothing was heard)."""
    return 1.0 - phone_edit_distance(heard, pronunciation)


def lexicon_pronunciations(
    words: Sequence[str], loaded: LoadedModel, languages: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """What the model should emit for each word: phone strings, or characters for a char model.

    Args:
        words: lexicon entries (words or multi-word names).
        loaded: the model; its ``units`` and ``language`` decide the form.
        languages: espeak-ng languages whose pronunciations all count as variants (default:
            the model's language).

    Returns:
        ``{word: [variant, ...]}``, and ``{word: reason}`` for the words with no variant
        (over :data:`MAX_NAME_CHARS`, not readable as written, phonemized to nothing), which
        :func:`phonex.decode.compile_lexicon` names.
    """
    problems = {w: f"longer than {MAX_NAME_CHARS} characters, not a name"
                for w in words if len(w) > MAX_NAME_CHARS}  # fmt: skip
    variants: dict[str, list[str]] = {w: [] for w in words}
    words = [w for w in words if w not in problems]
    if loaded.units == "chars":
        variants.update({w: [char_tokens(w, loaded.vocab)] for w in words})
        return variants, problems
    for language in languages or [loaded.language]:
        prons, refused = lexicon.pronounce(words, language)
        for word, pron in prons.items():
            variants[word].append(pron)
        for word, why in refused.items():
            problems.setdefault(word, why)
    return variants, {w: why for w, why in problems.items() if not variants.get(w)}


def _refuse(refused: dict[int, str]) -> None:
    if refused:
        raise ClipError("; ".join(refused.values()))


class Recognizer:
    """A CTC model and a lexicon: waveforms or files in, ranked words out.

    Args:
        model: a loaded model, or a model directory / registry name / hub id.
        words: the lexicon, e.g. :func:`phonex.lexicon.read_lexicon_file`. Repeats collapse.
        languages: espeak-ng languages for pronunciation variants (default: the model's).
        on_error: a word the model cannot spell (unpronounceable, or phones outside its
            vocabulary): ``"skip"`` with a warning naming it, or ``"raise"``.
        low_confidence_below: agreement threshold, see :data:`LOW_CONFIDENCE_AGREEMENT`.
        batch_size: clips per model forward pass.
    """

    def __init__(
        self,
        model: LoadedModel | str | Path,
        words: Sequence[str],
        languages: Sequence[str] | None = None,
        on_error: str = "skip",
        low_confidence_below: float = LOW_CONFIDENCE_AGREEMENT,
        batch_size: int = 16,
    ):
        self.loaded = model if isinstance(model, LoadedModel) else load_model(str(model))
        words = list(dict.fromkeys(words))
        if not words:
            raise lexicon.LexiconError("the lexicon is empty")
        prons, problems = lexicon_pronunciations(words, self.loaded, languages)
        self.lexicon = compile_lexicon(prons, self.loaded.vocab, on_error, problems)
        self.low_confidence_below = low_confidence_below
        self.batch_size = batch_size

    @property
    def words(self) -> list[str]:
        return self.lexicon.words

    def emissions(
        self, waves: Sequence[np.ndarray], names: Sequence[str] | None = None
    ) -> list[torch.Tensor]:
        """``[frames, vocab]`` log-probabilities per clip; :class:`ClipError` naming (by
        ``names``, default the index) each clip too short to give one frame."""
        names = names if names is not None else [str(i) for i in range(len(waves))]
        _refuse(short_clips(self.loaded, waves, names))
        return emissions(self.loaded, waves, self.batch_size)

    def too_short(self, waves: Sequence[np.ndarray], names: Sequence[str]) -> dict[int, str]:
        """``{index: message}`` of the clips too short for every word (:func:`short_clips`)."""
        word, frames = self.lexicon.shortest()
        return short_clips(self.loaded, waves, names, frames, word)

    def scorable(
        self, names: Sequence[str], waves: Sequence[np.ndarray]
    ) -> tuple[list[str], list[np.ndarray], list[str]]:
        """The names and waves of the clips long enough to score, and a message naming each
        clip that is not (so one short file does not cost the others their results)."""
        refused = self.too_short(waves, names)
        kept = [i for i in range(len(waves)) if i not in refused]
        return [names[i] for i in kept], [waves[i] for i in kept], list(refused.values())

    def rank(
        self, log_probs: Sequence[torch.Tensor], names: Sequence[str], top: int = 5
    ) -> list[Recognition]:
        """Recognitions from emission matrices (``[frames, vocab]`` each) already computed.

        Raises:
            ClipError: naming the clips with fewer frames than the shortest word needs.
        """
        word, frames = self.lexicon.shortest()
        short = [f"{name}: too short: {len(e)} model frames, and the shortest lexicon word, "
                 f"{brief(word)}, needs {frames}"
                 for e, name in zip(log_probs, names) if len(e) < frames]  # fmt: skip
        if short:
            raise ClipError("; ".join(short))
        lengths = torch.tensor([len(e) for e in log_probs])
        padded = torch.nn.utils.rnn.pad_sequence(list(log_probs), batch_first=True)
        scores = ctc_log_likelihoods(padded, self.lexicon, lengths)
        ranked = top_candidates(scores, self.lexicon.words, top)
        phones = greedy_decode(padded, self.loaded.vocab, lengths)
        prons = self.pronunciations
        out = []
        for name, cands, heard in zip(names, ranked, phones):
            agreement = max(phone_agreement(heard, v) for v in prons[cands[0].word])
            low = agreement < self.low_confidence_below
            out.append(Recognition(str(name), cands, heard, agreement, low))
        return out

    @property
    def pronunciations(self) -> dict[str, list[str]]:
        return self.lexicon.pronunciations()

    def recognize(
        self, waves: Sequence[np.ndarray], names: Sequence[str] | None = None, top: int = 5
    ) -> list[Recognition]:
        """Top-``top`` words for each waveform (mono, at the model's sample rate).

        Raises:
            ClipError: naming every clip too short for the shortest lexicon word (or for the
                model's receptive field); :meth:`scorable` sets them aside first.
        """
        names = names if names is not None else [str(i) for i in range(len(waves))]
        _refuse(self.too_short(waves, names))
        return self.rank(self.emissions(waves, names), names, top)


def transcribe(
    model: LoadedModel, waves: Sequence[np.ndarray], names: Sequence[str] | None = None
) -> list[str]:
    """Greedy CTC transcripts (phones, or characters for a char model), space-separated.

    Raises:
        ClipError: naming (by ``names``, default the index) each clip shorter than the model's
            receptive field, which gives no frame.
    """
    names = names if names is not None else [str(i) for i in range(len(waves))]
    _refuse(short_clips(model, waves, names))
    log_probs = emissions(model, waves)
    return [greedy_decode(e[None], model.vocab)[0] for e in log_probs]


@torch.no_grad()
def transcribe_seq2seq(
    model, processor, waves: Sequence[np.ndarray], sample_rate: int = 16000, batch_size: int = 8
) -> list[str]:
    """Text from a Speech2Text model (:func:`phonex.models.load_seq2seq`), for fuzzy matching."""
    model.eval()
    texts = []
    for start in range(0, len(waves), batch_size):
        batch = [np.asarray(w, dtype=np.float32) for w in waves[start : start + batch_size]]
        inputs = processor(batch, sampling_rate=sample_rate, return_tensors="pt", padding=True)
        ids = model.generate(
            inputs["input_features"],
            attention_mask=inputs.get("attention_mask"),
            max_new_tokens=32,
        )
        texts += processor.batch_decode(ids, skip_special_tokens=True)
    return [t.strip() for t in texts]


# --- evaluation -----------------------------------------------------------------------------


def noisy(
    wave: np.ndarray,
    snr_db: float | None,
    kind: str,
    key: str,
    sample_rate: int,
    babble: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """``wave`` with ``kind`` noise at ``snr_db`` (None: clean), seeded by ``key`` and the SNR."""
    if snr_db is None:
        return wave
    rng = np.random.default_rng([zlib.crc32(key.encode()), int(snr_db * 10) & 0xFFFF])
    return augment.add_noise(wave, snr_db, kind, rng, sample_rate, babble)


def condition_name(snr_db: float | None) -> str:
    return "clean" if snr_db is None else f"{snr_db:g} dB"


def evaluate_recognition(
    recognizer: Recognizer,
    rows: Sequence[Utterance],
    snrs: Sequence[float | None] = (None,),
    noise: str = "pink",
    top: int = 5,
    progress: bool = True,
) -> pd.DataFrame:
    """Recognise every row under every condition, with the fuzzy-match baseline beside it.

    Args:
        recognizer: model and lexicon; a row's ``text`` is its true word.
        rows: clips, e.g. the clean test rows of a manifest.
        snrs: conditions: ``None`` is clean, a number adds ``noise`` at that SNR in dB.
        noise: ``"white"``, ``"pink"`` or ``"babble"`` (babble mixes the other rows' clips).
        top: candidates kept per clip.

    Returns:
        one row per clip and condition: ``id, audio, speaker, engine, truth, condition, snr, words,
        scores, rank, phones, agreement, low_confidence, fuzzy_words, fuzzy_rank`` (rank 0: the truth
        is not among the ``top``).
    """
    rate = recognizer.loaded.sample_rate
    clean = [load_audio(r.audio, rate) for r in tqdm(rows, desc="loading", disable=not progress)]
    babble = clean if noise == "babble" else None
    prons = recognizer.pronunciations
    records = []
    for snr in snrs:
        waves = [noisy(w, snr, noise, r.id, rate, babble) for w, r in zip(clean, rows)]
        results = []
        batches = range(0, len(rows), 64)
        for start in tqdm(batches, desc=condition_name(snr), disable=not progress):
            chunk = waves[start : start + 64]
            ids = [r.id for r in rows[start : start + 64]]
            results += recognizer.recognize(chunk, ids, top)
        fuzzy = fuzzy_rank([r.phones for r in results], prons, top)
        for row, res, fz in zip(rows, results, fuzzy):
            records.append({
                "id": row.id, "audio": str(row.audio), "speaker": row.speaker, "engine": row.engine, "truth": row.text,
                "condition": condition_name(snr), "snr": snr,
                "words": [c.word for c in res.candidates],
                "scores": [c.score for c in res.candidates],
                "rank": rank_of(row.text, [c.word for c in res.candidates]),
                "phones": res.phones, "agreement": res.agreement, "low_confidence": res.low_confidence,
                "fuzzy_words": [c.word for c in fz],
                "fuzzy_rank": rank_of(row.text, [c.word for c in fz]),
            })  # fmt: skip
    return pd.DataFrame.from_records(records)
