"""The real-speech model on real voices and on engines it never heard: issue 17's targets.

For one model (``--model``: the shipped ``phonex-en`` by default, or any model folder):

- PER on ``timit-sample-dev`` (80 hand-labelled utterances, never trained on): TIMIT-61 folded
  to the standard 39, silences dropped (:func:`phonex.metrics.timit_error_rate`). Target
  <= 20 %. Beside it, espeak-ng's own reading of the TIMIT prompts scored the same way: the
  ceiling that espeak-ng labels put on any model trained on them.
- PER on speechocean762's held-out speakers (the test split of
  :func:`phonex.realspeech.corpus_rows`) against espeak-ng's phones of the prompt, in TIMIT-39
  as ``bench_baselines.py`` scores it, and in the model's own IPA. Target <= 25 %.
- FSDD top-1 on the held-out speaker, over the ten digit words. Target >= 97 %.
- Drug names spoken by piper, flite and festival (training used espeak-ng only): a seeded sample
  of ``--clips`` names per engine, its voices in turn, top-1 over the whole lexicon, clean and
  with pink noise at 10 dB. Targets >= 95 % and >= 85 %. An engine not installed is absent.
- Seconds per clip and peak memory (one fresh process per model): this model and a Whisper base
  CTC model of the same recipe (its head untrained: speed only).

The script checks that no held-out speaker is in the training manifest it finds
(``data/processed/realspeech/manifest-<language>.jsonl``).

    python benchmarks/bench_realspeech.py [--model phonex-en] [--clips 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import record, sample

from phonex.audio import load_audio
from phonex.config import PROCESSED_DIR, SHARED_DATA_DIR
from phonex.corpus import Utterance, read_manifest
from phonex.lexicon import load_drugs
from phonex.metrics import error_rate, rank_of, timit_error_rate
from phonex.phonemes import WORD_SEP, flatten, phonemize
from phonex.phonesets import ipa_to_39
from phonex.readers import DIGIT_WORDS
from phonex.realspeech import TIMIT_FOLDER, corpus_rows
from phonex.recognize import Recognizer, noisy, transcribe
from phonex.synth import ClipJob, render
from phonex.timit import read_timit_reference
from phonex.tts import get_engine, load_voice_grid

SAMPLE_RATE = 16000
UNHEARD_ENGINES = ("piper", "flite", "festival")
ENGINE_CLIPS_DIR = PROCESSED_DIR / "unheard-engines"  # clips kept between runs
SNR_DB = 10.0
SPEED_MODELS = ("whisper-base",)  # beside --model; an untrained English phone head
TARGETS = {"timit_per": 0.20, "speechocean_per": 0.25, "fsdd_top1": 0.97,
           "drugs_clean_top1": 0.95, "drugs_10db_top1": 0.85}  # fmt: skip


def phones_of(text: str) -> list[str]:
    """A transcript's phones, word separators dropped."""
    return [p for p in text.split() if p != WORD_SEP]


def timit_rows(limit: int = 0) -> list[tuple[Utterance, list[str]]]:
    """timit-sample-dev's utterances with their TIMIT-61 hand labels (all, or ``limit``)."""
    pairs = read_timit_reference(SHARED_DATA_DIR / TIMIT_FOLDER)
    pairs = sample(pairs, limit, np.random.default_rng(0)) if limit else pairs
    return [(row, [p.label for p in labels.phones]) for row, labels in pairs]


def espeak_ceiling(rows: list[tuple[Utterance, list[str]]], language: str) -> dict:
    """PER of espeak-ng's phones of the TIMIT prompts against the hand labels (same scorer)."""
    prons = phonemize([row.text for row, _ in rows], language)
    rate = timit_error_rate([labels for _, labels in rows], [flatten(p) for p in prons])
    return {"per": round(rate.rate, 4), **_edits(rate)}


def _edits(rate) -> dict:
    return {"substitutions": rate.substitutions, "deletions": rate.deletions,
            "insertions": rate.insertions, "reference_phones": rate.reference_tokens}  # fmt: skip


