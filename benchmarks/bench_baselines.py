"""Peer baselines side by side: phonex against Whisper, hama and pocketsphinx, same clips, same run.

The systems (``benchmarks/baselines``, ``pip install -c constraints.txt -e ".[baselines]"``):
phonex's recipe model (``phonex-tiny``) and its fine-tuned Whisper encoder (``phonex-whisper-ctc``,
notebook 08); Whisper tiny.en through faster-whisper (transcript, then fuzzy match); hama's IPA
phone recogniser; pocketsphinx with its en-us models. A system that is not installed is recorded
as absent.

Rows (every phone scored in TIMIT-39, :mod:`phonex.phonesets`):

- drug names, top-1 and top-5 over the whole lexicon (565 names): espeak-ng's 2 held-out voices
  (``--clips`` sampled from the quick corpus's test split) and 8 voices of 3 engines phonex never
  heard (piper, flite, festival; notebook 07's corpus, ``--clips`` sampled); clean and with pink
  noise at 10 dB;
- PER on real speech: speechocean762's held-out speakers (when ../shared/data has it);
- closed-vocabulary real words: FSDD digits, top-1 over the 10 digit words (when present);
- phone boundaries within 20 ms: against espeak-ng's true phone times (held-out voices; onsets
  and offsets of matched phones) and the speechbrain samples' reference phone ends (offsets);
- seconds per clip of every system in every row (one warm-up call first, not timed).

    python benchmarks/bench_baselines.py [--clips 100] [--systems phonex-tiny hama ...]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from baselines import SAMPLE_RATE, SYSTEMS, load_systems
from bench_alignment import reference_phones
from common import RESULTS_DIR, record, sample
from tqdm.auto import tqdm

from phonex.audio import load_audio
from phonex.config import PROCESSED_DIR, SHARED_DATA_DIR, DataConfig
from phonex.corpus import read_manifest
from phonex.intervals import read_alignment
from phonex.lexicon import load_drugs
from phonex.metrics import boundary_accuracy, error_rate, matched_boundary_errors, rank_of
from phonex.phonesets import ipa_to_39
from phonex.plots import plot_baselines
from phonex.readers import DIGIT_WORDS, read_fsdd, speechocean_manifest
from phonex.recognize import noisy
from phonex.synth import build_corpus
from phonex.tts import ENGINES, get_engine

PACKAGES = {"whisper": "faster-whisper", "hama": "hama", "pocketsphinx": "pocketsphinx"}
ENGINE_NAMES = 30  # notebook 07's quick corpus: data/processed/tts-engines-30


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100, help="clips per drug-name set and "
                        "noise condition, and FSDD / speechocean762 clips")  # fmt: skip
    parser.add_argument("--align-clips", type=int, default=60)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    args = parser.parse_args()
    systems, absent = load_systems(args.systems)

    def pick(rows: list, n: int = args.clips) -> list:  # each set seeded alike
        return sample(rows, n, np.random.default_rng(0))

    names = list(systems)
    drugs = [d.name for d in load_drugs()]

    held_out = [r for r in read_manifest(PROCESSED_DIR / "drugs-quick" / "manifest.jsonl")
                if r.split == "test" and r.augmentation == "none"]  # fmt: skip
    # notebook 07's corpus (the same config, so either one builds it for the other)
    engines = [e for e in ENGINES if get_engine(e).available()[0]]
    engine_config = DataConfig(size="engines", max_names=ENGINE_NAMES, engines=engines,
                               augmentations_per_clip=0)  # fmt: skip
    engine_rows = read_manifest(build_corpus(PROCESSED_DIR / f"tts-engines-{ENGINE_NAMES}",
                                             engine_config))  # fmt: skip
    unheard = [r for r in engine_rows if r.engine != "espeak"]
    rows = []
    rows += recognition_rows(systems, "drug names, espeak-ng held-out voices",
                             pick(held_out), drugs, (None, 10))  # fmt: skip
    skipped = {}
    if unheard:
        task = (
            f"drug names, unheard engines ({', '.join(dict.fromkeys(r.engine for r in unheard))})"
        )
        rows += recognition_rows(systems, task, pick(unheard), drugs, (None, 10))
    else:
        skipped["unheard engines"] = "no TTS engine but espeak-ng is installed"
    fsdd = SHARED_DATA_DIR / "fsdd"
    if fsdd.is_dir():
        digits = recognition_rows(
            systems,
            "spoken digits, FSDD (real speech)",
            pick(read_fsdd(fsdd)),
            list(DIGIT_WORDS),
        )
        rows.append(digits[0])  # top-1 only: top-5 of 10 words says little
    else:
        skipped["fsdd"] = f"{fsdd} not found"
    speechocean = SHARED_DATA_DIR / "speechocean762-train"
    if speechocean.is_dir():
        manifest = PROCESSED_DIR / "speechocean762" / "manifest.jsonl"
        if not manifest.is_file():
            speechocean_manifest(speechocean, manifest)
        test = [r for r in read_manifest(manifest) if r.split == "test"]
        rows.append(per_row(systems, "phones, speechocean762 held-out speakers (real speech)",
                            pick(test)))  # fmt: skip
    else:
        skipped["speechocean762"] = f"{speechocean} not found"
    rows.append(boundary_row(systems, "phone boundaries, espeak-ng held-out voices",
                             espeak_clips(pick(held_out, args.align_clips)), "espeak"))  # fmt: skip
    speechbrain = speechbrain_clips(SHARED_DATA_DIR / "speechbrain-samples")
    if speechbrain is None:
        skipped["speechbrain-samples"] = "../shared/data/speechbrain-samples not found"
    else:
        rows.append(boundary_row(systems, "phone ends, speechbrain samples (real speech)",
                                 speechbrain, "timit", offsets_only=True))  # fmt: skip
    for row in rows:
        row["phonex_lead"] = best_phonex_lead(row)

    table = markdown_table(rows, names)
    command = "python benchmarks/bench_baselines.py"
    (RESULTS_DIR / "baselines.md").write_text(f"`{command}`\n\n{table}")
    figure = plot_baselines(pd.DataFrame(rows))
    figure.savefig(RESULTS_DIR / "baselines.png", dpi=110, bbox_inches="tight")
    record("baselines", {
        "command": command,
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
