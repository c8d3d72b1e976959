"""Figures. Each function takes data (and optionally an ``ax``), returns the figure, reads no
globals; time axes are in seconds. :func:`save_fig` writes ``figures/<nb>-<name>.png``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from phonex.audio import mel_spectrogram
from phonex.config import FIGURES_DIR, AudioConfig
from phonex.corpus import Interval


def save_fig(fig: plt.Figure, nb: str, name: str, out_dir: str | Path | None = None) -> Path:
    """Save ``fig`` as ``<out_dir>/<nb>-<name>.png`` (default: the project's figures/)."""
    out_dir = Path(out_dir) if out_dir else FIGURES_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{nb}-{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def plot_speech(
    wave: np.ndarray,
    sample_rate: int,
    phones: Sequence[Interval] | None = None,
    title: str = "",
    axes: Sequence[plt.Axes] | None = None,
) -> plt.Figure:
    """Waveform over log-mel spectrogram, with phone spans marked when given.

    Args:
        wave: ``[samples]``.
        sample_rate: Hz.
        phones: intervals in seconds (e.g. espeak-ng's true phone times).
        title: figure title.
        axes: two axes to draw on (waveform, spectrogram); new ones when None.
    """
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True, height_ratios=[1, 2])
    fig = axes[0].figure
    t = np.arange(len(wave)) / sample_rate
    axes[0].plot(t, wave, lw=0.5, color="tab:blue")
    axes[0].set_ylabel("amplitude")
    cfg = AudioConfig(sample_rate=sample_rate, fmax=min(8000.0, sample_rate / 2))
    mel = mel_spectrogram(wave, cfg)
    extent = (0, len(wave) / sample_rate, 0, cfg.n_mels)
    axes[1].imshow(mel, origin="lower", aspect="auto", extent=extent, cmap="magma")
    axes[1].set_ylabel("mel bin")
    axes[1].set_xlabel("time (s)")
    for span in phones or []:
        for ax in axes:
            ax.axvline(span.start, color="white" if ax is axes[1] else "grey", lw=0.6, alpha=0.7)
        axes[1].text(
            (span.start + span.end) / 2,
            cfg.n_mels * 0.92,
            span.label,
            color="white",
            ha="center",
            va="top",
            fontsize=9,
        )
    axes[0].set_title(title)
    return fig


def plot_augmentations(
    examples: Mapping[str, np.ndarray], sample_rate: int, title: str = ""
) -> plt.Figure:
    """One row per augmentation: waveform (left) and log-mel spectrogram (right)."""
    fig, axes = plt.subplots(
        len(examples), 2, figsize=(11, 1.6 * len(examples)), width_ratios=[1, 2], squeeze=False
    )
    cfg = AudioConfig(sample_rate=sample_rate, fmax=min(8000.0, sample_rate / 2))
    for row, (name, wave) in zip(axes, examples.items()):
        t = np.arange(len(wave)) / sample_rate
        row[0].plot(t, wave, lw=0.4)
        row[0].set_ylim(-1, 1)
        row[0].set_ylabel(name, rotation=0, ha="right", va="center")
        mel = mel_spectrogram(wave, cfg)
        row[1].imshow(
            mel,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0, len(wave) / sample_rate, 0, cfg.n_mels),
        )
        row[1].set_yticks([])
    axes[-1][0].set_xlabel("time (s)")
    axes[-1][1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.suptitle(title, y=1.01)
    return fig


def plot_counts(counts: Mapping[str, int], title: str, xlabel: str, ax=None) -> plt.Figure:
    """Bar chart of counts, largest first (phone frequencies, clips per voice...)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, 0.22 * len(counts)), 3.2))
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    ax.bar([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.tick_params(axis="x", rotation=90 if len(items) > 12 else 0)
    return ax.figure


def plot_distribution(frame: pd.DataFrame, x: str, y: str, title: str, ax=None) -> plt.Figure:
    """Box plot of ``y`` per ``x`` category (e.g. clip duration per voice)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    sns.boxplot(data=frame, x=x, y=y, ax=ax, color="tab:blue", fliersize=2)
    ax.tick_params(axis="x", rotation=60)
    ax.set_title(title)
    return ax.figure


def plot_snr(frame: pd.DataFrame, ax=None) -> plt.Figure:
    """Measured against requested SNR per noise kind; the diagonal is perfect agreement."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    # kinds side by side at each level: they agree so closely that they would hide each other
    kinds = sorted(frame["kind"].unique())
    offset = frame["kind"].map({k: (i - (len(kinds) - 1) / 2) * 0.8 for i, k in enumerate(kinds)})
    sns.scatterplot(
        data=frame.assign(requested_db=frame["requested_db"] + offset),
        x="requested_db",
        y="measured_db",
        hue="kind",
        style="kind",
        ax=ax,
        s=40,
    )
    lims = [
        frame[["requested_db", "measured_db"]].min().min() - 2,
        frame[["requested_db", "measured_db"]].max().max() + 2,
    ]
    ax.plot(lims, lims, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("requested SNR (dB; kinds offset for visibility)")
    ax.set_ylabel("measured SNR (dB)")
    ax.set_title("Noise: measured vs requested SNR")
    return ax.figure


def audio_table(clips: Mapping[str, tuple[np.ndarray, int]]):
    """One HTML table of audio players (instead of one ``Audio`` cell per clip).

    Args:
        clips: label -> (wave ``[samples]``, sample rate).

    Returns:
        ``IPython.display.HTML`` to show as the last expression of a cell.
    """
    from IPython.display import HTML, Audio

    rows = "".join(
        f"<tr><td>{label}</td><td>{Audio(wave, rate=sr, normalize=False)._repr_html_()}</td></tr>"
        for label, (wave, sr) in clips.items()
    )
    return HTML(f"<table>{rows}</table>")


def plot_feature_maps(maps: Mapping[str, np.ndarray], seconds: float) -> plt.Figure:
    """Feature maps ``[dim, frames]`` side by side on one time axis (e.g. before/after masking)."""
    fig, axes = plt.subplots(1, len(maps), figsize=(5 * len(maps), 3), sharey=True, squeeze=False)
    for ax, (title, data) in zip(axes[0], maps.items()):
        ax.imshow(
            data,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0, seconds, 0, data.shape[0]),
        )
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    axes[0][0].set_ylabel("feature bin")
    return fig


def plot_learning_curves(
    history: pd.DataFrame, target: float | None = None, title: str = ""
) -> plt.Figure:
    """Training and dev CTC loss, and dev error rate, against optimizer steps.

    Args:
        history: ``metrics.csv`` of a run (``step``, ``train_loss``, ``dev_loss``, ``dev_error``).
        target: an error rate to draw as a dashed line.
    """
    fig, (loss_ax, err_ax) = plt.subplots(1, 2, figsize=(10, 3.4))
    loss_ax.plot(history.step, history.train_loss, label="train", color="tab:blue")
    dev = history.dropna(subset=["dev_error"])
    loss_ax.plot(dev.step, dev.dev_loss, "o-", label="dev", color="tab:orange")
    loss_ax.set(xlabel="step", ylabel="CTC loss", yscale="log", title="loss")
    loss_ax.legend()
    err_ax.plot(dev.step, 100 * dev.dev_error, "o-", color="tab:orange")
    if target is not None:
        err_ax.axhline(100 * target, ls="--", color="grey", label=f"target {target:.0%}")
        err_ax.legend()
    err_ax.set(xlabel="step", ylabel="error rate (%)", ylim=(0, None), title="dev error")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_error_by_group(frame: pd.DataFrame, group: str, title: str, ax=None,
                        hue: str | None = None) -> plt.Figure:  # fmt: skip
    """Bar chart of error rate (%) per group (voice, phone class...): columns ``group``, ``error``;
    with ``hue`` (e.g. ``"model"``), one bar per hue value side by side in each group."""
    if ax is None:
        width = 1.4 * frame[group].nunique() + 2 if hue else 0.6 * len(frame)
        _, ax = plt.subplots(figsize=(max(5, width), 3.6 if hue else 3.2))
    colour = {"hue": hue} if hue else {"color": "tab:blue"}
    sns.barplot(data=frame.assign(percent=100 * frame.error), x=group, y="percent", ax=ax,
                **colour)  # fmt: skip
    ax.set(title=title, ylabel="error rate (%)", xlabel=group)
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    if hue:
        ax.legend(title=hue, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.figure.tight_layout()
    return ax.figure


def plot_freezing(speed: pd.DataFrame) -> plt.Figure:
    """Trainable share of parameters and training speed per freezing choice (one row each).

    Args:
        speed: index = choice, columns ``trainable``, ``total``, ``audio_s_per_s``.
    """
    fig, (share_ax, speed_ax) = plt.subplots(1, 2, figsize=(10, 3.2))
    share_ax.barh(speed.index, 100 * speed.trainable / speed.total, color="tab:blue")
    share_ax.set(xlabel="trainable parameters (%)", xlim=(0, 100), title="what trains")
    speed_ax.barh(speed.index, speed.audio_s_per_s, color="tab:green")
    speed_ax.set(xlabel="seconds of audio per second", title="training speed")
    speed_ax.set_yticklabels([])
    fig.tight_layout()
    return fig


def plot_accuracy_vs_snr(summary: pd.DataFrame, target: float | None = None) -> plt.Figure:
    """Top-k accuracy (%) against SNR, one line per method and k.

    Args:
        summary: one row per (method, condition): ``method``, ``snr`` (NaN = clean), ``top1``
            and ``top5``.
        target: a top-1 accuracy to draw as a dashed line.
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    finite = summary.snr.dropna()
    clean_x = (finite.max() + 5) if len(finite) else 0  # clean drawn right of the best SNR
    for (method, k), style in zip(
        [(m, k) for m in summary.method.unique() for k in ("top1", "top5")],
        ["o-", "s--", "^-", "v--", "d-", "x--"],
    ):
        rows = summary[summary.method == method].assign(x=lambda f: f.snr.fillna(clean_x))
        rows = rows.sort_values("x")
        ax.plot(rows.x, 100 * rows[k], style, label=f"{method}, {k.replace('top', 'top-')}")
    if target is not None:
        ax.axhline(100 * target, ls=":", color="grey", label=f"target {target:.0%}")
    ticks = sorted(finite.unique())
    ax.set_xticks(ticks + [clean_x], [f"{t:g}" for t in ticks] + ["clean"])
    ax.set(xlabel="SNR (dB)", ylabel="accuracy (%)", ylim=(0, 101),
           title="Drug-name recognition on held-out voices")  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_confusions(matrix: pd.DataFrame, title: str = "") -> plt.Figure:
    """Heat map of a (small) confusion matrix: rows true words, columns recognised words."""
    size = max(4.0, 0.32 * len(matrix.columns) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, max(3.5, 0.32 * len(matrix) + 1.5)))
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax,
                annot_kws={"fontsize": 7}, mask=matrix == 0)  # fmt: skip
    ax.set(title=title, xlabel="recognised as", ylabel="spoken")
    fig.tight_layout()
    return fig


