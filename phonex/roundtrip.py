"""TTS -> ASR round trips: which engines' speech the recognizer understands, what a vocoder
loses, and how fast each engine speaks.

- :func:`engine_report`: every engine, whether it runs here and why not;
- :func:`vocode_rows`: a corpus through Tacotron2's log-mel and back with Griffin-Lim, written
  as a new set of clips (the manifest rows point at them);
- :func:`summarize`: top-1/top-5 and phone error rate per group of recognised clips;
- :func:`usable_engines` and :func:`engine_voice_grid`: the engines and voices that run here;
- :func:`unheard_configurations`, :func:`engine_training_config` and
  :func:`unheard_engine_table`: the unheard-engine experiment on whichever engines run here;
- :func:`real_time_factor`: synthesis seconds per second of speech.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from phonex.config import AudioConfig, Config
from phonex.corpus import Utterance, file_checksum


def engine_report() -> pd.DataFrame:
    """One row per TTS engine: ``engine, available, why`` (why not, when it is not)."""
    from phonex.tts import ENGINES

    rows = []
    for name, engine in ENGINES.items():
        ok, why = engine.available()
        rows.append({"engine": name, "available": ok, "why": why})
    return pd.DataFrame(rows)


def vocode_rows(rows: Sequence[Utterance], out_dir: str | Path, n_iter: int = 60,
                progress: bool = True) -> list[Utterance]:  # fmt: skip
    """Each clip through Tacotron2's log-mel (22.05 kHz, 80 bands) and back with Griffin-Lim.

    What a Tacotron2 pipeline with a Griffin-Lim vocoder can at best give back: the mel keeps the
    spectral envelope, Griffin-Lim guesses the phases. Clips already vocoded are reused.

    Returns:
        the rows, pointing at ``out_dir/<id>.wav`` (16 kHz), ``augmentation="griffin-lim"``.
    """
    from tqdm.auto import tqdm

    from phonex.audio import griffin_lim, load_audio, mel_spectrogram, resample, save_audio

    cfg = AudioConfig.tacotron2()
    out = []
    for row in tqdm(rows, desc="griffin-lim", disable=not progress):
        path = Path(out_dir) / f"{row.id}.wav"
        if not path.exists():
            wave = load_audio(row.audio, cfg.sample_rate)
            vocoded = griffin_lim(mel_spectrogram(wave, cfg), cfg, n_iter)
            path.parent.mkdir(parents=True, exist_ok=True)
            save_audio(path, resample(vocoded, cfg.sample_rate, 16000), 16000)
        out.append(dataclasses.replace(row, audio=str(path.resolve()), augmentation="griffin-lim",
                                       alignment="", sample_rate=16000,
                                       checksum=file_checksum(path)))  # fmt: skip
    return out


def summarize(results: pd.DataFrame, rows: Sequence[Utterance], by: Sequence[str]) -> pd.DataFrame:
    """Top-1, top-5, MRR and phone error rate per group of :func:`evaluate_recognition` rows.

    Args:
        results: from :func:`phonex.recognize.evaluate_recognition`.
        rows: the recognised clips (their ``phones`` are the PER references).
        by: grouping columns, e.g. ``["engine", "speaker", "condition"]``.

    Returns:
        one row per group: the ``by`` columns, ``top1``..``top5``, ``mrr``, ``clips``, ``per``;
        no rows (the same columns) when nothing was recognised.
    """
    from phonex.metrics import error_rate, summarize_ranks

    if results.empty:  # evaluate_recognition of no clips has no columns to group by
        return pd.DataFrame(columns=[*by, *summarize_ranks([1]), "per"])
    reference = {r.id: r.phones for r in rows}
    out = []
    for key, group in results.groupby(list(by), sort=False):
        per = error_rate([reference[i] for i in group.id], group.phones.tolist()).rate
        key = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(by, key)), **summarize_ranks(group["rank"].tolist()), "per": per})
    return pd.DataFrame(out)


def aligned_durations(loaded, rows: Sequence[Utterance], progress: bool = True) -> pd.DataFrame:
    """Phone durations of each clip by forced alignment of its phones: one row per phone,
    ``id, engine, speaker, phone, class, duration_s`` (and ``true_s`` where the clip has
    reference times, e.g. espeak-ng's)."""
    from tqdm.auto import tqdm

    from phonex.align import align
    from phonex.audio import load_audio
    from phonex.intervals import read_alignment
    from phonex.phonesets import broad_class

    records = []
    for row in tqdm(rows, desc="aligning", disable=not progress):
        words = align(loaded, load_audio(row.audio, loaded.sample_rate), row.text,
                      tokens=row.phones)  # fmt: skip
        phones = [p for w in words for p in w.phones]
        truth = read_alignment(row.alignment)["phones"] if row.alignment else [None] * len(phones)
        for (phone, start, end, _), true in zip(phones, truth):
            records.append({"id": row.id, "engine": row.engine, "speaker": row.speaker,
                            "phone": phone, "class": broad_class(phone, unknown="other"), "duration_s": end - start,
                            "true_s": true.end - true.start if true else np.nan})  # fmt: skip
    return pd.DataFrame(records)


def split_for_engines(rows: Sequence[Utterance], train_engines: Sequence[str], dev: float = 0.15,
                      seed: int = 0) -> list[Utterance]:  # fmt: skip
    """Rows re-split for the unheard-engine experiment: the clips of ``train_engines`` train (the
    clips of a fraction of names kept for dev, to choose the checkpoint), every other engine's
    clips test."""
    from phonex.corpus import split_by_group

    heard = [r for r in rows if r.engine in train_engines]
    if not heard:
        raise ValueError(f"no clips of {list(train_engines)} to train on")
    unheard = [dataclasses.replace(r, split="test") for r in rows if r.engine not in train_engines]
    return split_by_group(heard, key="text", test=0, dev=dev, seed=seed) + unheard


def train_on_engines(rows: Sequence[Utterance], train_engines: Sequence[str], run_dir: str | Path,
                     cfg, progress: bool = True,
                     cache_root: str | Path | None = None) -> Path:  # fmt: skip
    """Train ``cfg`` (its ``model.name``: from scratch, or a model to fine-tune) on the clips of
    ``train_engines``; returns the best model's directory (a finished run is reused).
    ``cache_root``: the ``model.feature_cache`` folder (``None``: data/interim/features)."""
    from phonex.corpus import write_manifest
    from phonex.train import train

    run_dir = Path(run_dir)
    manifest = write_manifest(split_for_engines(rows, train_engines, seed=cfg.train.seed),
                              run_dir / "manifest.jsonl")  # fmt: skip
    return train(cfg, [manifest], run_dir, progress=progress, cache_root=cache_root).best_dir


def usable_engines(
    wanted: Sequence[str], report: pd.DataFrame | None = None
) -> tuple[list[str], dict[str, str]]:
    """The engines of ``wanted`` that run here, and why each of the others does not.

    Args:
        wanted: engine names, e.g. ``["espeak", "piper", "flite", "festival"]``.
        report: :func:`engine_report` (made here when None).

    Returns:
        (usable engines in the order of ``wanted``, {absent engine: why}).
    """
    report = engine_report() if report is None else report
    status = {r.engine: (bool(r.available), r.why) for r in report.itertuples()}
    used, absent = [], {}
    for name in wanted:
        ok, why = status.get(name, (False, f"unknown engine; known: {sorted(status)}"))
        if ok:
            used.append(name)
        else:
            absent[name] = why
    return used, absent


def engine_voice_grid(
    engines: Sequence[str], path: str | Path, size: str = "engines"
) -> tuple[Path, dict[str, str]]:
    """The packaged ``size`` voice grid cut to ``engines`` and to the voices installed here.

    Debian ships festival's voices as separate packages, so festival can run without some of
    the grid's voices; those are left out instead of failing the corpus build.

    Args:
        engines: the engines that run here (:func:`usable_engines`).
        path: where the grid is written, for ``DataConfig(voice_grid=str(path))``.
        size: the grid of ``phonex/data/voices.yaml`` to cut.

    Returns:
        (``path``, {left-out speaker: why}).
    """
    import yaml

    from phonex.config import PACKAGE_DATA_DIR
    from phonex.tts import load_voice_grid, missing_voices

    spec = yaml.safe_load((PACKAGE_DATA_DIR / "voices.yaml").read_text())[size]
    wanted = [v for v in load_voice_grid(size).voices if v.engine in engines]
    missing = missing_voices(wanted)
    grid = {}
    for engine in [e for e in engines if e in spec]:
        entry = dict(spec[engine])
        gone = {s.split(":", 1)[1] for s in missing if s.startswith(f"{engine}:")}
        names = {a: [f"{a}+{v}" if v else a for v in entry.get("variants", [""])]
                 for a in entry["voices"]}  # fmt: skip
        entry["voices"] = [a for a, own in names.items() if not set(own) <= gone]
        entry["test"] = [n for n in entry.get("test", []) if n not in gone]
        if entry["voices"]:
            grid[engine] = entry
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({size: grid}, sort_keys=False))
    return path, missing