def timit_per(loaded, rows: list[tuple[Utterance, list[str]]]) -> dict:
    """The model's greedy phones on timit-sample-dev against the hand labels, in TIMIT-39."""
    waves = [load_audio(row.audio, SAMPLE_RATE) for row, _ in rows]
    hyps = [phones_of(t) for t in transcribe(loaded, waves, [row.id for row, _ in rows])]
    rate = timit_error_rate([labels for _, labels in rows], hyps)
    speakers = {
        speaker: round(timit_error_rate([rows[i][1] for i in idx], [hyps[i] for i in idx]).rate, 4)
        for speaker, idx in _indices_by([row.speaker for row, _ in rows]).items()
    }
    return {"per": round(rate.rate, 4), **_edits(rate), "utterances": len(rows),
            "per_speaker": speakers,
            "example": {"id": rows[0][0].id, "phones": " ".join(hyps[0])}}  # fmt: skip


def _indices_by(keys: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return out


def held_out(corpus: str, language: str, training_manifest: Path, limit: int) -> tuple[list, dict]:
    """The test split of a shared-data corpus, and a check that its speakers never trained.

    Returns:
        The test rows (all, or a seeded ``limit``) and a report: speakers per split, and the
        test speakers found among the training manifest's train/dev rows (must be none).
    """
    rows = corpus_rows(corpus, SHARED_DATA_DIR, language)
    test = [r for r in rows if r.split == "test"]
    speakers = {s: sorted({r.speaker for r in rows if r.split == s})
                for s in ("train", "dev", "test")}  # fmt: skip
    report = {"speakers": {s: len(v) for s, v in speakers.items()}, "test_clips": len(test),
              "test_speakers": speakers["test"]}  # fmt: skip
    if training_manifest.is_file():
        trained = {(r.source, r.speaker) for r in read_manifest(training_manifest)
                   if r.split in ("train", "dev")}  # fmt: skip
        leaked = sorted(s for s in speakers["test"] if (test[0].source, s) in trained)
        report["training_manifest"] = str(training_manifest)
        report["test_speakers_in_training_manifest"] = leaked
        if leaked:
            raise SystemExit(f"{training_manifest}: held-out {corpus} speakers {leaked} trained")
    if limit:
        test = sample(test, limit, np.random.default_rng(0))
    return test, report


def speechocean_per(loaded, rows: list[Utterance]) -> dict:
    """PER against espeak-ng's phones of each prompt: in TIMIT-39 (as the baselines are
    scored) and over the model's own IPA phones."""
    waves = [load_audio(r.audio, SAMPLE_RATE) for r in rows]
    hyps = [phones_of(t) for t in transcribe(loaded, waves, [r.id for r in rows])]
    refs = [phones_of(r.phones) for r in rows]
    folded = error_rate([" ".join(ipa_to_39(r, strict=False)) for r in refs],
                        [" ".join(ipa_to_39(h, strict=False)) for h in hyps])  # fmt: skip
    native = error_rate([" ".join(r) for r in refs], [" ".join(h) for h in hyps])
    return {"per": round(folded.rate, 4), **_edits(folded), "per_ipa": round(native.rate, 4),
            "clips": len(rows)}  # fmt: skip


def top1(recognizer: Recognizer, rows: list[Utterance], snr_db: float | None = None) -> dict:
    """Top-1 and top-5 of ``recognizer`` on ``rows`` (truth: ``row.text``); a clip too short
    to score counts as a miss."""
    waves = [noisy(load_audio(r.audio, SAMPLE_RATE), snr_db, "pink", r.id, SAMPLE_RATE)
             for r in rows]  # fmt: skip
    names, kept, refused = recognizer.scorable([r.id for r in rows], waves)
    by_id = {r.id: r.text for r in rows}
    start = time.perf_counter()
    results = recognizer.recognize(kept, names, top=5)
    seconds = time.perf_counter() - start
    ranks = [rank_of(by_id[res.path], [c.word for c in res.candidates]) for res in results]
    ranks = np.array(ranks + [0] * len(refused))
    return {"top1": round(float(np.mean(ranks == 1)), 4),
            "top5": round(float(np.mean((ranks >= 1) & (ranks <= 5))), 4),
            "clips": len(rows), "too_short": refused,
            "seconds_per_clip": round(seconds / max(len(kept), 1), 4)}  # fmt: skip


def engine_rows(engine: str, count: int, seed: int = 0) -> tuple[list[Utterance], str]:
    """A seeded sample of ``count`` drug names spoken by ``engine``'s voices in turn.

    The voices are notebook 07's (the ``engines`` grid); clips are written once under
    ``data/processed/unheard-engines`` and reused. Returns the rows and, when the engine or all
    its voices are missing here, the reason (and no rows).
    """
    engine_ = get_engine(engine)
    ok, why = engine_.available()
    if not ok:
        return [], why
    voices = [v for v in load_voice_grid("engines").voices
              if v.engine == engine and engine_.has_voice(v.name)]  # fmt: skip
    if not voices:
        return [], f"{engine} is installed without any of the engines grid's voices"
    names = [d.name for d in load_drugs()]
    rng = np.random.default_rng(seed)
    chosen = [names[i] for i in rng.permutation(len(names))[:count]]  # a smaller count: a prefix
    rows = []
    for k, name in enumerate(chosen):
        job = ClipJob(name, voices[k % len(voices)], (), seed)
        rows += render(job, ENGINE_CLIPS_DIR, SAMPLE_RATE)
    return rows, ""


def unheard_engines(loaded, count: int) -> tuple[dict, dict]:
    """Top-1 over the whole lexicon per unheard engine, clean and at 10 dB; absent engines."""
    drugs = [d.name for d in load_drugs()]
    recognizer = Recognizer(loaded, drugs)
    out, absent = {}, {}
    for engine in UNHEARD_ENGINES:
        rows, why = engine_rows(engine, count)
        if why:
            absent[engine] = why
            continue
        out[engine] = {"clean": top1(recognizer, rows), f"{SNR_DB:g} dB": top1(recognizer, rows,
                                                                               SNR_DB),
                       "voices": sorted({r.speaker for r in rows})}  # fmt: skip
    out["lexicon"] = {"names": len(drugs), "scorable": len(recognizer.words)}
    return out, absent


def speed(name: str, clips: int) -> dict:
    """Seconds per clip and peak memory of one model, in this (fresh) process.

    Times greedy transcription of timit-sample-dev utterances (3 s on average) and recognition
    over the whole lexicon of the unheard-engine drug-name clips on disk, one untimed warm-up
    call each, one clip per call.
    """
    from phonex.english_phones import english_vocabulary
    from phonex.models import load_model

    rss_imports = _peak_rss_mb()
    start = time.perf_counter()
    loaded = load_model(name, english_vocabulary()) if name in SPEED_MODELS else load_model(name)
    load_seconds = time.perf_counter() - start
    sentences = [load_audio(row.audio, SAMPLE_RATE) for row, _ in timit_rows(clips)]
    words = [load_audio(p, SAMPLE_RATE)
             for p in sorted(ENGINE_CLIPS_DIR.glob("audio/*/*.wav"))[:clips]]  # fmt: skip
    recognizer = Recognizer(loaded, [d.name for d in load_drugs()])
    out = {"model": name, "parameters": sum(p.numel() for p in loaded.model.parameters()),
           "load_seconds": round(load_seconds, 2),
           "transcribe": _per_clip(lambda w: transcribe(loaded, [w]), sentences),
           "recognize": _per_clip(lambda w: recognizer.recognize([w]), words),
           "peak_rss_mb": {"after_imports": rss_imports, "end": _peak_rss_mb()}}  # fmt: skip
    return out


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB. Linux's ``VmHWM`` starts afresh at exec,
    where ``getrusage``'s maximum keeps the forking parent's."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _per_clip(call, waves: list[np.ndarray]) -> dict | None:
    if not waves:
        return None
    call(waves[0])
    times = []
    for wave in waves:
        start = time.perf_counter()
        call(wave)
        times.append(time.perf_counter() - start)
    return {"clips": len(waves), "audio_seconds": round(sum(map(len, waves)) / SAMPLE_RATE, 1),
            "seconds_per_clip": round(float(np.mean(times)), 4),
            "median_seconds": round(float(np.median(times)), 4)}  # fmt: skip


def speed_in_child(name: str, clips: int) -> dict:
    """:func:`speed` in a fresh interpreter, so peak memory is this model's alone."""
    command = [sys.executable, __file__, "--speed-of", name, "--speed-clips", str(clips)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"model": name, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def targets(result: dict) -> dict:
    """Each target beside the measured value and whether it is met (None: not measured)."""
    values = {"timit_per": result.get("timit", {}).get("per"),
              "speechocean_per": result.get("speechocean762", {}).get("per"),
              "fsdd_top1": result.get("fsdd", {}).get("top1")}  # fmt: skip
    for engine in UNHEARD_ENGINES:
        scores = result.get("unheard_engines", {}).get(engine)
        values[f"drugs_clean_top1 {engine}"] = scores["clean"]["top1"] if scores else None
        values[f"drugs_10db_top1 {engine}"] = scores[f"{SNR_DB:g} dB"]["top1"] if scores else None
    out = {}
    for key, value in values.items():
        target = TARGETS[key.split()[0]]
        lower = key.split()[0].endswith("_per")
        met = None if value is None else (value <= target if lower else value >= target)
        out[key] = {"target": target, "value": value, "met": met}
    return out


def measure(loaded, args: argparse.Namespace) -> tuple[dict, dict]:
    """Every row whose data is here; and what was skipped, and why."""
    result, skipped = {}, {}
    language = loaded.language
    if (SHARED_DATA_DIR / TIMIT_FOLDER).is_dir():
        rows = timit_rows(args.timit_clips)
        result["timit"] = timit_per(loaded, rows)
        result["timit_espeak_ceiling"] = espeak_ceiling(rows, language)
    else:
        skipped["timit"] = f"{SHARED_DATA_DIR / TIMIT_FOLDER} not found"
    manifest = PROCESSED_DIR / "realspeech" / f"manifest-{language}.jsonl"
    for corpus, key in (("speechocean762-train", "speechocean762"), ("fsdd", "fsdd")):
        if not (SHARED_DATA_DIR / corpus).is_dir():
            skipped[key] = f"{SHARED_DATA_DIR / corpus} not found"
            continue
        limit = args.speechocean_clips if key == "speechocean762" else args.fsdd_clips
        rows, report = held_out(corpus, language, manifest, limit)
        scores = (speechocean_per(loaded, rows) if key == "speechocean762"
                  else top1(Recognizer(loaded, list(DIGIT_WORDS)), rows))  # fmt: skip
        result[key] = {**scores, "split": report}
    result["unheard_engines"], skipped["absent_engines"] = unheard_engines(loaded, args.clips)
    return result, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="phonex-en", help="name or model folder")
    parser.add_argument("--clips", type=int, default=100, help="drug names per unheard engine")
    parser.add_argument("--timit-clips", type=int, default=0, help="0: all 80")
    parser.add_argument("--speechocean-clips", type=int, default=0, help="0: all held out")
    parser.add_argument("--fsdd-clips", type=int, default=0, help="0: all held out")
    parser.add_argument("--speed-clips", type=int, default=20)
    parser.add_argument("--speed-of", help=argparse.SUPPRESS)  # the child process of speed
    args = parser.parse_args()
    if args.speed_of:
        print(json.dumps(speed(args.speed_of, args.speed_clips), allow_nan=False))
        return
    from phonex.models import load_model

    loaded = load_model(args.model)
    result, skipped = measure(loaded, args)
    result["speed"] = [speed_in_child(name, args.speed_clips)
                       for name in (args.model, *SPEED_MODELS)]  # fmt: skip
    record("realspeech", {
        "command": "python benchmarks/bench_realspeech.py " + " ".join(sys.argv[1:]),
        "model": args.model,
        "model_source": loaded.source,
        "targets": targets(result),
        **result,
        "skipped": skipped,
    })  # fmt: skip


if __name__ == "__main__":
    main()
