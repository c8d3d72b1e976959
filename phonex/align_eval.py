"""Forced alignments scored against reference phone times: espeak-ng's own, and TIMIT's hands.

- :func:`evaluate_alignment`: synthetic clips, whose reference phones are the ones aligned, so
  every phone has its own onset and offset error.
- TIMIT (``timit-sample-dev``): the transcript is phonemized by espeak-ng, aligned, and scored
  under FA-Bench's TIMIT protocol by the one scorer, :func:`phonex.metrics.score_alignment`
  (:func:`score_timit`). :func:`timit_phone_table` pairs each aligned phone with the hand-labelled
  unit it matches, which is what a boundary calibration is fitted on, and
  :func:`cross_validate` fits one on all speakers but one and scores it on that one, for each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from phonex.align import WordSpan, align
from phonex.intervals import AlignmentError, Interval


def evaluate_alignment(loaded, rows, progress: bool = True, blanks: str = "extend",
                       calibration=None):  # fmt: skip
    """Align each row's reference phones and compare with its reference phone times.

    Args:
        loaded: the model.
        rows: manifest rows with ``phones`` and an ``alignment`` file (a TextGrid with a
            ``phones`` tier, e.g. espeak-ng's own times).
        blanks, calibration: see :func:`phonex.align.align`.

    Returns:
        one row per phone: ``id, speaker, phone, ref_start, ref_end, start, end, score, gop,
        onset_error, offset_error`` (seconds, absolute).
    """
    from tqdm.auto import tqdm

    from phonex.audio import load_audio
    from phonex.intervals import read_alignment
    from phonex.metrics import phone_boundary_errors

    records = []
    for row in tqdm(rows, desc="aligning", disable=not progress):
        words = align(loaded, load_audio(row.audio, loaded.sample_rate), row.text,
                      tokens=row.phones, blanks=blanks, calibration=calibration)  # fmt: skip
        aligned = [p for w in words for p in w.phones]
        gops = [g for w in words for g in (w.gop or (None,) * len(w.phones))]
        reference = [r for r in read_alignment(row.alignment)["phones"] if r.label.strip()]
        try:
            errors = phone_boundary_errors(reference, [Interval(*p[:3]) for p in aligned])
        except ValueError:
            raise AlignmentError(f"{row.alignment}: reference phones differ from {row.phones!r}")
        for ref, (phone, start, end, score), gop, (onset, offset) in zip(
            reference, aligned, gops, errors
        ):
            records.append({
                "id": row.id, "speaker": row.speaker, "phone": phone,
                "ref_start": ref.start, "ref_end": ref.end, "start": start, "end": end,
                "score": score, "gop": gop, "onset_error": onset, "offset_error": offset,
            })  # fmt: skip
    return pd.DataFrame.from_records(records)


# --- TIMIT ------------------------------------------------------------------------------------


@dataclass
class TimitRun:
    """Alignments of TIMIT utterances: ``words[i]`` for ``reference[i]``, or its failure.

    Attributes:
        reference: :func:`phonex.timit.read_timit_reference` pairs (row, hand labels).
        words: the aligned words (an empty list for a failed utterance).
        failed: utterance id -> why it could not be aligned.
    """

    reference: list
    words: list[list[WordSpan]]
    failed: dict[str, str]

    def calibrated(self, calibration) -> TimitRun:
        """The same alignments with ``calibration`` applied (no new Viterbi search)."""
        words = [calibration.apply(w) if w else w for w in self.words]
        return TimitRun(self.reference, words, dict(self.failed))

    def subset(self, keep: Callable[[object], bool]) -> TimitRun:
        """The utterances whose row ``keep`` accepts (e.g. one speaker's)."""
        chosen = [k for k, (row, _) in enumerate(self.reference) if keep(row)]
        ids = {self.reference[k][0].id for k in chosen}
        return TimitRun([self.reference[k] for k in chosen], [self.words[k] for k in chosen],
                        {i: why for i, why in self.failed.items() if i in ids})  # fmt: skip


def timit_emissions(loaded, reference: Sequence, batch_size: int = 8) -> list:
    """``[frames, vocab]`` emissions of each TIMIT utterance, batched (one model load, reused
    by every alignment and calibration that follows)."""
    from phonex.audio import load_audio
    from phonex.models import emissions

    waves = [load_audio(row.audio, loaded.sample_rate) for row, _ in reference]
    return emissions(loaded, waves, batch_size)


def align_timit(loaded, reference: Sequence, log_probs: Sequence | None = None,
                calibration=None, blanks: str = "extend", unknown: str = "error") -> TimitRun:  # fmt: skip
    """Align each utterance's transcript (phonemized by espeak-ng in the model's language).

    Args:
        loaded: the model.
        reference: :func:`phonex.timit.read_timit_reference` pairs.
        log_probs: :func:`timit_emissions` (computed here when None).
        calibration, blanks, unknown: see :func:`phonex.align.align` (``unknown="error"``: an
            utterance with a word the model cannot spell fails; ``"wildcard"``: the word is
            one unscored ``*`` phone).
    """
    from phonex.audio import load_audio

    log_probs = log_probs if log_probs is not None else timit_emissions(loaded, reference)
    words, failed = [], {}
    for (row, _), emitted in zip(reference, log_probs):
        wave = load_audio(row.audio, loaded.sample_rate)
        try:
            words.append(align(loaded, wave, row.text, log_probs=emitted, blanks=blanks,
                               calibration=calibration, unknown=unknown))  # fmt: skip
        except AlignmentError as err:
            words.append([])
            failed[row.id] = f"{row.audio}: {err}"
    return TimitRun(list(reference), words, failed)


def _phones(words: Sequence[WordSpan]) -> list[Interval]:
    return [Interval(p, s, e) for w in words for p, s, e, _ in w.phones]


def _hand_labels(row, labels):
    from phonex.comparison import Reference

    return Reference(labels.phones, labels.words, "timit", row.alignment)


def score_timit(run: TimitRun) -> dict:
    """The FA-Bench TIMIT table row of a run (:func:`phonex.metrics.summarize_alignments`),
    with ``failed`` utterances counted (they are scored as no alignment at all)."""
    from phonex.comparison import summary
    from phonex.metrics import summarize_alignments

    scores = [summary(_hand_labels(row, labels), _phones(words))
              for (row, labels), words in zip(run.reference, run.words)]  # fmt: skip
    return {**summarize_alignments(scores), "failed": len(run.failed)}


def timit_phone_table(run: TimitRun) -> pd.DataFrame:
    """One row per aligned phone, paired with the hand-labelled unit it matches.

    Returns:
        ``id, speaker, phone, start, end, score, gop, label, ref_start, ref_end, onset_error,
        offset_error``; ``label`` is the paired TIMIT-39 unit, and it and the reference columns
        are missing (None/NaN) for a phone the hand labels do not confirm (the speaker said
        another phone, or none). The rows of each utterance are in order, as
        :func:`phonex.boundaries.fit_calibration` needs.
    """
    from phonex.comparison import match_phones

    records = []
    for (row, labels), words in zip(run.reference, run.words):
        phones = [p for w in words for p in w.phones]
        gops = [g for w in words for g in (w.gop or (None,) * len(w.phones))]
        matches = match_phones(_hand_labels(row, labels), _phones(words))
        for (phone, start, end, score), gop, match in zip(phones, gops, matches):
            records.append({
                "id": row.id, "speaker": row.speaker, "phone": phone, "start": start,
                "end": end, "score": score, "gop": gop,
                "label": match.label if match else None,
                "ref_start": match.start if match else None,
                "ref_end": match.end if match else None,
                "onset_error": match.onset_error if match else None,
                "offset_error": match.offset_error if match else None,
            })  # fmt: skip
    return pd.DataFrame.from_records(records).astype({"ref_start": float, "ref_end": float,
                                                      "onset_error": float,
                                                      "offset_error": float})  # fmt: skip


def cross_validate(run: TimitRun, fit: Callable[[pd.DataFrame], object]) -> tuple[TimitRun, list]:
    """Leave-one-speaker-out: for each speaker, a calibration fitted on the others' phones
    (:func:`timit_phone_table`) is applied to that speaker's alignments.

    Args:
        run: uncalibrated alignments of every speaker.
        fit: phone table -> calibration (e.g. :func:`phonex.boundaries.fit_calibration`).

    Returns:
        the calibrated run (every utterance scored by a calibration that never saw its
        speaker) and the calibration of each fold, in speaker order.
    """
    table = timit_phone_table(run)
    speakers = sorted({row.speaker for row, _ in run.reference})
    pieces, fits = [], []
    for speaker in speakers:
        calibration = fit(table[table.speaker != speaker])
        pieces.append(run.subset(lambda row, s=speaker: row.speaker == s).calibrated(calibration))
        fits.append(calibration)
    order = {row.id: k for k, (row, _) in enumerate(run.reference)}
    pairs = sorted(((r, w) for p in pieces for r, w in zip(p.reference, p.words)),
                   key=lambda pair: order[pair[0][0].id])  # fmt: skip
    failed = {i: why for p in pieces for i, why in p.failed.items()}
    return TimitRun([r for r, _ in pairs], [w for _, w in pairs], failed), fits


def boundary_errors(run: TimitRun) -> np.ndarray:
    """``[boundaries]`` absolute errors (s) of every paired protocol boundary of a run."""
    from phonex.comparison import summary

    errors = [summary(_hand_labels(row, labels), _phones(words)).errors
              for (row, labels), words in zip(run.reference, run.words)]  # fmt: skip
    return np.concatenate(errors) if errors else np.array([])


def gop_quartiles(gop: pd.Series) -> pd.Series:
    """Each phone's GOP quartile, ``lowest``, ``2nd``, ``3rd``, ``highest`` (ties split in
    order, so four equal groups whatever the values)."""
    return pd.qcut(gop.rank(method="first"), 4, labels=["lowest", "2nd", "3rd", "highest"])


# --- figures --------------------------------------------------------------------------------


def plot_timit_alignment(wave: np.ndarray, sample_rate: int, words: Sequence[WordSpan],
                         pair, title: str = ""):  # fmt: skip
    """Waveform and spectrogram of a TIMIT utterance: the aligned phones (white, top) over its
    hand labels (cyan, bottom) and words.

    Args:
        wave: ``[samples]``.
        words: :func:`phonex.align.align` of the utterance.
        pair: its :func:`phonex.timit.read_timit_reference` entry (row, hand labels).
    """
    from phonex.comparison import draw_reference
    from phonex.plots import plot_speech

    fig = plot_speech(wave, sample_rate, _phones(words), title=title)
    draw_reference(_hand_labels(*pair), *fig.axes[:2])
    return fig


def plot_confidence(table: pd.DataFrame):
    """Left: the GOP of phones the hand labels confirm and of those they contradict. Right, by
    GOP quartile: the share confirmed, and the share of confirmed onsets within 20 ms.

    Args:
        table: :func:`timit_phone_table` rows (``gop``, ``label``, ``onset_error``).
    """
    import matplotlib.pyplot as plt

    table = table.dropna(subset=["gop"])
    confirmed = table.label.notna()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    bins = np.linspace(table.gop.quantile(0.01), table.gop.quantile(0.99), 40)
    for mask, name in ((confirmed, "confirmed by the hand labels"), (~confirmed, "contradicted")):
        left.hist(table.gop[mask], bins=bins, alpha=0.6, density=True, label=name)
    left.set(xlabel="GOP (nats)", ylabel="density", title="Per-phone confidence")
    left.legend(fontsize=8)
    quartile = gop_quartiles(table.gop)
    within = (table.onset_error <= 0.02 + 1e-9)[confirmed]
    shares = pd.DataFrame({
        "phones confirmed": confirmed.groupby(quartile, observed=True).mean(),
        "onsets within 20 ms": within.groupby(quartile[confirmed], observed=True).mean(),
    })  # fmt: skip
    (100 * shares).plot.bar(ax=right, rot=0)
    right.set(xlabel="GOP quartile", ylabel="%", ylim=(0, 100), title="By confidence")
    fig.tight_layout()
    return fig
