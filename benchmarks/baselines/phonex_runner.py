"""phonex's own models behind the baselines' interface: the same calls the notebooks make.

- ``phonex-en``: the shipped real-speech model (Whisper tiny.en's encoder, its last block and
  a CTC head over every English phone trained on real speech and espeak-ng drug names).
- ``phonex-tiny``: the offline recipe's model (``python benchmarks/bench_recipe.py``, 1.1 M
  parameters, trained on espeak-ng voices only); its alignments use the boundary calibration
  ``bench_alignment.py`` saves beside it, when present.
- ``phonex-whisper-ctc``: Whisper tiny.en's encoder with a CTC head, its last 2 blocks
  fine-tuned on the same corpus (notebook 08).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from baselines import TOP, System, SystemAbsent
from phonex.align import align, stand_ins, to_tiers, transcript_tokens
from phonex.boundaries import BoundaryCalibration
from phonex.config import MODELS_DIR
from phonex.intervals import Interval
from phonex.models import ModelError, load_model
from phonex.phonemes import WORD_SEP
from phonex.phonesets import ipa_to_39
from phonex.recognize import Recognizer, transcribe

CALIBRATION_FILE = "boundary_calibration.json"  # written by bench_alignment.py


class PhonexSystem(System):
    align_labels = "espeak"

    def __init__(self, name: str, folder: Path | str, how_to_make: str):
        if isinstance(folder, Path) and not (folder / "config.json").is_file():
            raise SystemAbsent(f"{folder} has no model: {how_to_make}")
        self.name = name
        try:
            self.loaded = load_model(str(folder))
        except ModelError as err:
            raise SystemAbsent(f"{folder}: {err}: {how_to_make}") from None
        calibration = Path(folder) / CALIBRATION_FILE
        self.calibration = BoundaryCalibration.load(calibration) if calibration.is_file() else None

    def recognizer(self, words):
        recognizer = Recognizer(self.loaded, words)
        return lambda wave: [c.word for c in recognizer.recognize([wave], top=TOP)[0].candidates]

    def raw_phones(self, wave: np.ndarray) -> tuple[list[str], str]:
        return [p for p in transcribe(self.loaded, [wave])[0].split() if p != WORD_SEP], "espeak"

    def transcribe(self, wave: np.ndarray) -> list[str]:
        return ipa_to_39(self.raw_phones(wave)[0], strict=False)

    def align(self, wave, text, phones=None):
        tokens = phones or transcript_tokens(self.loaded, text)[1]
        used = stand_ins(self.loaded, tokens)  # phones the model lacks align as its nearest
        known = " ".join(used.get(t, t) for t in tokens.split())
        words = align(self.loaded, wave, text, tokens=known, calibration=self.calibration)
        labels = [t for t in tokens.split() if t != WORD_SEP]
        spans = to_tiers(words)["phones"]
        return [Interval(label, s.start, s.end) for label, s in zip(labels, spans)]


def load_en() -> PhonexSystem:
    how = "train and export it (the commands atop configs/phonex-en.yaml)"
    return PhonexSystem("phonex-en", "phonex-en", how)


def load_tiny() -> PhonexSystem:
    return PhonexSystem("phonex-tiny", MODELS_DIR / "bench-drugs-tiny" / "best",
                        "python benchmarks/bench_recipe.py")  # fmt: skip


def load_whisper_ctc() -> PhonexSystem:
    return PhonexSystem("phonex-whisper-ctc", MODELS_DIR / "whisper-tiny.en-ctc" / "best",
                        "run notebook 08 (phonex notebooks 08)")  # fmt: skip
