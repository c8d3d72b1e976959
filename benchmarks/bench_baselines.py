"""Peer baselines side by side: phonex against Whisper, hama and pocketsphinx, same clips, same run.

The systems (``benchmarks/baselines``, ``pip install -c constraints.txt -e ".[baselines]"``):
phonex's real-speech model (``phonex-en``), its recipe model (``phonex-tiny``) and its
fine-tuned Whisper encoder (``phonex-whisper-ctc``, notebook 08); Whisper tiny.en through
faster-whisper (transcript, then fuzzy match); hama's IPA phone recogniser; pocketsphinx with its
en-us models. A system that is not installed is recorded as absent.

Rows (every phone scored in TIMIT-39, :mod:`phonex.phonesets`):

- drug names, top-1 and top-5 over the whole lexicon (565 names): espeak-ng's 2 held-out voices
  (``--clips`` sampled from the quick corpus's test split) and, one row each, the engines phonex
  never heard (piper, flite, festival: ``--clips`` seeded names, the engine's voices in turn,
  the clips ``bench_realspeech.py`` scores); clean and with pink noise at 10 dB;
- PER on real speech: timit-sample-dev against its hand labels (TIMIT-39 protocol, silences
  dropped, :func:`phonex.metrics.timit_error_rate`; all 80 unless ``--clips`` is smaller) and
  speechocean762's held-out speakers against espeak-ng's (en-us) phones of the prompt (when
  ../shared/data has them);
- closed-vocabulary real words: FSDD digits of the speaker phonex-en never heard (the test split
  of :func:`phonex.realspeech.corpus_rows`), top-1 over the 10 digit words (when present);
- phone boundaries within 20 ms: against espeak-ng's true phone times (held-out voices; onsets
  and offsets of matched phones) and the speechbrain samples' reference phone ends (offsets);
- seconds per clip of every system in every row (one warm-up call first, not timed).

    python benchmarks/bench_baselines.py [--clips 100] [--systems phonex-en hama ...]
        [--tasks timit fsdd ...] [--out baselines]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from baselines import SAMPLE_RATE, SYSTEMS, load_systems
from bench_alignment import reference_phones
from bench_realspeech import UNHEARD_ENGINES, engine_rows, held_out, timit_rows
from common import RESULTS_DIR, record, sample
from tqdm.auto import tqdm

from phonex.audio import load_audio
from phonex.config import PROCESSED_DIR, SHARED_DATA_DIR
from phonex.corpus import read_manifest
from phonex.intervals import read_alignment
from phonex.lexicon import load_drugs
from phonex.metrics import (
    boundary_accuracy,
    error_rate,
    matched_boundary_errors,
    rank_of,
    timit_error_rate,
)
from phonex.phonesets import UnknownPhoneError, ipa_to_39
from phonex.plots import plot_baselines
from phonex.readers import DIGIT_WORDS
from phonex.recognize import noisy

PACKAGES = {"whisper": "faster-whisper", "hama": "hama", "pocketsphinx": "pocketsphinx"}
TASKS = ("espeak", "unheard", "fsdd", "speechocean", "timit", "boundaries")
TRAINING_MANIFEST = PROCESSED_DIR / "realspeech" / "manifest-en-us.jsonl"  # phonex-en's


def run_timed(call, items, desc: str) -> tuple[list, float]:
    """``call`` on every item after one untimed warm-up call; outputs and mean seconds per item."""
    call(items[0])
    outputs, seconds = [], 0.0
    for item in tqdm(items, desc=desc, leave=False):
        start = time.perf_counter()
        outputs.append(call(item))
        seconds += time.perf_counter() - start
    return outputs, seconds / len(items)


def recognition_rows(systems, task: str, rows, words, snrs=(None,)) -> list[dict]:
    """Top-1 and top-5 of every system on ``rows`` (truth: ``row.text``), per noise condition."""
    clean = [load_audio(r.audio, SAMPLE_RATE) for r in rows]
    recognizers = {name: system.recognizer(words) for name, system in systems.items()}
    out = []
    for snr in snrs:
        waves = [noisy(w, snr, "pink", r.id, SAMPLE_RATE) for w, r in zip(clean, rows)]
        condition = "clean" if snr is None else f"{snr:g} dB"
        top1, top5, seconds = {}, {}, {}
        for name, recognize in recognizers.items():
            ranked, seconds[name] = run_timed(recognize, waves, f"{name}: {task}, {condition}")
            ranks = np.array([rank_of(r.text, words_) for r, words_ in zip(rows, ranked)])
            top1[name] = float(np.mean(ranks == 1))
            top5[name] = float(np.mean((ranks >= 1) & (ranks <= 5)))
        task_name = f"{task}, {condition}"
        out.append(_row(task_name, "top-1", top1, seconds, len(rows), len(words)))
        out.append(_row(task_name, "top-5", top5, seconds, len(rows), len(words)))
    return out


def per_row(systems, task: str, rows) -> dict:
    """Phone error rate in TIMIT-39 of every system's transcripts."""
    waves = [load_audio(r.audio, SAMPLE_RATE) for r in rows]
    references = [" ".join(ipa_to_39(r.phones.split(), strict=False)) for r in rows]
    values, seconds = {}, {}
    for name, system in systems.items():
        phones, seconds[name] = run_timed(system.transcribe, waves, f"{name}: {task}")
        values[name] = error_rate(references, [" ".join(p) for p in phones]).rate
    return _row(task, "PER", values, seconds, len(rows), higher_is_better=False)


