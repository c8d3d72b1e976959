"""How much of a pretrained encoder to fine-tune: last-N freezing compared (notebook 03).

A Whisper encoder under a CTC head over the English phones (:mod:`phonex.english_phones`) can
train its head alone (N = 0), its last N blocks with the final norm and the head, or all of it
(N = all, ``-1``). For every N >= 0 the front end and the first ``L - N`` blocks are frozen:
they give each clip the same output every epoch, so :mod:`phonex.feature_cache` computes it
once per clip and the one training loop (:func:`phonex.train.train`, ``model.feature_cache``)
trains from it. N = all cannot use the cache: every step runs the whole encoder.

:func:`compare_freezing` measures, per encoder and N, what each choice costs and buys: trainable
parameters, cache build time, seconds per training step, the run's wall time, and phone error
rate after the run on real speech and on the espeak-ng drug corpus (the synthetic control).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from phonex.cached_training import CachedInputs
from phonex.config import Config
from phonex.corpus import Utterance, write_manifest
from phonex.data import SpeechDataset
from phonex.evaluate import evaluate
from phonex.feature_cache import FeatureCache, collate, forward_cached
from phonex.models import LoadedModel, count_parameters, freeze, load_model
from phonex.train import optimizer_step, prepare_model, time_training_steps, train

ALL = -1  # model.trainable_layers that trains every block (no cache)
TIMING_SECONDS = 5.0  # longest clip of the batch that times a training step


def choice_label(trainable: int) -> str:
    """``"N=0 (head)"``, ``"N=2"`` or ``"all"``: a freezing choice for tables and plots."""
    if trainable == ALL:
        return "all"
    return "N=0 (head)" if trainable == 0 else f"N={trainable}"


@dataclass
class Splits:
    """The clips of a comparison: trained on, scored on, and the synthetic control.

    Attributes:
        train: training clips (real speech and espeak-ng drug names, as the recipe mixes them).
        dev: the dev set every choice is scored on (real speech held out by speaker, or the
            drug corpus's dev voices when no real speech is at hand).
        control: held-out espeak-ng voices of the drug corpus (never trained on).
        dev_name: what ``dev`` is, for tables; ``notes``: what was left out and why.
    """

    train: list[Utterance]
    dev: list[Utterance]
    control: list[Utterance]
    dev_name: str
    notes: list[str] = field(default_factory=list)


def _sample(rows: Sequence[Utterance], count: int | None, rng: random.Random) -> list:
    if count is None or count >= len(rows):
        return list(rows)
    return sorted(rng.sample(list(rows), count), key=lambda r: r.id)


def comparison_splits(
    real_rows: Sequence[Utterance],
    drug_rows: Sequence[Utterance],
    sizes: dict[str, int] | None = None,
    seed: int = 0,
) -> Splits:
    """Seeded samples of the real-speech and drug-corpus manifests for the comparison.

    Args:
        real_rows: rows of the real-speech manifest (:mod:`phonex.realspeech`; may be empty).
        drug_rows: rows of the espeak-ng drug corpus (notebook 01).
        sizes: clip counts ``real_train``, ``drug_train``, ``dev``, ``control``; ``None``
            takes every clip (the recipe's data).
        seed: the sample's seed.

    Returns:
        :class:`Splits`; without real speech, the drug corpus's dev voices are the dev set.
    """
    sizes, rng = sizes or {}, random.Random(seed)
    real_dev = [r for r in real_rows if r.split == "dev"]
    real_train = [r for r in real_rows if r.split == "train"]
    drug_count = sizes.get("drug_train")
    if not real_train and drug_count is not None:  # the real speech's share goes to drug names
        drug_count += sizes.get("real_train", 0)
    train = _sample(real_train, sizes.get("real_train"), rng)
    train += _sample([r for r in drug_rows if r.split == "train"], drug_count, rng)
    control = [r for r in drug_rows if r.split == "test" and r.augmentation == "none"]
    control = _sample(control, sizes.get("control"), rng)
    if real_dev:
        # a small dev set is all sentences (speechocean762's held-out speakers): digits alone
        # would say little about phones
        sentences = [r for r in real_dev if r.source == "speechocean762"]
        pool = sentences if sizes.get("dev") and sentences else real_dev
        return Splits(train, _sample(pool, sizes.get("dev"), rng), control,
                      "real speech (held-out speakers)")  # fmt: skip
    dev = _sample([r for r in drug_rows if r.split == "dev"], sizes.get("dev"), rng)
    note = "no real speech: dev set is the drug corpus's dev voices"
    return Splits(train, dev, control, "drug names (dev voices)", [note])


def write_splits(splits: Splits, path: str | Path) -> Path:
    """The train and dev clips as one manifest (what :func:`phonex.train.train` reads)."""
    return write_manifest([*splits.train, *splits.dev], path)


def freezing_config(recipe: Config, encoder: str, trainable: int, steps: int = 0,
                    overrides: Sequence[str] = ()) -> Config:  # fmt: skip
    """The recipe for one freezing choice: its encoder and N, cached unless N is all.

    Args:
        recipe: e.g. ``Config.load("configs/phonex-en.yaml")``.
        encoder: ``model.name`` (``whisper-tiny.en``, ``whisper-base``).
        trainable: N (``-1``: all blocks).
        steps: training steps, with one evaluation and one checkpoint at the end; 0 (or the
            recipe's own count) keeps the recipe's schedule.
        overrides: further ``key=value`` settings (e.g. a short run's learning rate).
    """
    settings = [f"model.name={encoder}", f"model.trainable_layers={trainable}",
                f"model.feature_cache={str(trainable >= 0).lower()}"]  # fmt: skip
    if steps and steps != recipe.train.max_steps:
        settings += [f"train.max_steps={steps}", f"train.eval_every={steps}",
                     f"train.checkpoint_every={steps}", f"train.log_every={max(1, steps // 10)}",
                     "train.keep_checkpoints=1"]  # fmt: skip
    return recipe.override([*settings, *overrides])


def speech_set(cfg: Config, loaded: LoadedModel, rows: Sequence[Utterance]) -> SpeechDataset:
    """Clips as :func:`phonex.train.train` loads them (the same waveforms, so the same cache
    entries); labels outside the vocabulary become ``[UNK]``."""
    return SpeechDataset(rows, loaded.vocab, loaded.units, loaded.sample_rate,
                         max_seconds=cfg.train.max_seconds, drop_long=True, unknown="unk",
                         normalize=loaded.feature_extractor.do_normalize)  # fmt: skip


def build_caches(loaded: LoadedModel, waves: Sequence[np.ndarray], choices: Sequence[int],
                 cache_root: str | Path, dtype: str = "float16") -> dict[int, dict]:  # fmt: skip
    """Build the feature cache of every N >= 0 of ``choices``, each timed.

    Returns:
        ``{N: {"cache_s", "computed", "clips"}}``: seconds, clips computed (not already
        stored) and clips in all.
    """
    timings = {}
    for n in choices:
        if n == ALL:
            continue
        cache = FeatureCache(loaded.model, n, cache_root, dtype)
        before = len(cache.entries)
        start = time.perf_counter()
        cache.build(waves)
        timings[n] = {"cache_s": time.perf_counter() - start,
                      "computed": len(cache.entries) - before, "clips": len(waves)}  # fmt: skip
    return timings


def time_cached_steps(loaded: LoadedModel, cache: FeatureCache, examples: Sequence,
                      trainable: int, steps: int = 3) -> float:  # fmt: skip
    """Seconds per training step from cached features on one batch (on a copy of the model).

    The counterpart of :func:`phonex.train.time_training_steps` (waveforms, every layer run):
    the same batch, one warm-up step, AdamW over what N trains.
    """
    model = copy.deepcopy(loaded.model).train()
    freeze(model, trainable)
    batch = collate([cache.get(e.wave) for e in examples], [e.labels for e in examples])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    for i in range(steps + 1):
        if i == 1:  # the first step allocates optimizer state: not timed
            start = time.perf_counter()
        forward_cached(model, batch, cache.first_block).loss.backward()
        optimizer_step(model, optimizer, scaler, clip=1.0)
    return (time.perf_counter() - start) / steps


def step_times(loaded: LoadedModel, examples: Sequence, choices: Sequence[int],
               cache_root: str | Path, dtype: str = "float16") -> dict[int, float]:  # fmt: skip
    """Seconds per step on the same batch: from the cache for N >= 0, waveforms for all."""
    out = {}
    for n in choices:
        if n == ALL:
            out[n] = time_training_steps(loaded, list(examples), ALL, steps=2)["step_s"]
        else:
            cache = FeatureCache(loaded.model, n, cache_root, dtype)
            out[n] = time_cached_steps(loaded, cache, examples, n)
    return out


@torch.no_grad()
def score(loaded: LoadedModel, dataset: SpeechDataset, trainable: int, cache_root: str | Path,
          dtype: str = "float16", batch_size: int = 16) -> dict:  # fmt: skip
    """Phone error rate of ``loaded`` on ``dataset`` (greedy CTC), as training scores its dev set.

    N >= 0 runs the trained blocks on the cached frozen features (computed for clips not yet
    cached: the same numbers as the whole model up to the cache's float16); N = all runs the
    whole model on the waveforms (:func:`phonex.evaluate.evaluate`).
    """
    if trainable == ALL:
        return evaluate(loaded, dataset, batch_size)
    cache = FeatureCache(loaded.model, trainable, cache_root, dtype)
    cache.build([e.wave for e in dataset.examples])
    inputs = CachedInputs(loaded, dataset, dataset, torch.device("cpu"), cache, 0.0, 0, 0)
    return inputs.evaluate(batch_size, "no")


def encoder_parts(model) -> dict[str, int]:
    """Parameters of each part of a Whisper CTC model, input to output."""
    enc = model.encoder
    parts = {"front end (2 convolutions)": count_parameters(enc.conv1).total
             + count_parameters(enc.conv2).total,
             "positions (fixed)": count_parameters(enc.embed_positions).total}  # fmt: skip
    parts |= {f"block {i}": count_parameters(layer).total for i, layer in enumerate(enc.layers)}
    parts |= {"final layer norm": count_parameters(enc.layer_norm).total,
              "CTC head": count_parameters(model.lm_head).total}  # fmt: skip
    return parts


@dataclass
class Setup:
    """What every run of a comparison shares.

    Attributes:
        recipe: the recipe the runs change (``configs/phonex-en.yaml``).
        splits: the clips; ``manifest`` holds their train and dev rows.
        runs_dir: one run folder per encoder and N (finished runs are reused).
        cache_root: the feature caches' folder.
        steps: training steps of a run with N >= 0 (0: the recipe's).
        all_steps: steps of the N = all run; 0 only times its steps (it cannot use the cache).
        overrides: further settings of every run (``key=value``).
    """

    recipe: Config
    splits: Splits
    manifest: Path
    runs_dir: Path
    cache_root: Path
    steps: int = 0
    all_steps: int = 0
    overrides: Sequence[str] = ()
    progress: bool = True


def _run(setup: Setup, encoder: str, n: int, cfg: Config) -> dict:
    """Train one choice and score its best model on the dev set and the control."""
    run_dir = setup.runs_dir / f"{encoder}-N{'all' if n == ALL else n}"
    start = time.perf_counter()
    result = train(cfg, [setup.manifest], run_dir, progress=setup.progress,
                   cache_root=setup.cache_root)  # fmt: skip
    run_s = time.perf_counter() - start
    best = load_model(str(result.best_dir))
    dtype = cfg.model.feature_cache_dtype
    dev = score(best, speech_set(cfg, best, setup.splits.dev), n, setup.cache_root, dtype)
    control = score(best, speech_set(cfg, best, setup.splits.control), n, setup.cache_root,
                    dtype)  # fmt: skip
    return {"steps": result.state.step, "run_s": run_s, "dev_per": dev["error"],
            "trainable": result.params["trainable"], "total": result.params["total"],
            "control_per": control["error"], "dev_loss": dev["loss"],
            "control_loss": control["loss"], "run_dir": str(run_dir),
            "dev_hypotheses": dev["hypotheses"]}  # fmt: skip


def _timing_batch(data: SpeechDataset, max_samples: float, cfg: Config) -> list:
    # a batch like most clips here: one long LJ Speech clip would pad the whole batch to it
    short = [i for i, e in enumerate(data.examples) if len(e.wave) <= max_samples]
    short = short or list(range(len(data)))
    picked = random.Random(cfg.train.seed).sample(short, min(len(short), cfg.train.batch_size))
    return [data[i] for i in sorted(picked)]


def measure_costs(setup: Setup, encoder: str, choices: Sequence[int]) -> list[dict]:
    """What each freezing choice of one encoder costs, before any run.

    The pretrained encoder is loaded once; the cache of every N >= 0 is built (timed) over the
    training and dev clips, and one seeded batch of training clips (each at most
    :data:`TIMING_SECONDS` long) times a step of each choice.

    Args:
        setup: the comparison's data, folders and schedule.
        encoder: ``model.name`` of a Whisper encoder.
        choices: values of N (``-1``: all blocks); N over the encoder's blocks is left out.

    Returns:
        One dict per choice: ``encoder``, ``N``, ``choice``, ``trainable``, ``total``,
        ``cache_s`` (NaN for all), ``cache_clips`` and ``step_s``.
    """
    cfg = freezing_config(setup.recipe, encoder, 0, setup.steps, setup.overrides)
    loaded = prepare_model(cfg, setup.splits.train)
    choices = [n for n in choices if n <= loaded.model.config.encoder_layers]
    train_set = speech_set(cfg, loaded, setup.splits.train)
    dev_set = speech_set(cfg, loaded, setup.splits.dev)
    waves = [e.wave for data in (train_set, dev_set) for e in data.examples]
    dtype = cfg.model.feature_cache_dtype
    caches = build_caches(loaded, waves, choices, setup.cache_root, dtype)
    batch = _timing_batch(train_set, TIMING_SECONDS * loaded.sample_rate, cfg)
    seconds = step_times(loaded, batch, choices, setup.cache_root, dtype)
    rows = []
    for n in choices:
        counts = freeze(loaded.model, n)
        rows.append({"encoder": encoder, "N": n, "choice": choice_label(n),
                     "trainable": counts.trainable, "total": counts.total,
                     "cache_s": caches.get(n, {}).get("cache_s", np.nan),
                     "cache_clips": caches.get(n, {}).get("clips", 0),
                     "step_s": seconds[n]})  # fmt: skip
    return rows


def compare_encoder(setup: Setup, encoder: str, choices: Sequence[int]) -> list[dict]:
    """Every freezing choice of one encoder: :func:`measure_costs`, then a run of each and its
    scores (``steps``, ``run_s``, ``dev_per``, ``control_per``, ``dev_loss``, ``control_loss``
    (CTC, per clip), ``run_dir``, ``dev_hypotheses``; no run, and NaN scores, for N = all when
    ``setup.all_steps`` is 0)."""
    rows = measure_costs(setup, encoder, choices)
    for row in rows:
        n = row["N"]
        row |= {"steps": 0, "run_s": np.nan, "dev_per": np.nan, "control_per": np.nan,
                "dev_loss": np.nan, "control_loss": np.nan, "run_dir": ""}  # fmt: skip
        steps = setup.all_steps if n == ALL else setup.steps
        if n != ALL or steps:
            cfg = freezing_config(setup.recipe, encoder, n, steps, setup.overrides)
            row |= _run(setup, encoder, n, cfg)
    return rows


def compare_freezing(setup: Setup, encoders: Sequence[str], choices: Sequence[int]):
    """:func:`compare_encoder` for every encoder, as one table (one row per encoder and N)."""
    rows = [row for encoder in encoders for row in compare_encoder(setup, encoder, choices)]
    return pd.DataFrame(rows)


def plot_comparison(table: pd.DataFrame):
    """Trainable parameters, seconds per step, phone error rate and CTC loss per N, a line
    per encoder (dev solid, control dashed).

    Args:
        table: :func:`compare_freezing`'s rows (``choice``, ``encoder``, ``trainable``,
            ``step_s``, ``dev_per``, ``control_per``, ``dev_loss``, ``control_loss``).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for (encoder, rows), color in zip(table.groupby("encoder", sort=False), plt.cm.tab10.colors):
        x = np.arange(len(rows))
        axes[0].plot(x, rows.trainable / 1e6, "o-", color=color, label=encoder)
        axes[1].plot(x, rows.step_s, "o-", color=color, label=encoder)
        axes[2].plot(x, 100 * rows.dev_per, "o-", color=color, label=f"{encoder}: dev")
        axes[2].plot(x, 100 * rows.control_per, "s--", color=color, label=f"{encoder}: control")
        axes[3].plot(x, rows.dev_loss, "o-", color=color, label=f"{encoder}: dev")
        axes[3].plot(x, rows.control_loss, "s--", color=color, label=f"{encoder}: control")
        for ax in axes:
            ax.set_xticks(x, [c.split(" ")[0] for c in rows.choice])
    axes[0].set(ylabel="trainable parameters (M)", yscale="log", title="what trains")
    axes[1].set(ylabel="seconds per step", yscale="log", title="one training step")
    axes[2].set(ylabel="phone error rate (%)", title="after the run")
    axes[3].set(ylabel="CTC loss per clip", title="after the run")
    for ax in axes:
        ax.set_xlabel("blocks trained (N)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_training_loss(table: pd.DataFrame):
    """Training CTC loss against steps of every run of :func:`compare_freezing` (its
    ``metrics.csv``), one panel per encoder."""
    import matplotlib.pyplot as plt

    runs = table[table.run_dir != ""]
    encoders = list(dict.fromkeys(runs.encoder))
    fig, axes = plt.subplots(1, max(1, len(encoders)), figsize=(5.5 * max(1, len(encoders)), 3.2),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax, encoder in zip(axes[0], encoders):
        for row in runs[runs.encoder == encoder].itertuples():
            history = pd.read_csv(Path(row.run_dir) / "metrics.csv").dropna(subset=["train_loss"])
            ax.plot(history.step, history.train_loss, label=row.choice)
        ax.set(title=encoder, xlabel="step", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("training CTC loss")
    fig.tight_layout()
    return fig
