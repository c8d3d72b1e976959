"""Everything that talks to the espeak-ng C library: finding it, and synthesis with phoneme events.

The system library (Debian ``libespeak-ng1``) is used when present; otherwise the copy shipped by
PyPI ``espeakng-loader``, so that setup needs no root. Synthesis runs in-process through ctypes:
spawning one ``espeak-ng`` process per word is too slow, and only the library reports the time of
every phoneme it speaks, which gives alignment ground truth for free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_INSTALL_HINT = (
    "espeak-ng was not found. Install the system package (Debian/Ubuntu: "
    "`sudo apt-get install espeak-ng`) or the Python package that ships the library "
    "(`pip install espeakng-loader`), or set PHONEX_ESPEAK_LIBRARY to libespeak-ng's path."
)


class EspeakNotFoundError(RuntimeError):
    """Neither a system libespeak-ng nor espeakng-loader is available."""


class EspeakError(ValueError):
    """espeak-ng refused a voice or a text."""


@dataclass(frozen=True)
class EspeakLibrary:
    """Where libespeak-ng lives, and its data folder (None: the library's compiled-in default)."""

    library: str
    data: str | None
    source: str  # "env", "system" or "espeakng-loader"


@lru_cache(maxsize=1)
def find_espeak() -> EspeakLibrary:
    """Locate libespeak-ng: $PHONEX_ESPEAK_LIBRARY, then the system library, then espeakng-loader.

    Raises:
        EspeakNotFoundError: with instructions, when none is found.
    """
    if os.environ.get("PHONEX_ESPEAK_LIBRARY"):
        return EspeakLibrary(
            os.environ["PHONEX_ESPEAK_LIBRARY"], os.environ.get("PHONEX_ESPEAK_DATA"), "env"
        )
    system = ctypes.util.find_library("espeak-ng")
    if system:
        return EspeakLibrary(system, None, "system")
    try:
        import espeakng_loader
    except ImportError:
        raise EspeakNotFoundError(_INSTALL_HINT) from None
    return EspeakLibrary(
        espeakng_loader.get_library_path(), espeakng_loader.get_data_path(), "espeakng-loader"
    )


# --- synthesis through the C API (speak_lib.h) ---------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class PhoneEvent:
    """One phoneme espeak-ng spoke: IPA symbol ("" for a pause), start in samples, word index."""

    phone: str
    start: int
    word: int


@dataclass(frozen=True)
class WordEvent:
    """One word espeak-ng spoke: its text and its start in samples."""

    word: str
    start: int


@dataclass(frozen=True)
class SpeechWithEvents:
    """Audio from espeak-ng with the phoneme and word events it reported."""

    wave: np.ndarray  # [samples] float32 in [-1, 1]
    sample_rate: int
    phones: list[PhoneEvent]
    words: list[WordEvent]  # in text order; espeak-ng splits "NovoLog" into "Novo" "Log"


class EspeakSynthesizer:
    """One in-process espeak-ng synthesizer (the library keeps global state: one per process)."""

    _lock = threading.Lock()
    _instance: EspeakSynthesizer | None = None

    def __init__(self) -> None:
        found = find_espeak()
        self._lib = ctypes.CDLL(found.library)
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        data = found.data.encode() if found.data else None
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        self.sample_rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
        if self.sample_rate <= 0:
            raise EspeakNotFoundError(f"espeak-ng at {found.library} failed to initialise")
        self._callback = _CALLBACK(self._collect)  # kept alive: the library holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []

    @classmethod
    def get(cls) -> EspeakSynthesizer:
        """The process-wide synthesizer, created on first use."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _collect(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type in (_EVENT_PHONEME, _EVENT_WORD):
                label = (
                    event.id.string.decode("utf-8", "replace")
                    if event.type == _EVENT_PHONEME
                    else ""
                )
                self._events.append(
                    (event.type, event.audio_position, label, event.text_position, event.length)
                )
            i += 1
        return 0

    def synthesize(
        self, text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, range_: int = 50
    ) -> SpeechWithEvents:
        """Speak ``text`` with an espeak-ng voice (``en-us``, ``en-gb+f3``...).

        Args:
            text: words to speak.
            voice: espeak-ng voice name, optionally with a ``+variant``.
            rate: words per minute (espeak-ng accepts 80-450).
            pitch: base pitch 0-100.
            range_: pitch range 0-100.

        Returns:
            The waveform at the library's rate (22050 Hz) with phoneme and word events.
        """
        if not text.strip():
            raise EspeakError("cannot speak an empty text")
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(
                    f"espeak-ng has no voice {voice!r} (see `espeak-ng --voices=en`)"
                )
            for name, value in (("rate", rate), ("pitch", pitch), ("range", range_)):
                self._lib.espeak_SetParameter(_PARAM[name], int(value), 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            status = self._lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            chunks, events = self._chunks, self._events
        if status != 0:
            raise EspeakError(f"espeak-ng could not speak {text!r} (error {status})")
        wave = np.concatenate(chunks).astype(np.float32) / 32768.0 if chunks else np.zeros(0)
        phones, words = _phones_and_words(events, text, self.sample_rate / 1000.0)
        return SpeechWithEvents(wave.astype(np.float32), self.sample_rate, phones, words)


def _phones_and_words(
    events: list[tuple], text: str, samples_per_ms: float
) -> tuple[list[PhoneEvent], list[WordEvent]]:
    """Phoneme and word events in stream order -> phones (with word index) and words.

    Phones belong to the word event before them in the stream (event times are too coarse to
    tell at a word boundary). A word's text runs to the next word that has phones (1-based
    character positions): "amoxicillin-clavulanate" stays whole and "NovoLog" splits where
    espeak-ng splits it. Pauses are kept with an empty label: a phone ends where they start.
    """
    phones, starts = [], []  # starts: (character offset, ms) of each word event
    for kind, ms, label, pos, _ in events:
        if kind == _EVENT_WORD:
            starts.append((pos - 1, ms))
        elif label or phones:
            if not starts:  # some voices (en-us-nyc) omit the first word event
                starts.append((0, ms))
            phones.append(PhoneEvent(label, round(ms * samples_per_ms), len(starts) - 1))
    spoken = sorted({p.word for p in phones if p.phone})  # words that have phones
    renumber = {old: new for new, old in enumerate(spoken)}
    ends = [starts[i][0] for i in spoken[1:]] + [len(text)]
    words = [
        WordEvent(text[starts[i][0] : end].strip(" ,;:.!?"), round(starts[i][1] * samples_per_ms))
        for i, end in zip(spoken, ends)
    ]
    # every labelled phone's word is spoken; a pause in a word without phones gets -1
    phones = [PhoneEvent(p.phone, p.start, renumber.get(p.word, -1)) for p in phones]
    return phones, words
