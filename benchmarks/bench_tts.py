"""Synthesis speed of every installed TTS engine and voice: real-time factor on 2 CPU cores.

RTF = seconds of synthesis per second of speech (under 1: faster than real time), over the same
seeded sample of drug names, after one warm-up text (loading a voice or model is not counted).
An engine that is not installed is recorded as absent with the reason.

    python benchmarks/bench_tts.py [--names 40]
"""

from __future__ import annotations

import argparse

from common import record

from phonex.roundtrip import engine_report, real_time_factor
from phonex.synth import select_names
from phonex.tts import load_voice_grid

ENGINES = ("espeak", "piper", "flite", "festival")  # gTTS needs the internet: not timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=40)
    args = parser.parse_args()
    names = select_names(args.names, seed=0)
    report = engine_report().set_index("engine")
    absent = {e: report.why[e] for e in ENGINES if not report.available[e]}
    voices = [
        v
        for v in load_voice_grid("engines").voices
        if v.engine in ENGINES and v.engine not in absent
    ]
    results = []
    for voice in voices:
        row = real_time_factor(voice, names)
        results.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        print(results[-1])
    record(
        "tts",
        {
            "command": f"python benchmarks/bench_tts.py --names {args.names}",
            "names": len(names),
            "absent": absent,
            "voices": results,
        },
    )


if __name__ == "__main__":
    main()