def timit_row(systems, task: str, rows) -> dict:
    """PER on timit-sample-dev's hand labels: each system's phones in its own label set through
    TIMIT's protocol (:func:`phonex.metrics.timit_error_rate`)."""
    waves = [load_audio(r.audio, SAMPLE_RATE) for r, _ in rows]
    values, seconds = {}, {}
    for name, system in systems.items():
        heard, seconds[name] = run_timed(system.raw_phones, waves, f"{name}: {task}")
        labels = {label_set for _, label_set in heard}
        if len(labels) != 1:
            raise ValueError(f"{name}: phones in several label sets {sorted(labels)}")
        label_set = labels.pop()
        hyps = [_protocol_known(p, label_set) for p, _ in heard]
        values[name] = timit_error_rate([ref for _, ref in rows], hyps, label_set).rate
    return _row(task, "PER", values, seconds, len(rows), higher_is_better=False)


def _protocol_known(phones: list[str], label_set: str) -> list[str]:
    """``phones`` without those TIMIT's protocol cannot fold (a few of hama's IPA symbols)."""
    if label_set != "espeak":
        return phones
    kept = []
    for phone in phones:
        try:
            ipa_to_39([phone], convention="timit")
        except UnknownPhoneError:
            continue
        kept.append(phone)
    return kept


def boundary_row(systems, task: str, clips: list, reference_labels: str, offsets_only=False):
    """Share of matched phones' boundaries within 20 ms of the reference, per system that aligns.

    Args:
        clips: ``(wave, text, phones or None, reference phone intervals)`` each; a system aligns
            ``phones`` (espeak-ng IPA) when given and it can, else the words of ``text``.
        reference_labels: the references' label set, ``"espeak"`` or ``"timit"``.
        offsets_only: score phone ends only (references whose starts are not their own).
    """
    values, seconds, matched = {}, {}, {}
    for name, system in systems.items():
        if not system.aligns:
            continue
        spans, seconds[name] = run_timed(lambda clip, s=system: s.align(*clip[:3]), clips,
                                         f"{name}: {task}")  # fmt: skip
        errors, hits, total = [], 0, 0
        for clip, hypothesis in zip(clips, spans):
            result = matched_boundary_errors(clip[3], hypothesis, reference_labels,
                                             system.align_labels)  # fmt: skip
            errors += [*([] if offsets_only else result.onset_error), *result.offset_error]
            hits, total = hits + result.matched, total + result.reference_phones
        values[name] = boundary_accuracy(errors)["within_20ms"]
        matched[name] = round(hits / total, 4)
    return {**_row(task, "within 20 ms", values, seconds, len(clips)), "matched_phones": matched}