def plot_pair_distance(pairs: pd.DataFrame) -> plt.Figure:
    """Look-alike/sound-alike pairs: confusion rate against articulatory feature distance."""
    pairs = pairs.dropna(subset=["confusion_rate"])  # pairs without clips say nothing
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.scatter(pairs.feature_distance, 100 * pairs.confusion_rate, alpha=0.6)
    for row in pairs[pairs.confusion_rate > 0].itertuples():
        ax.annotate(f"{row.a}/{row.b}", (row.feature_distance, 100 * row.confusion_rate),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set(xlabel="feature edit distance per phone (panphon)", ylabel="confused (% of clips)",
           title="Sound-alike drug pairs: how close, how often confused")  # fmt: skip
    fig.tight_layout()
    return fig


def plot_agreement(groups: Mapping[str, Sequence[float]], threshold: float) -> plt.Figure:
    """Histograms of recognition agreement (how much of the best word was heard) per kind of clip.

    Args:
        groups: ``{kind of clip: agreements in [0, 1]}``.
        threshold: the low-confidence threshold, drawn as a dashed line.
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    bins = np.linspace(0, 1, 21)
    for name, values in groups.items():
        ax.hist(values, bins=bins, alpha=0.55, label=f"{name} ({len(values)})", density=True)
    ax.axvline(threshold, ls="--", color="grey", label=f"low confidence below {threshold:g}")
    ax.set(xlabel="agreement of the heard phones with the best word", ylabel="density",
           title="Does the clip sound like a lexicon word?")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_emissions(
    log_probs: np.ndarray, tokens: Sequence[str], seconds_per_frame: float, title: str = "",
    ax=None, min_peak: float = 0.05,
) -> plt.Figure:  # fmt: skip
    """Heat map of a CTC emission matrix: frame posteriors of the tokens the clip uses.

    Args:
        log_probs: ``[frames, vocab]`` log-softmax.
        tokens: the vocabulary, in id order.
        seconds_per_frame: the model's frame shift.
        min_peak: rows shown: tokens whose posterior reaches this somewhere (blank included).
    """
    probs = np.exp(np.asarray(log_probs, dtype=float))
    rows = np.flatnonzero(probs.max(axis=0) >= min_peak)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.22 * len(rows) + 1.2))
    extent = (0, probs.shape[0] * seconds_per_frame, len(rows) - 0.5, -0.5)
    image = ax.imshow(probs[:, rows].T, aspect="auto", cmap="viridis", vmin=0, vmax=1,
                      extent=extent, interpolation="nearest")  # fmt: skip
    ax.set_yticks(range(len(rows)), [tokens[i] for i in rows], fontsize=8)
    ax.set(xlabel="time (s)", title=title or "CTC emissions: posterior of each token per frame")
    ax.figure.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label="posterior")
    return ax.figure


def plot_alignment(
    wave: np.ndarray, sample_rate: int, aligned: Sequence[Interval],
    reference: Sequence[Interval] | None = None, title: str = "",
) -> plt.Figure:  # fmt: skip
    """Waveform and spectrogram with the forced alignment's phones (and a reference's, dashed).

    Args:
        aligned: phone intervals from :func:`phonex.align.align`, labelled on the spectrogram.
        reference: true phone intervals (espeak-ng's own times), drawn as dashed onsets.
    """
    fig = plot_speech(wave, sample_rate, aligned, title=title)
    for span in reference or []:
        for ax in fig.axes[:2]:
            ax.axvline(span.start, color="tab:cyan", lw=0.9, ls="--", alpha=0.9)
    if reference:
        fig.axes[0].plot([], [], color="tab:cyan", ls="--", label="reference onsets")
        fig.axes[0].plot([], [], color="grey", label="aligned onsets")
        fig.axes[0].legend(fontsize=7, loc="upper right")
    return fig


def plot_boundary_errors(errors: Mapping[str, Sequence[float]], tolerances=(0.01, 0.02, 0.05)):
    """Cumulative share of boundaries within each error (ms), one line per kind of boundary."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for name, values in errors.items():
        values = np.sort(1000 * np.asarray(values, dtype=float))
        ax.plot(values, 100 * np.arange(1, len(values) + 1) / len(values), label=name)
    for tol in tolerances:
        ax.axvline(1000 * tol, ls=":", color="grey")
    ax.set(xlabel="boundary error (ms)", ylabel="boundaries within (%)", xlim=(0, 150),
           ylim=(0, 100), title="Forced alignment against espeak-ng's own phone times")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_layer_curves(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Probe accuracy per layer with its confidence band: one colour per model, phones solid,
    the control task dashed, the majority baseline dotted (grey).

    Args:
        table: rows of :func:`phonex.probe.probe_layers` with a ``model`` column.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for (model, group), colour in zip(table.groupby("model", sort=False), sns.color_palette()):
        for task, style in (("phone", "-"), ("control", "--")):
            rows = group[group.task == task].sort_values("layer")
            ax.plot(rows.layer, rows.accuracy, style, marker="o", color=colour,
                    label=f"{model}: {task}")  # fmt: skip
            ax.fill_between(rows.layer, rows.ci_low, rows.ci_high, color=colour, alpha=0.2)
    ax.axhline(table.majority.max(), color="grey", ls=":", label="majority class")
    ax.set(xlabel="layer (0 = transformer input)", ylabel="frame accuracy (test voices)",
           ylim=(0, 1), title=title)  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def plot_phone_confusion(matrix: pd.DataFrame, title: str = "") -> plt.Figure:
    """Heat map of a phone confusion matrix as row shares (what each true phone became)."""
    shares = matrix.div(matrix.sum(axis=1).replace(0, 1), axis=0)
    size = 0.28 * len(matrix) + 2
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(shares, cmap="magma_r", vmin=0, vmax=1, square=True, ax=ax,
                cbar_kws={"label": "share of the true phone's frames"})  # fmt: skip
    ax.set(title=title, xlabel="probe says", ylabel="true phone")
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_voice_prosody(described: pd.DataFrame) -> plt.Figure:
    """Per voice, coloured by engine: speaking rate, median f0 and pitch range (box plots)."""
    order = described.groupby("speaker").engine.first().sort_values().index
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.32 * len(order) + 1.6), sharey=True)
    for ax, (column, label) in zip(axes, (("phones_per_s", "phones per second of speech"),
                                          ("f0_median_hz", "median f0 (Hz)"),
                                          ("f0_range_semitones", "f0 range, 5-95 % (semitones)"))):  # fmt: skip
        sns.boxplot(described, x=column, y="speaker", hue="engine", order=order, ax=ax,
                    dodge=False, fliersize=2, legend=ax is axes[-1])  # fmt: skip
        ax.set(xlabel=label, ylabel="")
    if axes[-1].get_legend():
        sns.move_legend(axes[-1], "center left", bbox_to_anchor=(1, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def plot_round_trip(summary: pd.DataFrame, value: str = "top1", title: str = "") -> plt.Figure:
    """Bars of ``value`` per voice (y) and condition (hue), from :func:`phonex.roundtrip.summarize`."""
    fig, ax = plt.subplots(figsize=(7, 0.35 * summary.speaker.nunique() + 1.5))
    sns.barplot(summary, x=value, y="speaker", hue="condition", ax=ax)
    ax.set(xlabel=value.replace("top1", "top-1 accuracy").replace("per", "phone error rate"),
           ylabel="", xlim=(0, 1), title=title)  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_mels(mels: Mapping[str, np.ndarray], hop_seconds: float, columns: int = 4) -> plt.Figure:
    """Log-mel spectrograms ``[n_mels, frames]`` in a grid, each on its own time axis."""
    rows = -(-len(mels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.3 * rows), squeeze=False,
                             sharey=True)  # fmt: skip
    for ax, (title, mel) in zip(axes.flat, mels.items()):
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, mel.shape[1] * hop_seconds, 0, mel.shape[0]))  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
    for ax in axes.flat[len(mels) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("mel band")
    fig.tight_layout()
    return fig


def plot_unheard_engines(table: pd.DataFrame) -> plt.Figure:
    """Heat map of top-1 on each engine (columns) after training on each set (rows); blank
    where the engine was heard in training."""
    grid = table.pivot_table(index="trained_on", columns="engine", values="top1", sort=False)
    fig, ax = plt.subplots(figsize=(1.3 * len(grid.columns) + 3, 0.45 * len(grid) + 1.4))
    sns.heatmap(grid, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis", ax=ax,
                cbar_kws={"label": "top-1 on the unheard engine"})  # fmt: skip
    ax.set(xlabel="tested on (never heard)", ylabel="trained on",
           title="Recognising drug names from an engine the model never heard")  # fmt: skip
    fig.tight_layout()
    return fig


def plot_baselines(rows: pd.DataFrame, columns: int = 3) -> plt.Figure:
    """One panel per result row of ``benchmarks/bench_baselines.py`` (``task``, ``metric``,
    ``values``: {system: value}), a bar per system; phonex's systems in blue, the others grey."""
    n = len(rows)
    grid_rows = -(-n // columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(4.6 * columns, 2.2 * grid_rows),
                             squeeze=False)  # fmt: skip
    for ax, (_, row) in zip(axes.flat, rows.iterrows()):
        systems = list(row["values"])
        values = [100 * row["values"][s] for s in systems]
        colors = ["tab:blue" if s.startswith("phonex") else "0.6" for s in systems]
        ax.barh(systems, values, color=colors)
        for y, value in enumerate(values):
            ax.text(value + 1, y, f"{value:.0f}", va="center", fontsize=7)
        better = "higher" if row["higher_is_better"] else "lower"
        ax.set_xlim(0, max(100, max(values, default=0) * 1.15))
        ax.set_xlabel(f"{row['metric']} (%, {better} is better)", fontsize=8)
        ax.set_title(row["task"], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.invert_yaxis()
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig
