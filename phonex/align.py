"""Forced alignment: where each token of a known transcript sits in a clip's emissions.

The best CTC path (:func:`phonex.viterbi.forced_align`) becomes token spans, then words with
their phones in seconds (each with a confidence, :mod:`phonex.confidence`), then TextGrid tiers.
Scoring alignments against reference times is :mod:`phonex.align_eval`.

Options of :func:`align`:

- ``unknown="wildcard"``: a word the model cannot spell is one ``*`` token matching any
  non-blank frame, as ctc-forced-aligner's ``<star>`` (default ``"error"``).
- ``window_seconds``: the emissions of a long clip come window by window; one Viterbi search
  still runs over the whole clip.
- ``blanks="extend"`` (default): a phone ends where the next one starts, not after its CTC
  spike, except before a pause between words (``blanks="keep"``: its own frames only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from phonex.intervals import AlignmentError, Interval
from phonex.phonemes import WORD_SEP, brief
from phonex.viterbi import forced_align

WILDCARD = "*"  # unknown="wildcard": the token, and phone label, of a word the model cannot spell
PAUSE_SECONDS = 0.1  # blanks="extend": a longer gap between two words is a pause
SILENCE_DB = -60  # a quieter clip has no speech to align (the path would be arbitrary)
WINDOW_OVERLAP_SECONDS = 4.0  # window_seconds: context shared by neighbouring windows
# Punctuation around a word (phonemizer's marks, dashes, quotes) is not spoken: not in its label.
_PUNCTUATION = ";:,.!?¡¿—–-…\"«»“”‘’'()[]{}"


# --- spans ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSpan:
    """One aligned token: frames ``[start, end)`` and its mean frame probability."""

    token: str
    start: int
    end: int
    score: float


def token_spans(
    path: torch.Tensor, scores: torch.Tensor, tokens: Sequence[str], blank: int = 0
) -> list[TokenSpan]:
    """The frames of each transcript token in a forced path (repeats are split by a blank).

    Args:
        path, scores: from :func:`forced_align`.
        tokens: the transcript's token strings, in order (one per target id).
    """
    ids, runs, t = path.tolist(), [], 0
    while t < len(ids):
        start = t
        while t < len(ids) and ids[t] == ids[start]:
            t += 1
        if ids[start] != blank:
            runs.append((start, t))
    if len(runs) != len(tokens):
        raise AlignmentError(f"the path spells {len(runs)} tokens, the transcript {len(tokens)}")
    return [
        TokenSpan(token, start, end, float(scores[start:end].float().exp().mean()))
        for token, (start, end) in zip(tokens, runs)
    ]


@dataclass(frozen=True)
class WordSpan:
    """An aligned word with its phone (or character) spans; times in seconds."""

    word: str
    start: float
    end: float
    phones: list[tuple[str, float, float, float]]  # (token, start, end, score)
    gop: tuple[float | None, ...] = ()  # per phone: phonex.confidence; () when not computed

    def to_json(self) -> dict:
        gops = self.gop or (None,) * len(self.phones)
        return {
            "word": self.word, "start": round(self.start, 4), "end": round(self.end, 4),
            "phones": [{"phone": p, "start": round(s, 4), "end": round(e, 4),
                        "score": round(c, 4), "gop": None if g is None else round(g, 3)}
                       for (p, s, e, c), g in zip(self.phones, gops)],
        }  # fmt: skip


def word_spans(
    spans: Sequence[TokenSpan], words: Sequence[str], seconds_per_frame: float
) -> list[WordSpan]:
    """Group token spans into words at the ``|`` separators; frames become seconds.

    Args:
        spans: token spans of the whole transcript, separators included.
        words: the words, as many as separator-delimited groups.
        seconds_per_frame: the model's frame shift (20 ms for wav2vec2).
    """
    groups: list[list[TokenSpan]] = [[]]
    for span in spans:
        if span.token == WORD_SEP:
            groups.append([])
        else:
            groups[-1].append(span)
    groups = [g for g in groups if g]
    if len(groups) != len(words):
        raise AlignmentError(f"{len(words)} words but {len(groups)} aligned token groups")
    out = []
    for word, group in zip(words, groups):
        phones = [(s.token, s.start * seconds_per_frame, s.end * seconds_per_frame, s.score)
                  for s in group]  # fmt: skip
        out.append(WordSpan(word, phones[0][1], phones[-1][2], phones))
    return out


def extend_spans(spans: Sequence[TokenSpan], frames: int, pause_frames: int) -> list[TokenSpan]:
    """Spans where each phone ends where the next one starts, except before a pause.

    CTC phones are spikes: their own frames end well before the phone does. A phone before a
    pause between words (over ``pause_frames`` frames), and the last phone, keep one frame more.

    Args:
        spans: token spans of the whole transcript; ``|`` separators are kept as they are.
        frames: the clip's frames, which no span passes.
        pause_frames: the longest gap between words that is not a pause.
    """
    out = list(spans)
    phones = [i for i, s in enumerate(spans) if s.token != WORD_SEP]
    for i, j in zip(phones, [*phones[1:], None]):
        span = spans[i]
        if j is None:
            end = min(span.end + 1, frames)
        elif j == i + 1 or spans[j].start - span.end <= pause_frames:  # same word, or no pause
            end = spans[j].start
        else:
            end = span.end + 1
        out[i] = replace(span, end=end)
    return out


def to_tiers(words: Sequence[WordSpan]) -> dict[str, list[Interval]]:
    """``{"words": [...], "phones": [...]}`` interval tiers for :func:`phonex.intervals.write_textgrid`."""
    return {
        "words": [Interval(w.word, w.start, w.end) for w in words],
        "phones": [Interval(p, s, e) for w in words for p, s, e, _ in w.phones],
    }


# --- a model, a clip and its text -----------------------------------------------------------


def transcript_words(text: str) -> list[str]:
    """The words of a transcript, as their labels: the text split at spaces, the punctuation
    around each word dropped (``"tablets,"`` -> ``"tablets"``); punctuation alone is no word."""
    return [w for w in (t.strip(_PUNCTUATION) for t in text.split()) if w]


def transcript_tokens(loaded, text: str, language: str | None = None) -> tuple[list[str], str]:
    """The words of ``text`` (:func:`transcript_words`) and the tokens the model should emit.

    Returns:
        the word labels, and one token string with ``|`` between the words' tokens.

    Raises:
        AlignmentError: an empty text, or naming each word espeak-ng cannot read as written.
    """
    words, groups, problems = _word_tokens(loaded, text, language)
    if problems:
        raise AlignmentError(_cannot_align(text, words, problems))
    return words, f" {WORD_SEP} ".join(groups)


def stand_ins(loaded, tokens: str) -> dict[str, str]:
    """Phones of ``tokens`` the model lacks -> the model's phone nearest in articulatory features.

    The drug-name model has no ð (no drug name has one): to align "the", θ stands in for it, and
    the aligned span keeps the label ð. Only espeak-ng phones the model knows are candidates.
    """
    from phonex.metrics import feature_distance
    from phonex.phonesets import ESPEAK_PHONES

    own = [t for t in loaded.vocab.tokens if t in ESPEAK_PHONES]
    missing = {t for t in tokens.split() if t != WORD_SEP and t not in loaded.vocab.index}
    return {p: min(own, key=lambda q: feature_distance(p, q)) for p in sorted(missing)}


def _word_labels(words: list[str], tokens: str) -> list[str]:
    """One label per ``|``-separated token group: the words, or word1.. when counts differ."""
    groups = [g for g in tokens.split(WORD_SEP) if g.split()]
    if len(groups) != len(words):  # reference tokens that split a word ("10mg")
        return [f"word{i + 1}" for i in range(len(groups))]
    return words


def _word_tokens(
    loaded, text: str, language: str | None
) -> tuple[list[str], list[str], dict[int, str]]:
    """The words of ``text``, each word's tokens (``""``: none) and why, by word index, a word
    has none (:func:`phonex.lexicon.pronounce`: not readable as written, or no phones)."""
    from phonex.data import char_tokens
    from phonex.lexicon import pronounce

    words = transcript_words(text)
    if not words:
        raise AlignmentError(f"nothing to align: the text {brief(text)} is empty or punctuation")
    if loaded.units == "chars":
        return words, [char_tokens(w, loaded.vocab) for w in words], {}
    language, whole = language or loaded.language, " ".join(words)
    groups = pronounce([whole], language)[0].get(whole, "").split(WORD_SEP)
    if len(groups) == len(words) and all(g.split() for g in groups):  # read in context
        return words, [g.strip() for g in groups], {}
    # a word read as several ("3x": "three ex") or as none: each word alone, its groups joined
    prons, problems = pronounce(words, language)
    groups = [" ".join(prons.get(w, "").replace(WORD_SEP, " ").split()) for w in words]
    return words, groups, {i: problems[w] for i, w in enumerate(words) if w in problems}


def _cannot_align(text: str, words: list[str], problems: dict[int, str]) -> str:
    listed = "; ".join(f"{brief(words[i])}: {why}" for i, why in sorted(problems.items())[:5])
    return f"cannot align {brief(text)}: {listed}"


def _transcript(loaded, text: str, language: str | None, tokens: str | None,
                unknown: str) -> tuple[list[str], list[str]]:  # fmt: skip
    """The word labels and the tokens to align, ``|`` between words (see :func:`align`)."""
    if tokens is None:
        words, groups, problems = _word_tokens(loaded, text, language)
    else:
        groups = [g.strip() for g in tokens.split(WORD_SEP) if g.split()]
        words, problems = _word_labels(text.split(), tokens), {}
    for i, group in enumerate(groups):
        missing = sorted({t for t in group.split() if t not in loaded.vocab.index})
        if missing and i not in problems:
            problems[i] = f"needs tokens the model does not have: {' '.join(missing)} ({group})"
    if problems and unknown == "error":
        raise AlignmentError(_cannot_align(text, words, problems))
    groups = [WILDCARD if i in problems else g for i, g in enumerate(groups)]
    return words, f" {WORD_SEP} ".join(groups).split()


def with_wildcard(log_probs: torch.Tensor, blank: int = 0) -> torch.Tensor:
    """``[frames, classes + 1]``: one more class, the wildcard, scoring each frame's best non-blank.

    The max, not the logsumexp: the wildcard then scores like the best real token, so on a known
    phone's frames it at most ties that phone; the logsumexp (all non-blank probability) would
    beat it there and pull frames of the neighbouring words into the unknown one.
    """
    non_blank = log_probs.index_fill(1, torch.tensor([blank], device=log_probs.device), -math.inf)
    return torch.cat([log_probs, non_blank.amax(1, keepdim=True)], dim=1)


def windowed_emissions(loaded, wave: np.ndarray, window_seconds: float) -> torch.Tensor:
    """Emissions ``[frames, vocab]`` of a clip of any length, from overlapping windows.

    Windows start on frame boundaries, so their frames are the clip's own; each frame comes from
    the window where it is furthest from an edge (the cut is in the middle of each overlap).
    """
    from phonex.models import emissions

    hop, rate = loaded.model.config.inputs_to_logits_ratio, loaded.sample_rate  # hop: 1 frame
    size = round(window_seconds * rate / hop) * hop
    overlap = round(min(WINDOW_OVERLAP_SECONDS, window_seconds / 2) * rate / hop) * hop
    if overlap < 2 * hop:
        raise AlignmentError(
            f"window_seconds={window_seconds:g} is too short: windows must "
            f"overlap by at least two frames"
        )
    last = max(len(wave) - size, 0) // hop * hop  # the last window ends at the clip's end
    starts = [*range(0, last, size - overlap), last]
    waves = [wave[s : s + size] for s in starts[:-1]] + [wave[last:]]
    pieces = emissions(loaded, waves, batch_size=1)  # one at a time: memory is the point
    first = [s // hop for s in starts]
    ends = [f + len(p) for f, p in zip(first, pieces)]
    cuts = [0, *((a + b) // 2 for a, b in zip(first[1:], ends[:-1])), ends[-1]]
    log_probs = torch.cat([p[lo - f : hi - f]
                           for p, f, lo, hi in zip(pieces, first, cuts, cuts[1:])])  # fmt: skip
    frames = int(loaded.model._get_feat_extract_output_lengths(torch.tensor(len(wave))))
    if len(log_probs) != frames:
        raise AlignmentError(f"the windows give {len(log_probs)} frames, the clip has {frames}")
    return log_probs


def align(loaded, wave: np.ndarray, text: str, language: str | None = None,
          max_seconds: float = 60.0, backend: str = "auto", tokens: str | None = None,
          unknown: str = "error", window_seconds: float | None = None,
          blanks: str = "extend", calibration=None, log_probs=None) -> list[WordSpan]:  # fmt: skip
    """Align ``text`` to a clip: words with their phone (or character) spans, in seconds.

    Args:
        loaded: a :class:`phonex.models.LoadedModel`.
        wave: mono waveform at ``loaded.sample_rate``.
        text: the words spoken; phonemized with espeak-ng for a phone model, which reads
            digits and symbols as words (``"2"`` -> ``t uː``, labelled ``2``). The word labels
            are the text's words without the punctuation around them (:func:`transcript_words`).
            A word with letters outside the language's script, or symbols espeak-ng would read
            as other words, is refused by name (:func:`phonex.phonemes.text_problem`).
        language: espeak-ng language (default: the model's).
        max_seconds: without windows, longer clips are refused (memory grows with length).
        backend: see :func:`forced_align`.
        tokens: the token string to align instead of phonemizing ``text`` (e.g. a manifest's
            reference phones, ``"n oʊ | ..."``); when its word groups are not the text's words
            one to one, the words are labelled ``word1``, ``word2``, ...
        unknown: for a word with tokens the model lacks, that espeak-ng would not read as
            written or that phonemizes to nothing: ``"error"`` (:class:`AlignmentError`) or
            ``"wildcard"``: one token, any non-blank frame (:func:`with_wildcard`), its span
            one phone ``"*"``.
        window_seconds: run the model in windows this long (:func:`windowed_emissions`), for
            clips of any length; only the model pass is windowed, the Viterbi search runs once
            over the whole clip (numba and torchaudio keep ``[frames, states]`` int8 back
            pointers).
        blanks: ``"extend"`` (:func:`extend_spans`, pauses over :data:`PAUSE_SECONDS`; twice
            as many offsets within 20 ms of espeak-ng's) or ``"keep"`` (its own frames only).
        calibration: a :class:`phonex.boundaries.BoundaryCalibration` fitted on training
            voices: onsets move from the CTC spike to where the phone begins.
        log_probs: the clip's ``[frames, vocab]`` emissions when a pass that also kept hidden
            states has computed them already (the model is then not run again).

    Returns:
        the words, each phone with its times, its mean frame probability (``score``) and its
        goodness of pronunciation (``WordSpan.gop``, :mod:`phonex.confidence`: how much more
        its own frames favour it than any other phone, in nats; None for a wildcard).
    """
    from phonex.audio import rms_db
    from phonex.confidence import token_gops, with_gops
    from phonex.models import emissions
    from phonex.recognize import min_samples

    if unknown not in ("error", "wildcard") or blanks not in ("keep", "extend"):
        raise ValueError(f"unknown={unknown!r}, blanks={blanks!r}: expected error or wildcard, "
                         "keep or extend")  # fmt: skip
    if rms_db(wave) < SILENCE_DB:
        raise AlignmentError(
            f"the clip is silent (level {rms_db(wave):.0f} dBFS, under {SILENCE_DB} dBFS): there "
            "is no speech to align the text to"
        )
    seconds = len(wave) / loaded.sample_rate
    if log_probs is None and len(wave) < min_samples(loaded):
        raise AlignmentError(
            f"the clip is {seconds:.3f} s, shorter than the model's receptive field "
            f"({min_samples(loaded) / loaded.sample_rate:.3f} s): it gives no frame to align"
        )
    if window_seconds is None and seconds > max_seconds:
        raise AlignmentError(
            f"the clip is {seconds:.1f} s, longer than max_seconds={max_seconds:g}: cut it into "
            "sentences and align each, raise max_seconds, or use window_seconds"
        )
    words, token_list = _transcript(loaded, text, language, tokens, unknown)
    if log_probs is None and window_seconds is None:
        (log_probs,) = emissions(loaded, [wave])
    elif log_probs is None:
        log_probs = windowed_emissions(loaded, wave, window_seconds)
    vocab = loaded.vocab
    if WILDCARD in token_list:
        log_probs = with_wildcard(log_probs, vocab.blank_id)
    ids = [vocab.index.get(t, len(vocab)) for t in token_list]  # the wildcard: the extra class
    path, scores = forced_align(log_probs, ids, vocab.blank_id, backend)
    spans = token_spans(path, scores, token_list, vocab.blank_id)
    gops = token_gops(log_probs, spans, ids, vocab.tokens)  # on the spans' own frames
    frame = loaded.model.config.inputs_to_logits_ratio / loaded.sample_rate
    if blanks == "extend":
        spans = extend_spans(spans, len(path), round(PAUSE_SECONDS / frame))
    words = with_gops(word_spans(spans, words, frame), spans, gops)
    return calibration.apply(words) if calibration is not None else words
