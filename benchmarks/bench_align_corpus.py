"""Corpus-scale alignment and recognition: one model load for a whole corpus, start-up included.

Targets on 2 CPU cores: ``phonex align --corpus`` aligns timit-sample-dev (80 utterances, as a
manifest) at >= 10 utterances per second end to end, start-up included, with per-utterance
results identical to single-clip :func:`phonex.align.align`. Also recorded: the same warm (model
loaded), start-up alone (``phonex --help``, importing, loading the model), and drug-name
recognition over CLIPS clips (espeak-ng, cycled over a few dozen names) with ``phonex
recognize``, start-up included, and with a warm :class:`phonex.recognize.Recognizer`. The load
average is recorded: the machine is shared.

    python benchmarks/bench_align_corpus.py [--model DIR] [--clips 1000]

Without ``--model``: ``models/whisper-tiny.en-ctc/best`` when it exists, else Whisper tiny.en's
encoder with an untrained English phone head (its alignments mean nothing; its speed is the
fine-tuned model's).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
from common import record

from phonex.align import align
from phonex.align_corpus import align_corpus, textgrid_tiers
from phonex.audio import load_audio
from phonex.config import MODELS_DIR, PROJ_ROOT, SHARED_DATA_DIR
from phonex.corpus import write_manifest
from phonex.intervals import read_alignment
from phonex.lexicon import load_drugs
from phonex.models import load_model
from phonex.recognize import Recognizer
from phonex.timit import read_timit_reference
from phonex.tts import Voice, synthesize

TARGET_UTT_PER_S = 10.0
PHONEX = str(Path(sys.executable).with_name("phonex"))


def model_folder(requested: str | None, tmp: Path) -> tuple[Path, str]:
    """The model to time, and what it is."""
    if requested:
        return Path(requested), requested
    trained = MODELS_DIR / "whisper-tiny.en-ctc" / "best"
    if trained.is_dir():
        return trained, str(trained.relative_to(PROJ_ROOT))
    from phonex.english_phones import english_vocabulary

    folder = tmp / "whisper-tiny.en-untrained"
    load_model("whisper-tiny.en", english_vocabulary()).save(folder)
    return folder, "whisper-tiny.en encoder, untrained English phone head (speed only)"


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of a command run to its end (any exit status), and its result."""
    start = time.perf_counter()
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    return time.perf_counter() - start, done


def startup(model: Path) -> dict:
    """Seconds to start ``phonex --help``, to import the model code, and to load the model."""
    code = ("import time; t = time.perf_counter(); from phonex.models import load_model; "
            f"i = time.perf_counter(); load_model({str(model)!r}); "
            "print(i - t, time.perf_counter() - i)")  # fmt: skip
    help_s = min(timed([PHONEX, "--help"])[0] for _ in range(3))
    doctor_s = timed([PHONEX, "doctor"])[0]
    _, done = timed([sys.executable, "-c", code])
    import_s, load_s = map(float, done.stdout.split()[-2:])
    return {"help_s": round(help_s, 3), "doctor_s": round(doctor_s, 2),
            "import_models_s": round(import_s, 2), "load_model_s": round(load_s, 2)}  # fmt: skip


def boundaries(grid: Path) -> dict:
    return {name: [(i.label, round(i.start, 6), round(i.end, 6)) for i in tier if i.label]
            for name, tier in read_alignment(grid).items()}  # fmt: skip


def same_as_clip_by_clip(loaded, summary: list[dict], out: Path, texts: dict) -> dict:
    """Utterances whose corpus TextGrid has the boundaries single-clip ``align`` gives."""
    same, checked = 0, 0
    for row in summary:
        if row["status"] != "ok":
            continue
        wave = load_audio(row["audio"], loaded.sample_rate, allow_silence=True)
        words = align(loaded, wave, texts[row["id"]])
        tiers = textgrid_tiers(words, len(wave) / loaded.sample_rate)
        alone = {name: [(i.label, round(i.start, 6), round(i.end, 6)) for i in tier if i.label]
                 for name, tier in tiers.items()}  # fmt: skip
        same += alone == boundaries(out / row["textgrid"])
        checked += 1
    return {"checked": checked, "identical": same}


