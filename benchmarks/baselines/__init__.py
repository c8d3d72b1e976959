"""The systems a user would pick instead of phonex, behind one interface, for side-by-side runs.

Every system takes a mono float waveform at 16 kHz and answers up to three questions:

- ``recognizer(words)``: a function from a clip to the lexicon entries it may be, best first
  (at most :data:`TOP`);
- ``transcribe(wave)``: the phones it hears, in TIMIT-39 (:mod:`phonex.phonesets`, ``"cmu"``
  convention), the common set every system is scored in;
- ``raw_phones(wave)``: the same phones before any folding, with their label set (``"espeak"`` IPA
  or ``"timit"`` for ARPAbet), for TIMIT's own protocol (:func:`phonex.metrics.timit_error_rate`);
- ``align(wave, text, phones=None)``: phone intervals. ``forced`` says whether they follow the
  given transcript (``phones``, espeak-ng IPA, when the system can take them; else the words) or
  are the system's own recognised phones with their times; ``align_labels`` says which label set
  :func:`phonex.metrics.matched_boundary_errors` should read them in. ``aligns`` is False for
  a system that cannot align at all.

:func:`load_systems` loads the named systems; one that is not installed (``pip install -e
'.[baselines]'``) or whose model is missing is reported as absent with the reason, not as a
failure.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import numpy as np

from phonex.intervals import Interval

SAMPLE_RATE = 16000
TOP = 5
INSTALL_HINT = "pip install -c constraints.txt -e '.[baselines]'"

# name -> "module:factory"; the factories raise SystemAbsent (or ImportError) when unavailable
SYSTEMS = {
    "phonex-en": "baselines.phonex_runner:load_en",
    "phonex-tiny": "baselines.phonex_runner:load_tiny",
    "phonex-whisper-ctc": "baselines.phonex_runner:load_whisper_ctc",
    "whisper": "baselines.whisper_runner:load",
    "hama": "baselines.hama_runner:load",
    "pocketsphinx": "baselines.pocketsphinx_runner:load",
}


class SystemAbsent(RuntimeError):
    """A system that cannot run here: its package or model is missing (the message says which)."""


class System:
    """One recogniser; see the module docstring for what each method returns."""

    name: str = ""
    aligns: bool = True  # align() is implemented
    forced: bool = True  # align() follows the transcript it is given
    align_labels: str = "timit"  # "timit" (ARPAbet, TIMIT) or "espeak" (espeak-ng IPA)

    def recognizer(self, words: Sequence[str]) -> Callable[[np.ndarray], list[str]]:
        raise NotImplementedError

    def transcribe(self, wave: np.ndarray) -> list[str]:
        raise NotImplementedError

    def raw_phones(self, wave: np.ndarray) -> tuple[list[str], str]:
        return self.transcribe(wave), "timit"

    def align(self, wave: np.ndarray, text: str, phones: str | None = None) -> list[Interval]:
        raise NotImplementedError


def load_systems(
    names: Sequence[str] = tuple(SYSTEMS),
) -> tuple[dict[str, System], dict[str, str]]:
    """The named systems that run here, and why each of the others is absent.

    Raises:
        ValueError: a name that is not in :data:`SYSTEMS`.
    """
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown systems {unknown}; known: {list(SYSTEMS)}")
    systems, absent = {}, {}
    for name in names:
        module, factory = SYSTEMS[name].split(":")
        try:
            systems[name] = getattr(importlib.import_module(module), factory)()
        except ImportError as err:
            absent[name] = f"not installed ({err.name or err}): {INSTALL_HINT}"
        except SystemAbsent as err:
            absent[name] = str(err)
    return systems, absent
