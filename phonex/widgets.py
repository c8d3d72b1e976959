"""An ipywidgets inspector for JupyterLab: one utterance, one layer, everything on one time axis.

Choose an utterance and a layer to see the waveform with its aligned phone spans, the log-mel
spectrogram, the CTC emissions and the layer's hidden states; choose a span to hear it. A row
with an ``alignment`` file (espeak-ng's true times, or TIMIT's hand labels) shows those labels
under the model's and a table of phones: the model's span and confidence beside the reference
span and the boundary errors (:mod:`phonex.comparison`), each phone and word with a play button.
:class:`Inspector` holds the state and works without a front end, so it is tested headless.
"""

from __future__ import annotations

import html
import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import Audio, Image
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from phonex.align import WordSpan, align
from phonex.audio import load_audio
from phonex.comparison import (
    TABLE_HEADER,
    PhoneMatch,
    draw_reference,
    match_phones,
    phone_cells,
    read_reference,
    summary,
    table_cells,
)
from phonex.corpus import Interval, Utterance
from phonex.data import normalize_wave
from phonex.intervals import AlignmentError
from phonex.metrics import UtteranceBoundaries
from phonex.models import LoadedModel
from phonex.plots import plot_emissions, plot_speech
from phonex.timit import MATCH_TOLERANCE

N_COMPONENTS = 16  # principal components of the hidden states drawn in the layer view
BUTTON_WIDTH = "70px"  # the phone table's play buttons; its header's spacers match them