def corpus_alignment(model: Path, tmp: Path, batch_size: int) -> dict:
    rows = [row for row, _ in read_timit_reference(SHARED_DATA_DIR / "timit-sample-dev")]
    manifest = write_manifest(rows, tmp / "timit.jsonl")
    argv = [PHONEX, "align", "--model", str(model), "--corpus", str(manifest), "--out",
            str(tmp / "cli-out"), "--batch-size", str(batch_size)]  # fmt: skip
    load_before = os.getloadavg()
    cold_s, done = timed(argv)
    loaded = load_model(str(model))
    align_corpus(loaded, manifest, tmp / "warm-up", batch_size, progress=False)
    start = time.perf_counter()
    summary = align_corpus(loaded, manifest, tmp / "warm", batch_size, progress=False)
    warm_s = time.perf_counter() - start
    ok = sum(r["status"] == "ok" for r in summary)
    return {
        "utterances": len(rows), "aligned": ok, "cli_exit_status": done.returncode,
        "audio_seconds": round(sum(r.duration for r in rows), 1), "batch_size": batch_size,
        "cold_s": round(cold_s, 2), "cold_utt_per_s": round(len(rows) / cold_s, 2),
        "warm_s": round(warm_s, 2), "warm_utt_per_s": round(len(rows) / warm_s, 2),
        "same_as_clip_by_clip": same_as_clip_by_clip(
            loaded, summary, tmp / "warm", {row.id: row.text for row in rows}
        ),
        "load_average_before": [round(x, 2) for x in load_before],
        "met": len(rows) / cold_s >= TARGET_UTT_PER_S,
    }  # fmt: skip


def recognition(model: Path, tmp: Path, clips: int, names: int = 40) -> dict:
    """Drug-name recognition over ``clips`` files (``names`` spoken names, cycled)."""
    lexicon = [d.name for d in load_drugs()]
    (tmp / "lexicon.txt").write_text("\n".join(lexicon) + "\n")
    spoken = []
    for i, name in enumerate(lexicon[:names]):
        speech = synthesize(name, Voice("espeak", "en-us"))
        spoken.append(tmp / f"name{i}.wav")
        sf.write(spoken[-1], speech.wave, speech.sample_rate)
    files = [str(spoken[i % names]) for i in range(clips)]
    cold_s, done = timed([PHONEX, "recognize", "--model", str(model), "--lexicon",
                          str(tmp / "lexicon.txt"), "--json", *files])  # fmt: skip
    recognizer = Recognizer(str(model), lexicon)
    recognizer.recognize([load_audio(f) for f in files[:16]], files[:16])
    start = time.perf_counter()
    results = recognizer.recognize([load_audio(f) for f in files], files)
    warm_s = time.perf_counter() - start
    return {
        "clips": clips, "distinct_clips": names, "lexicon_words": len(recognizer.words),
        "recognized": len(results), "cli_exit_status": done.returncode,
        "cold_s": round(cold_s, 2), "cold_clips_per_s": round(clips / cold_s, 1),
        "warm_s": round(warm_s, 2), "warm_clips_per_s": round(clips / warm_s, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: see the module docstring)")
    parser.add_argument("--clips", type=int, default=1000, help="recognition clips")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-align-corpus-"))
    try:
        model, described = model_folder(args.model, tmp)
        result = {"command": "python benchmarks/bench_align_corpus.py", "model": described,
                  "torch_threads": torch.get_num_threads(), "startup": startup(model),
                  "alignment": corpus_alignment(model, tmp, args.batch_size),
                  "recognition": recognition(model, tmp, args.clips)}  # fmt: skip
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        result["target"] = {"align_utt_per_s_min": TARGET_UTT_PER_S}
        record("align_corpus", result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