def espeak_clips(rows) -> list:
    """Held-out espeak-ng clips with their reference phones and espeak-ng's own phone times."""
    return [(load_audio(r.audio, SAMPLE_RATE), r.text, r.phones,
             read_alignment(r.alignment)["phones"]) for r in rows]  # fmt: skip


def speechbrain_clips(folder: Path) -> list | None:
    """The speechbrain samples' utterances (words only) with their reference phone ends."""
    annotation = folder / "annotation" / "ASR_train.json"
    if not annotation.is_file():
        return None
    utterances = json.loads(annotation.read_text()).values()
    return [(load_audio(u["wav"].replace("{data_root}", str(folder / "ASR")), SAMPLE_RATE),
             u["wrd"].lower(), None, reference_phones(u)) for u in utterances]  # fmt: skip


def _row(task, metric, values, seconds, clips, lexicon=None, higher_is_better=True) -> dict:
    row = {"task": task, "metric": metric, "higher_is_better": higher_is_better, "clips": clips,
           "values": {k: round(v, 4) for k, v in values.items()},
           "seconds_per_clip": {k: round(v, 4) for k, v in seconds.items()}}  # fmt: skip
    return {**row, "lexicon": lexicon} if lexicon else row


def best_phonex_lead(row: dict) -> float | None:
    """Best phonex value minus the best baseline's (positive: phonex ahead); None if one is
    missing."""
    sign = 1 if row["higher_is_better"] else -1
    ours = [sign * v for k, v in row["values"].items() if k.startswith("phonex")]
    theirs = [sign * v for k, v in row["values"].items() if not k.startswith("phonex")]
    return round(max(ours) - max(theirs), 4) if ours and theirs else None


