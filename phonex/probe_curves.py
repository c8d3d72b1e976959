"""Layer curves of several models on real speech: speaker folds, a log-mel baseline, the peak.

Built on :mod:`phonex.probe` (hidden states, linear probes, control task, bootstrap) and
:mod:`phonex.timit_frames` (labels). For each model every clip's hidden states are extracted
once; each fold's probes are fitted on the other speakers' clips and tested on its own, and the
folds' test frames are pooled, so every clip is tested once and the bootstrap resamples all of
them. The *log-mel baseline* is what a linear probe reads from Whisper's own input, its log-mel
frames averaged in pairs to the encoder's 20 ms frame rate: what any layer adds is measured
against it.

:func:`peak_layer` says where a model's curve peaks and how sure that is: the best layer of each
bootstrap resample of the test clips, whose spread is the peak's interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from phonex import probe
from phonex.timit_frames import LabelledClips, label_clips

PHONEX_EN = "phonex-en"
WHISPER_ENCODERS = ("whisper-tiny.en", "whisper-base")


@dataclass
class LogMel:
    """The log-mel baseline: Whisper's input features of ``whisper`` (a loaded Whisper CTC
    model; only its front-end settings are used), two 10 ms frames averaged per 20 ms frame."""

    whisper: object


def load_probe_model(name: str):
    """A model to probe by name: a Whisper encoder (a registry name or a folder, under a new
    head over the English phones: only its encoder is probed), or any name or folder
    :func:`phonex.models.load_model` takes (``phonex-en``, the shipped real-speech model).

    Raises:
        phonex.model_folder.ModelError: a name nothing answers to.
    """
    from phonex.english_phones import english_vocabulary
    from phonex.models import load_model

    if name in WHISPER_ENCODERS or _is_whisper_folder(name):
        return load_model(name, vocab=english_vocabulary())
    return load_model(name)


def _is_whisper_folder(name: str) -> bool:
    """A folder holding a Whisper checkpoint (sequence-to-sequence, no CTC head of its own)."""
    import json

    config = Path(name) / "config.json"
    try:
        return json.loads(config.read_text()).get("model_type") == "whisper"
    except (OSError, ValueError):
        return False


def standard_models(
    encoders: Sequence[str] = WHISPER_ENCODERS, finetuned: Sequence[str] = (PHONEX_EN,),
    from_scratch: str | Path | None = None, random: bool = True, log_mel: bool = True,
    seed: int = 0,
) -> tuple[dict[str, object], list[str]]:  # fmt: skip
    """The models of the layer-curve comparison, in plotting order, and what was skipped.

    Args:
        encoders: pretrained Whisper encoders (each also randomly initialised when ``random``).
        finetuned: fine-tuned phone models (names or folders).
        from_scratch: the model trained from scratch on synthetic speech, when it exists.
        log_mel: add the log-mel baseline (needs one Whisper encoder, or tiny.en's settings).
    """
    from phonex.models import random_init

    models: dict[str, object] = {}
    skipped = []
    for name in encoders:
        loaded = load_probe_model(name)
        models[f"{name} pretrained"] = loaded
        if random:
            models[f"{name} random init"] = random_init(loaded, seed)
    for name in finetuned:
        models[f"{Path(name).name} fine-tuned"] = load_probe_model(str(name))
    if from_scratch is not None:
        if Path(from_scratch).is_dir():
            models["from scratch (synthetic)"] = load_probe_model(str(from_scratch))
        else:
            skipped.append(f"from-scratch model: {from_scratch} absent (notebook 03 trains it)")
    if log_mel:
        whisper = next((m for k, m in models.items() if k.startswith("whisper")), None)
        models["log-mel input"] = LogMel(whisper or load_probe_model(WHISPER_ENCODERS[0]))
    return models, skipped


@torch.no_grad()
def log_mel_states(baseline: LogMel, rows) -> probe.HiddenStates:
    """One "layer": each clip's ``[frames, mels]`` log-mel, at the encoder's frame rate."""
    from phonex.audio import load_audio

    model = getattr(baseline.whisper, "model", baseline.whisper)
    chunks, offsets = [], [0]
    for row in rows:
        wave = torch.from_numpy(load_audio(row.audio, 16000))[None]
        mel = model.log_mel(wave, torch.tensor([wave.shape[1]]))[0].T  # [10 ms frames, mels]
        frames = int(model._get_feat_extract_output_lengths(wave.shape[1]))
        mel = torch.nn.functional.pad(mel, (0, 0, 0, 2 * frames - mel.shape[0]))
        pooled = mel.reshape(frames, 2, -1).mean(1)  # frame j: 10 ms frames 2j and 2j + 1
        chunks.append(pooled.numpy().astype(np.float16))
        offsets.append(offsets[-1] + frames)
    seconds = model.config.inputs_to_logits_ratio / 16000
    return probe.HiddenStates([np.concatenate(chunks)], np.array(offsets),
                              [row.id for row in rows], seconds)  # fmt: skip


def hidden_states(model, rows, cache_dir: str | Path | None = None) -> probe.HiddenStates:
    """Every layer's hidden states of ``rows`` (the log-mel baseline: its one layer)."""
    if isinstance(model, LogMel):
        return log_mel_states(model, rows)
    return probe.extract_hidden_states(model, rows, cache_dir, progress=False)


class _Frames:
    """Some frames of a ``[frames, dim]`` array, read only when indexed."""

    def __init__(self, array: np.ndarray, frames: np.ndarray):
        self.array, self.frames = array, frames
        self.shape = (len(frames), array.shape[1])

    def __getitem__(self, index) -> np.ndarray:
        return self.array[self.frames[index]]


def subset(states: probe.HiddenStates, labels: probe.FrameLabels, clips: np.ndarray):
    """The states and labels of some clips (clip numbers stay those of the whole set)."""
    frames = np.concatenate([np.arange(states.offsets[i], states.offsets[i + 1]) for i in clips])
    sizes = [states.frames(i) for i in clips]
    part = probe.HiddenStates([_Frames(layer, frames) for layer in states.layers],
                              np.r_[0, np.cumsum(sizes)], [states.ids[i] for i in clips],
                              states.frame_seconds)  # fmt: skip
    picked = probe.FrameLabels(labels.phones[frames], labels.contexts[frames],
                               labels.clips[frames])  # fmt: skip
    return part, picked


def probe_folds(
    states: probe.HiddenStates, labels: probe.FrameLabels, folds: Sequence[np.ndarray],
    max_iter: int = 50, max_train_frames: int | None = None, seed: int = 0,
) -> probe.ProbeResults:  # fmt: skip
    """Probes per fold (fitted on the other folds' clips), test frames pooled over folds.

    Args:
        folds: test clip indices per fold (:func:`phonex.timit_frames.speaker_folds`); one
            fold gives one train/test split.
    """
    everything = np.arange(len(states.ids))
    runs = []
    for test in folds:
        fit = np.setdiff1d(everything, test)
        runs.append(probe.probe_layers(*subset(states, labels, fit), *subset(states, labels, test),
                                       max_iter=max_iter, max_train_frames=max_train_frames,
                                       seed=seed, progress=False))  # fmt: skip
    clips = np.concatenate([r.clips for r in runs])
    hits = {key: np.concatenate([r.hits[key] for r in runs]) for key in runs[0].hits}
    rows = []
    for (layer, task), correct in hits.items():
        fold_rows = [r.table[(r.table.layer == layer) & (r.table.task == task)].iloc[0]
                     for r in runs]  # fmt: skip
        tested = sum(int(row.test_frames) for row in fold_rows)
        low, high = probe.bootstrap_ci(correct, clips, seed=seed)
        rows.append({"layer": layer, "task": task, "accuracy": float(correct.mean()),
                     "ci_low": low, "ci_high": high,
                     "majority": sum(row.majority * row.test_frames for row in fold_rows) / tested,
                     "train_frames": int(np.mean([row.train_frames for row in fold_rows])),
                     "test_frames": tested, "folds": len(runs)})  # fmt: skip
    table = pd.DataFrame(rows)
    phone = table[table.task == "phone"].set_index("layer").accuracy
    table["selectivity"] = table.layer.map(phone - table[table.task == "control"]
                                           .set_index("layer").accuracy)  # fmt: skip
    predictions = {
        k: np.concatenate([r.predictions[k] for r in runs]) for k in runs[0].predictions
    }
    return probe.ProbeResults(table, np.concatenate([r.truth for r in runs]), predictions, hits,
                              clips)  # fmt: skip


def curves(
    models: Mapping[str, object], clips: LabelledClips, folds: Sequence[np.ndarray],
    cache_dir: str | Path | None = None, max_iter: int = 50,
    max_train_frames: int | None = None, seed: int = 0,
) -> dict[str, probe.ProbeResults]:  # fmt: skip
    """:func:`probe_folds` for every model on the same clips, labels and folds."""
    out = {}
    for name, model in models.items():
        states = hidden_states(model, clips.rows, cache_dir)
        out[name] = probe_folds(states, label_clips(states, clips), folds, max_iter,
                                max_train_frames, seed)  # fmt: skip
    return out


def curve_table(results: Mapping[str, probe.ProbeResults]) -> pd.DataFrame:
    """Every model's probe table, with a ``model`` column, in the mapping's order."""
    return pd.concat([r.table.assign(model=name) for name, r in results.items()],
                     ignore_index=True)  # fmt: skip


def peak_layer(results: probe.ProbeResults, n: int = 1000, level: float = 0.95,
               seed: int = 0) -> dict[str, float | int]:  # fmt: skip
    """Where the phone curve peaks, and how sure: the best layer of resampled test clips.

    Returns:
        ``layer`` (best on all clips), ``layer_low``/``layer_high`` (the central ``level``
        range of the resamples' best layers) and ``share`` (of resamples that agree with it).
    """
    layers = sorted(k for k, task in results.hits if task == "phone")
    ids, clip_of = np.unique(results.clips, return_inverse=True)
    sizes = np.bincount(clip_of, minlength=len(ids))
    per_clip = np.stack([np.bincount(clip_of, weights=results.hits[(k, "phone")].astype(float),
                                     minlength=len(ids)) for k in layers])  # fmt: skip
    best = layers[int(np.argmax(per_clip.sum(1) / sizes.sum()))]
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(n, len(ids)))
    accuracy = per_clip[:, draws].sum(2) / sizes[draws].sum(1)  # [layers, n]
    chosen = np.array(layers)[accuracy.argmax(0)]
    tail = (1 - level) / 2
    return {"layer": best, "layer_low": int(np.quantile(chosen, tail, method="lower")),
            "layer_high": int(np.quantile(chosen, 1 - tail, method="higher")),
            "share": float(np.mean(chosen == best))}  # fmt: skip