def unheard_configurations(
    engines: Sequence[str], from_scratch: bool = False
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Training sets of the unheard-engine experiment that leave an engine to test on.

    Fine-tuning (the default model has heard espeak-ng): espeak-ng alone (the model as it is),
    espeak-ng plus each other engine, and every engine but one when there are more than two
    others. From scratch: each engine alone, and all but each one when there are more than two.
    A set that covers every engine here has nothing left to test on and is skipped.

    Args:
        engines: the engines that run here (:func:`usable_engines`).
        from_scratch: the configurations of a model trained from nothing.

    Returns:
        ({label: training engines}, {skipped label: why}).
    """
    engines = list(engines)
    if from_scratch:
        sets = {f"{e} only": [e] for e in engines}
        if len(engines) > 2:
            sets |= {f"all but {e}": [x for x in engines if x != e] for e in engines}
    else:
        others = [e for e in engines if e != "espeak"]
        sets = {"espeak-ng only": ["espeak"]}
        sets |= {f"espeak-ng + {e}": ["espeak", e] for e in others}
        if len(others) > 2:
            sets |= {f"all but {e}": [x for x in engines if x != e] for e in others}
    configurations, skipped = {}, {}
    for label, train_engines in sets.items():
        if set(engines) <= set(train_engines):
            skipped[label] = f"no unheard engine left to test on (installed: {', '.join(engines)})"
        else:
            configurations[label] = train_engines
    return configurations, skipped


def engine_training_config(
    recipe: Config, steps: int, seed: int = 0, start_from: str | Path | None = None
) -> Config:
    """The recipe's :class:`~phonex.config.Config` for one unheard-engine training run.

    Args:
        recipe: e.g. ``Config.load("configs/drugs-tiny.yaml")``.
        steps: training steps; a third of them between evaluations and between checkpoints.
        seed: the training seed.
        start_from: a model directory to fine-tune (learning rate 1e-3, a tenth of the steps
            warming up); None trains the recipe's model from scratch with its own schedule.
    """
    overrides = [f"train.max_steps={steps}", f"train.eval_every={max(1, steps // 3)}",
                 f"train.checkpoint_every={max(1, steps // 3)}", f"train.seed={seed}"]  # fmt: skip
    if start_from is not None:
        overrides += [f"model.name={start_from}", "train.lr=0.001",
                      f"train.warmup_steps={steps // 10}"]  # fmt: skip
    return recipe.override(overrides)


def unheard_engine_table(
    rows: Sequence[Utterance],
    configurations: dict[str, list[str]],
    words: Sequence[str],
    runs_dir: str | Path,
    cfg: Config,
    heard: Sequence[str] = (),
    progress: bool = True,
    cache_root: str | Path | None = None,
) -> pd.DataFrame:
    """Recognition of the engines each configuration did not train on.

    Args:
        rows: every clip of every engine (the notebook 07 corpus).
        configurations: {label: training engines}, from :func:`unheard_configurations`.
        words: the lexicon the models rank.
        runs_dir: one run folder per configuration (finished runs are reused).
        cfg: :func:`engine_training_config`.
        heard: engines ``cfg.model.name`` has already heard: a configuration of only these
            uses that model as it is, untrained.
        cache_root: the ``model.feature_cache`` folder of the runs (``None``: the default).

    Returns:
        :func:`summarize` by ``engine`` of every configuration, with ``trained_on`` (its label);
        no rows when ``configurations`` is empty.
    """
    from phonex.recognize import Recognizer, evaluate_recognition

    tables = []
    for label, train_engines in configurations.items():
        if heard and set(train_engines) <= set(heard):
            best = Path(cfg.model.name)
        else:
            run_dir = Path(runs_dir) / label.replace(" ", "_")
            best = train_on_engines(rows, train_engines, run_dir, cfg, progress, cache_root)
        test = [r for r in rows if r.engine not in train_engines]
        found = evaluate_recognition(Recognizer(best, words), test, progress=False)
        tables.append(summarize(found, test, ["engine"]).assign(trained_on=label))
    if not tables:
        return pd.DataFrame(columns=[*summarize(pd.DataFrame(), [], ["engine"]), "trained_on"])
    return pd.concat(tables, ignore_index=True)


def real_time_factor(voice, texts: Sequence[str], repeats: int = 1) -> dict[str, float]:
    """Seconds of synthesis per second of speech for ``voice`` over ``texts`` (lower: faster).

    The first text is spoken once before timing, so loading a model or a voice is not counted.
    """
    from phonex.tts import synthesize

    synthesize(texts[0], voice)
    start, audio = time.perf_counter(), 0.0
    for _ in range(repeats):
        for text in texts:
            audio += synthesize(text, voice).duration
    seconds = time.perf_counter() - start
    return {"engine": voice.engine, "voice": voice.name, "texts": len(texts) * repeats,
            "synthesis_s": seconds, "audio_s": audio, "rtf": seconds / audio if audio else np.nan}  # fmt: skip
