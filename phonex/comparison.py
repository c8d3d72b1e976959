"""A model's aligned phones beside reference labels, phone by phone, for the inspector.

The reference is a row's own ``alignment`` file: espeak-ng's true times (a TextGrid, IPA) for a
synthetic clip, or hand labels (TIMIT ``.phn``/``.wrd``, TIMIT-61) for real speech. When both
sides hold the same phones, each phone's onset and offset errors come from
:func:`phonex.metrics.phone_boundary_errors`. Otherwise (IPA against TIMIT-61) both become
FA-Bench protocol units (:func:`phonex.timit.protocol_units`: TIMIT-39, closures merged, silences
joined), paired in order as :func:`phonex.metrics.score_alignment` pairs them, and each model
phone takes the reference units paired with its own units. The utterance's summary is
:func:`phonex.metrics.score_alignment` in both cases. The drawing and table helpers at the end
are the inspector's (:mod:`phonex.widgets`) view of the comparison.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.transforms import blended_transform_factory

from phonex.intervals import Interval, read_alignment
from phonex.metrics import UtteranceBoundaries, phone_boundary_errors, score_alignment
from phonex.phonemes import WORD_SEP
from phonex.timit import SILENCE, Unit, paired_units, protocol_units

WILDCARD = "*"  # a word the model cannot spell, aligned as one token: no phone to compare


@dataclass(frozen=True)
class Reference:
    """A row's reference labels, in seconds.

    Attributes:
        phones, words: intervals; empty when the file has no such tier.
        labels: the phone set of ``phones``: ``"timit"`` (``.phn``) or ``"espeak"`` (IPA).
        source: the file they were read from.
    """

    phones: list[Interval]
    words: list[Interval]
    labels: str
    source: str


@dataclass(frozen=True)
class PhoneMatch:
    """The reference paired with one model phone; ``None`` where nothing was paired.

    Attributes:
        label: the reference label(s) paired with the phone (TIMIT-39 for TIMIT labels).
        start, end: the paired reference span in seconds.
        onset_error, offset_error: absolute differences in seconds.
    """

    label: str
    start: float | None
    end: float | None
    onset_error: float | None
    offset_error: float | None


def read_reference(path: str | Path) -> Reference:
    """The ``phones`` and ``words`` tiers of a TextGrid or a TIMIT ``.phn``/``.wrd`` file.

    Raises:
        phonex.intervals.AlignmentError: naming the file that cannot be read.
    """
    tiers = read_alignment(path)
    labels = "timit" if Path(path).suffix.lower() in (".phn", ".wrd") else "espeak"
    return Reference(tiers.get("phones", []), tiers.get("words", []), labels, str(path))


def _spoken(phones: Sequence[Interval]) -> list[Interval]:
    """Phones that can be compared: no word separators, gaps or wildcards."""
    return [p for p in phones if p.label.strip() not in ("", WORD_SEP, WILDCARD)]


def summary(reference: Reference, phones: Sequence[Interval]) -> UtteranceBoundaries:
    """:func:`phonex.metrics.score_alignment` of the model's phones (IPA) against ``reference``.

    Raises:
        phonex.phonesets.UnknownPhoneError: a label outside its phone set.
    """
    return score_alignment(reference.phones, _spoken(phones), reference.labels, "espeak")


def match_phones(reference: Reference, phones: Sequence[Interval]) -> list[PhoneMatch | None]:
    """For each of the model's ``phones`` (IPA), its paired reference span and boundary errors.

    Returns:
        One entry per phone, ``None`` for a phone with no paired reference.

    Raises:
        phonex.phonesets.UnknownPhoneError: a label outside its phone set.
    """
    spoken = _spoken(phones)
    ref = _spoken(reference.phones)
    if reference.labels == "espeak" and [p.label for p in ref] == [p.label for p in spoken]:
        errors = phone_boundary_errors(ref, spoken)
        by_phone = {
            id(p): PhoneMatch(r.label, r.start, r.end, float(on), float(off))
            for p, r, (on, off) in zip(spoken, ref, errors)
        }
    else:
        by_phone = _protocol_matches(reference, spoken)
    return [by_phone.get(id(p)) for p in phones]


def _owner(unit: Unit, phones: Sequence[Interval]) -> Interval | None:
    """The model phone a hypothesis unit came from: the one holding the unit's end (its start
    for the first part of a phone folded to several); an absorbed glottal stop joins the next
    phone, which keeps its end."""
    time = unit.end - 1e-6 if unit.end is not None else unit.start + 1e-6
    return next((p for p in phones if p.start <= time < p.end), None)


def _protocol_matches(reference: Reference, spoken: list[Interval]) -> dict[int, PhoneMatch]:
    """Model phone id -> its match, through protocol units paired in order."""
    ref = protocol_units(reference.phones, reference.labels)
    span = (ref[0].start, ref[-1].end) if ref else None
    hyp = protocol_units(spoken, "espeak", span=span) if spoken else []
    grouped: dict[int, list[tuple[Unit, Unit]]] = {}
    for r, h in sorted(paired_units(ref, hyp).items(), key=lambda pair: pair[1]):
        owner = _owner(hyp[h], spoken)
        if owner is not None and hyp[h].label != SILENCE:
            grouped.setdefault(id(owner), []).append((ref[r], hyp[h]))
    return {key: _combine(pairs) for key, pairs in grouped.items()}


def _combine(pairs: list[tuple[Unit, Unit]]) -> PhoneMatch:
    """One match from the units of one phone: the first unit's onset, the last one's offset."""
    (first_ref, first_hyp), (last_ref, last_hyp) = pairs[0], pairs[-1]

    def error(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else abs(a - b)

    return PhoneMatch(
        " ".join(r.label for r, _ in pairs),
        first_ref.start,
        last_ref.end,
        error(first_ref.start, first_hyp.start),
        error(last_ref.end, last_hyp.end),
    )


# --- drawing and tabulating the comparison --------------------------------------------------


def draw_reference(reference: Reference, wave_ax, spectrogram_ax) -> None:
    """Reference phones under the model's on the spectrogram (cyan, dashed, labels at the
    bottom; the model's are white at the top) and reference words under the waveform."""
    bottom = blended_transform_factory(spectrogram_ax.transData, spectrogram_ax.transAxes)
    for p in reference.phones:
        spectrogram_ax.axvline(p.start, ymax=0.3, color="cyan", ls="--", lw=0.8)
        spectrogram_ax.text((p.start + p.end) / 2, 0.03, p.label, transform=bottom, color="cyan",
                            ha="center", va="bottom", fontsize=8)  # fmt: skip
    under = blended_transform_factory(wave_ax.transData, wave_ax.transAxes)
    for w in reference.words:
        wave_ax.text((w.start + w.end) / 2, 0.03, w.label, transform=under, color="teal",
                     ha="center", va="bottom", fontsize=8, style="italic")  # fmt: skip
    what = "hand labels" if reference.labels == "timit" else "espeak-ng's true times"
    spectrogram_ax.set_title(f"log-mel spectrogram: aligned phones (white, top), {what} "
                             "(cyan, bottom)")  # fmt: skip


TABLE_HEADER = ("model span (s)", "confidence", "reference", "reference span (s)",
                "onset error", "offset error")  # fmt: skip
_WIDTHS = (110, 110, 80, 130, 90, 90)  # px


def table_cells(values: Sequence[str], tag: str = "td") -> str:
    """One table row of fixed-width cells (:data:`TABLE_HEADER`'s columns), so that rows in
    separate widgets line up."""
    style = "text-align:left;padding:0 4px;white-space:nowrap;overflow:hidden"
    cells = "".join(f'<{tag} style="width:{w}px;{style}">{v}</{tag}>'
                    for w, v in zip(_WIDTHS, values))  # fmt: skip
    return f'<table style="table-layout:fixed;border-collapse:collapse"><tr>{cells}</tr></table>'


def phone_cells(start: float, end: float, score: float, match: PhoneMatch | None) -> str:
    """The cells of one phone: spans, confidence as a bar, reference and errors in ms."""

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{1000 * value:.0f} ms"

    bar = (f'<span style="display:inline-block;width:{round(50 * score)}px;height:8px;'
           f'background:#4a8"></span> {score:.2f}')  # fmt: skip
    ref = ["–", "–"]
    if match is not None:
        ref = [html.escape(match.label), f"{match.start:.3f}–{match.end:.3f}"]
    return table_cells([f"{start:.3f}–{end:.3f}", bar, *ref, ms(match and match.onset_error),
                        ms(match and match.offset_error)])  # fmt: skip