def markdown_table(rows: list[dict], names: list[str]) -> str:
    """The results as a Markdown table: one line per row, one column per system, seconds last."""
    head = "| task | metric | clips | " + " | ".join(names) + " | phonex lead |"
    lines = [head, "|" + "---|" * (len(names) + 4)]
    for row in rows:
        cells = [f"{100 * row['values'][n]:.1f} %" if n in row["values"] else "–" for n in names]
        lead = best_phonex_lead(row)
        lines.append(
            f"| {row['task']} | {row['metric']} | {row['clips']} | "
            + " | ".join(cells)
            + f" | {'–' if lead is None else f'{100 * lead:+.1f}'} |"
        )
    lines += ["", "Seconds per clip:", "", "| task | " + " | ".join(names) + " |",
              "|" + "---|" * (len(names) + 1)]  # fmt: skip
    for row in rows:
        if row["metric"] in ("top-5",):
            continue
        cells = [f"{row['seconds_per_clip'][n]:.3f}" if n in row["seconds_per_clip"] else "–"
                 for n in names]  # fmt: skip
        lines.append(f"| {row['task']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def versions(names) -> dict:
    out = {}
    for name in names:
        package = PACKAGES.get(name)
        if package:
            out[name] = importlib.metadata.version(package)
    return out


def real_speech_rows(systems, tasks, pick, skipped: dict) -> list[dict]:
    """FSDD, speechocean762 and TIMIT rows, on speakers phonex-en never trained on; the
    speechbrain samples' phone ends."""
    rows = []
    for corpus, task in (("fsdd", "fsdd"), ("speechocean762-train", "speechocean")):
        if task not in tasks:
            continue
        if not (SHARED_DATA_DIR / corpus).is_dir():
            skipped[corpus] = f"{SHARED_DATA_DIR / corpus} not found"
            continue
        test = pick(held_out(corpus, "en-us", TRAINING_MANIFEST, 0)[0])
        if task == "fsdd":  # top-1 only: top-5 of 10 words says little
            rows.append(recognition_rows(systems, "spoken digits, FSDD held-out speaker "
                                         "(real speech)", test, list(DIGIT_WORDS))[0])  # fmt: skip
        else:
            rows.append(per_row(systems, "phones, speechocean762 held-out speakers "
                                "(real speech)", test))  # fmt: skip
    if "timit" in tasks:
        if (SHARED_DATA_DIR / "timit-sample-dev").is_dir():
            rows.append(timit_row(systems, "phones, timit-sample-dev (real speech, hand labels)",
                                  pick(timit_rows())))  # fmt: skip
        else:
            skipped["timit"] = f"{SHARED_DATA_DIR / 'timit-sample-dev'} not found"
    speechbrain = speechbrain_clips(SHARED_DATA_DIR / "speechbrain-samples")
    if "boundaries" in tasks and speechbrain is None:
        skipped["speechbrain-samples"] = "../shared/data/speechbrain-samples not found"
    elif "boundaries" in tasks:
        rows.append(boundary_row(systems, "phone ends, speechbrain samples (real speech)",
                                 speechbrain, "timit", offsets_only=True))  # fmt: skip
    return rows


def synthetic_rows(systems, tasks, pick, args, skipped: dict) -> list[dict]:
    """Drug names on held-out espeak-ng voices and on each unheard engine; espeak-ng
    boundaries."""
    drugs = [d.name for d in load_drugs()]
    held_out_voices = [r for r in read_manifest(PROCESSED_DIR / "drugs-quick" / "manifest.jsonl")
                       if r.split == "test" and r.augmentation == "none"]  # fmt: skip
    rows = []
    if "espeak" in tasks:
        rows += recognition_rows(systems, "drug names, espeak-ng held-out voices",
                                 pick(held_out_voices), drugs, (None, 10))  # fmt: skip
    for engine in UNHEARD_ENGINES if "unheard" in tasks else ():
        clips, why = engine_rows(engine, args.clips)
        if why:
            skipped[f"unheard engine {engine}"] = why
            continue
        rows += recognition_rows(systems, f"drug names, unheard engine {engine}", clips, drugs,
                                 (None, 10))  # fmt: skip
    if "boundaries" in tasks:
        rows.append(boundary_row(systems, "phone boundaries, espeak-ng held-out voices",
                                 espeak_clips(pick(held_out_voices, args.align_clips)),
                                 "espeak"))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100, help="clips per drug-name set and "
                        "noise condition, and FSDD / speechocean762 / TIMIT clips")  # fmt: skip
    parser.add_argument("--align-clips", type=int, default=60)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--out", default="baselines", help="results/<out>.{json,md,png}: a "
                        "run of some tasks only can keep the full table")  # fmt: skip
    args = parser.parse_args()
    systems, absent = load_systems(args.systems)

    def pick(rows: list, n: int = args.clips) -> list:  # each set seeded alike
        return sample(rows, n, np.random.default_rng(0))

    names = list(systems)
    skipped: dict[str, str] = {}
    rows = synthetic_rows(systems, args.tasks, pick, args, skipped)
    rows += real_speech_rows(systems, args.tasks, pick, skipped)
    for row in rows:
        row["phonex_lead"] = best_phonex_lead(row)

    table = markdown_table(rows, names)
    command = "python benchmarks/bench_baselines.py " + " ".join(sys.argv[1:])
    (RESULTS_DIR / f"{args.out}.md").write_text(f"`{command.strip()}`\n\n{table}")
    figure = plot_baselines(pd.DataFrame(rows))
    figure.savefig(RESULTS_DIR / f"{args.out}.png", dpi=110, bbox_inches="tight")
    record(args.out, {
        "command": command.strip(),
        "systems": names,
        "absent": absent,
        "versions": versions(names),
        "skipped": skipped,
        "clips_per_set": args.clips,
        "rows": rows,
    })  # fmt: skip
    print(table)


if __name__ == "__main__":
    main()
