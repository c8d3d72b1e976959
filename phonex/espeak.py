"""Everything that talks to the espeak-ng C library: finding it, and synthesis with phoneme events.

The system library (Debian ``libespeak-ng1``) is used when present; otherwise the copy shipped by
PyPI ``espeakng-loader``, so that setup needs no root. Synthesis goes through ctypes, because
only the library reports the time of every phoneme it speaks (alignment ground truth for free),
in a fork of a small helper process per clip (:class:`EspeakSynthesizer`), because the library
keeps state from one clip to the next: a clip is then the same whatever was spoken before it.
Run as ``python -m phonex.espeak`` this module is that helper.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import zlib
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
_PR_SET_PDEATHSIG = 1
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


class _Library:
    """libespeak-ng loaded into this process; only the zygote's short-lived children speak."""

    def __init__(self, found: EspeakLibrary) -> None:
        self._lib = ctypes.CDLL(found.library)
        initialize = self._lib.espeak_Initialize
        initialize.restype = ctypes.c_int
        initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        data = found.data.encode() if found.data else None
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        self.sample_rate = initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
        if self.sample_rate <= 0:
            raise EspeakNotFoundError(f"espeak-ng at {found.library} failed to initialise")
        self._callback = _CALLBACK(self._collect)  # kept alive: the library holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)
        self._chunks: list[np.ndarray] = []  # of the clip being spoken; see speak()
        self._events: list[tuple[int, int, str, int, int]] = []

    def _collect(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type in (_EVENT_PHONEME, _EVENT_WORD):
                phoneme = event.type == _EVENT_PHONEME
                label = event.id.string.decode("utf-8", "replace") if phoneme else ""
                self._events.append(
                    (event.type, event.audio_position, label, event.text_position, event.length)
                )
            i += 1
        return 0

    def _seed(self, seed: int) -> None:
        """Seed the noise source: espeak-ng >= 1.52 seeds its own from the clock at start-up."""
        if hasattr(self._lib, "espeak_ng_SetRandSeed"):
            self._lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        else:  # older versions draw their noise from the C library's rand()
            ctypes.CDLL(None).srand(ctypes.c_uint(seed))

    def speak(
        self, text: str, voice: str, rate: int, pitch: int, range_: int, seed: int
    ) -> tuple[np.ndarray, list[tuple[int, int, str, int, int]]]:
        """Samples ``[samples]`` int16 and events (kind, ms, phone, text position, length)."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice!r} (see `espeak-ng --voices=en`)")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", range_)):
            self._lib.espeak_SetParameter(_PARAM[name], int(value), 0)
        self._seed(seed)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        status = self._lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        self._lib.espeak_Synchronize()
        if status != 0:
            raise EspeakError(f"espeak-ng could not speak {text!r} (error {status})")
        return np.concatenate([np.zeros(0, np.int16), *self._chunks]), self._events


def _send(fd: int, header: dict, body: bytes = b"") -> None:
    """One answer: a JSON line, then ``header["samples"]`` int16 samples."""
    data = json.dumps(header).encode() + b"\n" + body
    while data:
        data = data[os.write(fd, data) :]


def _answer(lib: _Library, line: bytes, out: int) -> None:
    try:
        samples, events = lib.speak(**json.loads(line))
        _send(out, {"samples": len(samples), "events": events}, samples.tobytes())
    except EspeakError as err:
        _send(out, {"error": str(err)})


def _die_with_parent() -> None:
    """Linux: be killed when the parent ends, so that no helper outlives a killed worker."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent ended before the request took effect
        os._exit(0)


def _serve() -> None:
    """The zygote: load the library once, then speak each request in a fork of that state.

    Requests are JSON lines on stdin; answers go to stdout. After one warm-up clip the zygote
    never speaks again, so every child starts from the same library state. It ends when stdin
    closes or its parent dies, however the parent ends.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent
    _die_with_parent()
    out = sys.stdout.buffer.fileno()
    try:
        lib = _Library(find_espeak())
    except (EspeakNotFoundError, OSError) as err:
        _send(out, {"error": str(err)})
        return
    # The library loads tables, voice and dictionary lazily on its first clip: one warm-up clip
    # here saves every child that work (measured: 20 -> 15 ms a clip). The zygote's state after it
    # is the same in every run, so the children still start alike.
    lib.speak("warm up", "en-us", 175, 50, 50, seed=0)
    gc.freeze()  # children must not touch (copy) every page of the heap to collect garbage
    _send(out, {"sample_rate": lib.sample_rate})
    try:
        for line in sys.stdin.buffer:
            pid = os.fork()
            if pid == 0:
                try:
                    _die_with_parent()
                    _answer(lib, line, out)
                finally:
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            if status != 0:
                _send(out, {"error": f"espeak-ng crashed (wait status {status})"})
    except BrokenPipeError:  # the parent is gone
        return


class EspeakSynthesizer:
    """espeak-ng synthesis that does not depend on what was spoken before.

    libespeak-ng keeps state from one utterance to the next (and 1.52 seeds its noise from the
    clock), so in-process calls gave a clip that depended on the clips before it. Each clip is
    therefore spoken by a fork of a small helper process (``python -m phonex.espeak``, "the
    zygote", one per process that speaks) whose library state never changes, with the noise
    seeded from the request: the same request gives the same samples in any process and order.
    The zygote is small (30 MB) because forking the caller instead (torch loaded, 300 MB) cost
    60 ms a clip against 2 ms on an idle machine.
    """

    _lock = threading.Lock()
    _instance: EspeakSynthesizer | None = None
    _fork_hook = False

    def __init__(self) -> None:
        found = find_espeak()
        env = {k: v for k, v in os.environ.items() if k != "PHONEX_ESPEAK_DATA"}
        env["PHONEX_ESPEAK_LIBRARY"] = found.library
        if found.data:
            env["PHONEX_ESPEAK_DATA"] = found.data
        if not EspeakSynthesizer._fork_hook:
            os.register_at_fork(after_in_child=_forget_inherited)
            EspeakSynthesizer._fork_hook = True
        self._pid = os.getpid()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "phonex.espeak"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env,
        )  # fmt: skip
        ready = self._header()
        if "error" in ready:
            self.close()
            raise EspeakNotFoundError(ready["error"])
        self.sample_rate = int(ready["sample_rate"])

    @classmethod
    def get(cls) -> EspeakSynthesizer:
        """This process's synthesizer (and zygote), started on first use or after a failure."""
        with cls._lock:
            old = cls._instance
            if old is None or old._pid != os.getpid() or old._proc.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def _header(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"espeak-ng helper process {self._proc.pid} ended unexpectedly")
        return json.loads(line)

    def close(self) -> None:
        """Stop the zygote (it holds no state worth keeping)."""
        with contextlib.suppress(OSError):  # unflushed bytes to a zygote that is gone
            self._proc.stdin.close()
        self._proc.kill()
        self._proc.wait()
        self._proc.stdout.close()

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
            The waveform at the library's rate (22050 Hz) with phoneme and word events; the same
            arguments give the same samples.
        """
        if not text.strip():
            raise EspeakError("cannot speak an empty text")
        request = {"text": text, "voice": voice, "rate": int(rate), "pitch": int(pitch),
                   "range_": int(range_)}  # fmt: skip
        request["seed"] = zlib.crc32(json.dumps(request, sort_keys=True).encode()) & 0x7FFFFFFF
        with self._lock:
            try:
                self._proc.stdin.write(json.dumps(request).encode() + b"\n")
                self._proc.stdin.flush()
                header = self._header()
                body = self._proc.stdout.read(2 * header.get("samples", 0))
                if len(body) != 2 * header.get("samples", 0):
                    raise RuntimeError(f"espeak-ng helper process {self._proc.pid} ended mid-clip")
            except BaseException:
                self.close()  # a half-read answer would be taken for the next one
                raise
        if "error" in header:
            raise EspeakError(header["error"])
        wave = np.frombuffer(body, np.int16).astype(np.float32) / 32768.0
        events = [tuple(e) for e in header["events"]]
        phones, words = _phones_and_words(events, text, self.sample_rate / 1000.0)
        return SpeechWithEvents(wave, self.sample_rate, phones, words)


def _forget_inherited() -> None:
    """In a forked child: the parent's zygote pipes are not ours (its answers go to the parent)."""
    old, EspeakSynthesizer._instance = EspeakSynthesizer._instance, None
    EspeakSynthesizer._lock = threading.Lock()
    if old is not None:
        old._proc.stdin.close()
        old._proc.stdout.close()
        old._proc.returncode = 0  # not our child: nothing to wait for


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


if __name__ == "__main__":
    _serve()