def best_layers(results: Mapping[str, probe.ProbeResults], data: str = "") -> pd.DataFrame:
    """Per model: its peak (:func:`peak_layer`), accuracy there with its interval, control
    accuracy, selectivity, majority class and the number of layers."""
    rows = []
    for name, result in results.items():
        peak = peak_layer(result)
        table = result.table.set_index(["task", "layer"])
        phone, control = table.loc[("phone", peak["layer"])], table.loc[("control", peak["layer"])]
        rows.append({"data": data, "model": name, **peak, "accuracy": phone.accuracy,
                     "ci_low": phone.ci_low, "ci_high": phone.ci_high,
                     "control": control.accuracy, "selectivity": phone.selectivity,
                     "majority": phone.majority,
                     "layers": int(result.table.layer.max()) + 1})  # fmt: skip
    return pd.DataFrame(rows)


def plot_probe_curves(table: pd.DataFrame, title: str = "", ax=None) -> plt.Figure:
    """Phone accuracy per layer with its interval (solid), the control task (dashed); a model
    with one layer (the log-mel baseline) is a horizontal band; the majority class dotted.

    Args:
        table: :func:`curve_table` rows.
    """
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(8, 4.2)) if ax is None else (ax.figure, ax)
    top = int(table.layer.max())
    for (model, group), colour in zip(table.groupby("model", sort=False),
                                      sns.color_palette("tab10")):  # fmt: skip
        for task, style in (("phone", "-"), ("control", "--")):
            rows = group[group.task == task].sort_values("layer")
            label = f"{model}: {task}" if task == "phone" else None
            if len(rows) == 1:
                row = rows.iloc[0]
                ax.axhline(row.accuracy, color=colour, ls=style, lw=1.2, label=label)
                ax.axhspan(row.ci_low, row.ci_high, color=colour, alpha=0.12)
                continue
            ax.plot(rows.layer, rows.accuracy, style, marker="o", ms=4, color=colour, label=label)
            ax.fill_between(rows.layer, rows.ci_low, rows.ci_high, color=colour, alpha=0.2)
    ax.axhline(table.majority.max(), color="grey", ls=":", label="majority class")
    ax.set(xlabel="layer (0 = input of block 1)", ylabel="frame accuracy, unheard speakers",
           xlim=(-0.2, top + 0.2), ylim=(0, 1), title=title)  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5), title="dashed: control")
    fig.tight_layout()
    return fig


def plot_window_parity(parities: Mapping[str, pd.DataFrame], ax=None) -> plt.Figure:
    """How far each encoder's clip-length hidden states are from Whisper's 30 s window, per
    layer (frames but the last; log scale).

    Args:
        parities: encoder name -> the table of :func:`phonex.whisper_ctc.compare_with_30s_window`.
    """
    fig, ax = plt.subplots(figsize=(6, 3.5)) if ax is None else (ax.figure, ax)
    for name, table in parities.items():
        ax.semilogy(table.index, table.max_diff_but_last, marker="o", label=name)
    ax.set(xlabel="layer (0 = input of block 1)", ylabel="max |clip - 30 s window|",
           title="Clip-length encoder against Whisper's 30 s window")  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