@torch.no_grad()
def clip_outputs(loaded: LoadedModel, wave: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """One clip through the model, fed as :func:`phonex.models.emissions` feeds it.

    Returns:
        ``log_probs`` ``[frames, vocab]`` and ``states`` ``[layers + 1, frames, dim]`` (0 is the
        input of the first transformer block), float32 on the CPU.

    Raises:
        ValueError: the model returns no hidden states.
    """
    model = loaded.model
    wave = np.asarray(wave, dtype=np.float32)
    if loaded.feature_extractor.do_normalize:
        wave = normalize_wave(wave)
    values = torch.from_numpy(wave)[None].to(next(model.parameters()).device)
    inputs = {"input_values": values}
    if loaded.feature_extractor.return_attention_mask:
        inputs["attention_mask"] = torch.ones_like(values, dtype=torch.long)
    was_training = model.training
    model.eval()
    try:
        out = model(**inputs, output_hidden_states=True)
    finally:
        model.train(was_training)
    if out.hidden_states is None:
        raise ValueError(
            f"{type(model).__name__} ({loaded.source or 'unnamed model'}) returned no hidden "
            "states with output_hidden_states=True: the layer view needs them"
        )
    states = torch.stack([h[0] for h in out.hidden_states]).float().cpu()
    return torch.log_softmax(out.logits[0].float(), dim=-1).cpu(), states


def principal_components(hidden: np.ndarray, k: int = N_COMPONENTS) -> np.ndarray:
    """Scores ``[k, frames]`` of the first ``k`` principal components of ``[frames, dim]``."""
    centered = hidden - hidden.mean(axis=0)
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    return (u[:, :k] * s[:k]).T


@dataclass
class Controls:
    """The widgets of an inspector's UI; ``box`` holds them all."""

    utterance: widgets.Dropdown
    layer: widgets.IntSlider
    span: widgets.Dropdown
    status: widgets.HTML
    plot: widgets.Output
    audio: widgets.Output
    table: widgets.VBox
    box: widgets.VBox


class Inspector:
    """State of the inspector: the chosen utterance and layer and what was computed for them.

    Attributes:
        index, layer: the chosen row of ``rows`` and hidden layer (0..``num_layers``).
        wave: ``[samples]`` at ``loaded.sample_rate``.
        log_probs: ``[frames, vocab]`` CTC emissions.
        hidden: ``[frames, dim]`` hidden states of ``layer``.
        words: aligned words (empty when the alignment failed; ``error`` says why).
        span: the chosen phone span (index into :attr:`phones`), or None for the whole clip.
        reference: the row's reference labels, or None (``reference_error`` says why when its
            file could not be read or compared).
        matches: per phone of :attr:`phones`, its paired reference (None: unpaired).
        boundaries: the utterance scored by :func:`phonex.metrics.score_alignment`, or None.
    """

    def __init__(self, loaded: LoadedModel, rows: Sequence[Utterance], index: int = 0,
                 layer: int | None = None):  # fmt: skip
        """Load utterance ``index``; ``layer`` defaults to the last one (the CTC head's input)."""
        if not rows:
            raise ValueError("Inspector needs at least one utterance: rows is empty")
        self.loaded, self.rows = loaded, list(rows)
        self.layer, self.controls = layer, None
        self.select(index)

    @property
    def seconds_per_frame(self) -> float:
        """The model's frame shift, as :func:`phonex.align.align` converts frames."""
        return self.loaded.model.config.inputs_to_logits_ratio / self.loaded.sample_rate

    @property
    def phones(self) -> list[tuple[str, float, float, float]]:
        """Aligned phone spans of all words: ``(phone, start, end, score)``, seconds."""
        return [p for w in self.words for p in w.phones]

    def select(self, index: int) -> None:
        """Load utterance ``index``: audio, emissions, hidden states and alignment."""
        if not 0 <= index < len(self.rows):
            raise IndexError(f"utterance {index}: there are {len(self.rows)} rows")
        row = self.rows[index]
        self.wave = load_audio(row.audio, self.loaded.sample_rate)
        self.log_probs, self._states = clip_outputs(self.loaded, self.wave)
        self.index, self.num_layers, self.span = index, len(self._states) - 1, None
        self.select_layer(self.num_layers if self.layer is None else self.layer)
        self.reference, self.reference_error = None, ""
        if row.alignment:
            try:
                self.reference = read_reference(row.alignment)
            except AlignmentError as err:
                self.reference_error = str(err)
        self.words, self.error = self._align(row)
        self.matches, self.boundaries = self._compare()

    def _align(self, row: Utterance) -> tuple[list[WordSpan], str]:
        """Aligned words and "" or, when the alignment fails, [] and why.

        Hand labels in another phone set (TIMIT) are not the model's tokens: the text is
        phonemized instead, and a word the model cannot spell becomes a wildcard so that the
        rest of the sentence is still aligned and compared.
        """
        own = self.reference is None or self.reference.labels == "espeak"
        tokens, unknown = (row.phones or None, "error") if own else (None, "wildcard")
        try:  # a failed alignment leaves the rest worth seeing
            words = align(self.loaded, self.wave, row.text, tokens=tokens, unknown=unknown,
                          log_probs=self.log_probs)  # fmt: skip
        except AlignmentError as err:
            return [], str(err)
        return words, ""

    def _compare(self) -> tuple[list[PhoneMatch | None], UtteranceBoundaries | None]:
        """Per-phone matches and the utterance's score against the reference, when there is
        one; a label the protocol cannot fold is reported, not raised."""
        unmatched: list[PhoneMatch | None] = [None] * len(self.phones)
        if self.reference is None or not self.phones or not self.reference.phones:
            return unmatched, None
        phones = [Interval(p, s, e) for p, s, e, _ in self.phones]
        try:
            return match_phones(self.reference, phones), summary(self.reference, phones)
        except ValueError as err:
            self.reference_error = f"{self.reference.source}: cannot compare: {err}"
            return unmatched, None

    def select_layer(self, layer: int) -> None:
        """Show hidden layer ``layer`` (0 = input of the first transformer block)."""
        if not 0 <= layer <= self.num_layers:
            raise ValueError(f"layer {layer}: the model has layers 0..{self.num_layers}")
        self.layer = layer
        self.hidden = self._states[layer].numpy()

    def segment(self, span_index: int) -> np.ndarray:
        """The waveform ``[samples]`` of phone span ``span_index``."""
        if not 0 <= span_index < len(self.phones):
            raise IndexError(f"span {span_index}: the alignment has {len(self.phones)} spans")
        _, start, end, _ = self.phones[span_index]
        rate = self.loaded.sample_rate
        return self.wave[round(start * rate) : round(end * rate)]

    def figure(self) -> Figure:
        """Waveform, log-mel spectrogram, emissions and the layer's hidden states, stacked."""
        # not pyplot: the figure is freed with its last reference, and the inline backend does
        # not show it a second time after a widget callback
        seconds = len(self.wave) / self.loaded.sample_rate
        # wider for longer clips, so that a sentence's phone labels do not overlap
        fig = Figure(figsize=(float(np.clip(4 * seconds, 10, 24)), 9))
        axes = fig.subplots(4, 1, sharex=True, height_ratios=[1, 1.6, 2, 1.6],
                            gridspec_kw={"hspace": 0.45, "left": 0.1, "right": 0.96, "top": 0.95,
                                         "bottom": 0.06})  # fmt: skip
        intervals = [Interval(p, s, e) for p, s, e, _ in self.phones]
        plot_speech(self.wave, self.loaded.sample_rate, intervals, axes=axes[:2])
        self._shade_spans(axes[0])
        axes[1].set(xlabel="", title="log-mel spectrogram, aligned phones")
        if self.reference is not None:
            draw_reference(self.reference, axes[0], axes[1])
        plot_emissions(self.log_probs.numpy(), self.loaded.vocab.tokens, self.seconds_per_frame,
                       title="CTC emissions", ax=axes[2])  # fmt: skip
        axes[2].set_xlabel("")
        self._draw_layer(axes[3])
        # the emissions' colorbar narrows their row; narrow the others so time lines up
        narrow = axes[2].get_position()
        for ax in axes:
            box = ax.get_position()
            ax.set_position([narrow.x0, box.y0, narrow.width, box.height])
        axes[0].set_xlim(0, seconds)
        return fig

    def _shade_spans(self, ax) -> None:
        """Phone spans as alternating bands (the chosen one orange), word labels on top."""
        row = self.rows[self.index]
        for i, (_, start, end, _) in enumerate(self.phones):
            color = "tab:orange" if i == self.span else ("0.6" if i % 2 else "0.85")
            ax.axvspan(start, end, color=color, alpha=0.4, lw=0, zorder=0)
        top = blended_transform_factory(ax.transData, ax.transAxes)
        for w in self.words:
            ax.text((w.start + w.end) / 2, 0.97, w.word, transform=top, ha="center", va="top",
                    fontsize=8)  # fmt: skip
        failed = f" (no alignment: {textwrap.shorten(self.error, 70)})" if self.error else ""
        ax.set_title(f"{row.id}: {row.text}{failed}", fontsize=10)

    def _draw_layer(self, ax) -> None:
        """Principal components of the layer: a few outlier dimensions of wav2vec2-style models
        would saturate a heat map of the raw dimensions."""
        scores = principal_components(self.hidden)
        vmax = float(np.abs(scores).max()) or 1.0
        extent = (0, len(self.hidden) * self.seconds_per_frame, len(scores) - 0.5, -0.5)
        ax.imshow(scores, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=extent,
                  interpolation="nearest")  # fmt: skip
        ax.set_yticks([0, len(scores) - 1], ["PC1", f"PC{len(scores)}"], fontsize=8)
        ax.set_xlabel("time (s)")
        ax.set_title(
            f"layer {self.layer} of {self.num_layers}: first {len(scores)} principal "
            f"components of {self.hidden.shape[1]} dims (this clip)"
        )

    def widget(self) -> widgets.VBox:
        """The UI, built once per inspector; drive it through its :attr:`controls`, whose
        callbacks keep the state and the display in step."""
        if self.controls is not None:
            return self.controls.box
        utterance = widgets.Dropdown(
            options=[(f"{r.id} · {r.text}", i) for i, r in enumerate(self.rows)],
            value=self.index, description="utterance", layout={"width": "60%"},
        )  # fmt: skip
        layer = widgets.IntSlider(value=self.layer, min=0, max=self.num_layers,
                                  description="layer", continuous_update=False)  # fmt: skip
        span = widgets.Dropdown(description="span", options=self._span_options())
        status, plot, audio = widgets.HTML(), widgets.Output(), widgets.Output()
        table = widgets.VBox()  # grows with the clip: a capped height would squeeze its rows
        # classes name the parts for a front end's tests and styles
        parts = {"status": status, "plot": plot, "audio": audio, "phones": table}
        for name, part in parts.items():
            part.add_class(f"phonex-{name}")
        box = widgets.VBox([widgets.HBox([utterance, layer]), status, plot, span, audio, table])
        self.controls = Controls(utterance, layer, span, status, plot, audio, table, box)
        utterance.observe(self._on_utterance, names="value")
        layer.observe(self._on_layer, names="value")
        span.observe(self._on_span, names="value")
        table.children = self._table_rows()
        self._show()
        return box

    def _table_rows(self) -> list[widgets.Widget]:
        """Play buttons for the words, then one row per phone: play the model's span, play the
        reference's, and the spans, confidence and boundary errors side by side."""
        words = [self._play_button(f"▶ {w.word}", w.start, w.end, "the aligned word")
                 for w in self.words]  # fmt: skip
        spacers = [widgets.HTML(layout={"width": BUTTON_WIDTH}) for _ in range(2)]
        rows: list[widgets.Widget] = [
            widgets.HBox(words, layout={"flex_flow": "row wrap"}),
            widgets.HBox([*spacers, widgets.HTML(table_cells(TABLE_HEADER, "th"))]),
        ]
        for k, ((phone, start, end, score), match) in enumerate(zip(self.phones, self.matches)):
            play = widgets.Button(description=f"▶ {phone}", tooltip="play the aligned phone",
                                  layout={"width": BUTTON_WIDTH})  # fmt: skip
            play.add_class("phonex-play-phone")
            play.on_click(lambda _, k=k: self._choose_span(k))
            times = (None, None) if match is None else (match.start, match.end)
            ref = self._play_button("▶ ref", *times, "the reference span", BUTTON_WIDTH)
            cells = widgets.HTML(phone_cells(start, end, score, match))
            rows.append(widgets.HBox([play, ref, cells]))
        return rows

    def _choose_span(self, k: int) -> None:
        """Choose phone span ``k`` (marked in the plot, played); chosen already: play it again."""
        if self.controls.span.value == k:
            self._player(self.segment(k), autoplay=True)
        else:
            self.controls.span.value = k

    def _play_button(self, label: str, start: float | None, end: float | None, what: str,
                     width: str = "auto") -> widgets.Button:  # fmt: skip
        """A button that plays ``[start, end)`` seconds of the clip (disabled without times)."""
        button = widgets.Button(description=label, tooltip=f"play {what}",
                                layout={"width": width, "min_width": BUTTON_WIDTH})  # fmt: skip
        button.disabled = start is None or end is None or end <= start
        button.on_click(lambda _: self._play(start, end))
        return button

    def _play(self, start: float, end: float) -> None:
        """Play ``[start, end)`` seconds (a word or a reference span) without redrawing."""
        rate = self.loaded.sample_rate
        self._player(self.wave[round(start * rate) : round(end * rate)], autoplay=True)

    def _player(self, wave: np.ndarray, autoplay: bool) -> None:
        # unnormalised, so spans keep their relative loudness; resampling may overshoot 1
        c = self.controls
        c.audio.outputs = ()
        c.audio.append_display_data(Audio(np.clip(wave, -1, 1), rate=self.loaded.sample_rate,
                                          normalize=False, autoplay=autoplay))  # fmt: skip

    def _span_options(self) -> list[tuple[str, int]]:
        # -1 for the whole clip: a Dropdown reads a None value as "nothing selected"
        spans = [(f"{p} {s:.2f}–{e:.2f}", i) for i, (p, s, e, _) in enumerate(self.phones)]
        return [("whole clip", -1), *spans]

    def _on_utterance(self, change: dict) -> None:
        self.select(change["new"])
        span = self.controls.span
        span.unobserve(self._on_span, names="value")  # new options reset the value: draw once
        span.options = self._span_options()
        span.value = -1
        span.observe(self._on_span, names="value")
        self.controls.table.children = self._table_rows()
        self._show()

    def _on_layer(self, change: dict) -> None:
        self.select_layer(change["new"])
        self._show()

    def _on_span(self, change: dict) -> None:
        self.span = None if change["new"] < 0 else change["new"]
        self._show()

    def _show(self) -> None:
        """Redraw the figure, status line and player from the state."""
        c = self.controls
        row = self.rows[self.index]
        problem = f" · <b>alignment failed:</b> {html.escape(self.error)}" if self.error else ""
        if self.reference_error:
            problem += f" · <b>reference:</b> {html.escape(self.reference_error)}"
        c.status.value = (f"{html.escape(row.id)} · {len(self.phones)} phone spans"
                          f"{self._score_text()}{problem}")  # fmt: skip
        png = io.BytesIO()
        self.figure().savefig(png, format="png", dpi=80)
        # set outputs directly rather than `with output:`, which needs a running kernel
        c.plot.outputs = ()
        c.plot.append_display_data(Image(data=png.getvalue(), format="png"))
        wave = self.wave if self.span is None else self.segment(self.span)
        self._player(wave, autoplay=self.span is not None)

    def _score_text(self) -> str:
        """The utterance's boundary score against its reference, for the status line."""
        scored = self.boundaries
        if scored is None or not scored.errors.size:
            return ""
        within = float(np.mean(scored.errors <= MATCH_TOLERANCE + 1e-9))
        return (f" · against {html.escape(Path(self.reference.source).name)}: "
                f"{100 * within:.0f}% of {scored.errors.size} boundaries within "
                f"{1000 * MATCH_TOLERANCE:.0f} ms, mean "
                f"error {1000 * float(scored.errors.mean()):.0f} ms")  # fmt: skip


def inspect(loaded: LoadedModel, rows: Sequence[Utterance], index: int = 0,
            layer: int | None = None) -> widgets.VBox:  # fmt: skip
    """The inspector UI for ``rows`` (see :class:`Inspector`); show it as a cell's last value."""
    return Inspector(loaded, rows, index, layer).widget()
