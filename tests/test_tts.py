import subprocess
import sys
import textwrap

import numpy as np
import pytest

from phonex import espeak, tts
from phonex.config import ConfigError
from phonex.phonemes import phonemize, to_string


def test_espeak_clip_has_true_phone_times_matching_the_phonemizer():
    voice = tts.Voice("espeak", "en-gb-x-rp+f3", rate=150)
    speech = tts.synthesize("hydroxyzine tablets", voice)
    assert speech.sample_rate == 22050 and speech.wave.dtype == np.float32
    assert 0.5 < speech.duration < 3.0 and np.abs(speech.wave).max() > 0.05
    starts = [p.start for p in speech.phones]
    assert starts == sorted(starts)
    assert all(0 <= p.start < p.end <= speech.duration + 1e-6 for p in speech.phones)
    assert [w.label for w in speech.words] == ["hydroxyzine", "tablets"]
    spoken = [[p.label for p in speech.phones if w.start <= p.start < w.end] for w in speech.words]
    assert to_string(spoken) == to_string(phonemize(["hydroxyzine tablets"], voice.language)[0])


def test_slower_rate_gives_longer_audio_and_later_phones():
    fast = tts.synthesize("metformin", tts.Voice("espeak", "en-us", rate=250))
    slow = tts.synthesize("metformin", tts.Voice("espeak", "en-us", rate=120))
    assert slow.duration > 1.4 * fast.duration
    assert slow.phones[-1].start > fast.phones[-1].start


def test_bad_voice_and_empty_text_are_clear_errors():
    with pytest.raises(espeak.EspeakError, match="no voice 'xx-nowhere'"):
        tts.synthesize("aspirin", tts.Voice("espeak", "xx-nowhere"))
    with pytest.raises(ValueError, match="empty text"):
        tts.synthesize("   ", tts.Voice("espeak", "en-us"))
    with pytest.raises(ConfigError, match="unknown TTS engine 'festivalx'"):
        tts.get_engine("festivalx")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_espeakng_loader_library_is_used_when_there_is_no_system_library():
    result = _run("""
        import ctypes.util
        ctypes.util.find_library = lambda name: None
        from phonex import espeak, tts
        from phonex.phonemes import phonemize
        print(espeak.find_espeak().source)
        speech = tts.synthesize("lisinopril", tts.Voice("espeak", "en-us"))
        print(len(speech.phones) > 5, phonemize(["lisinopril"])[0][0][0])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["espeakng-loader", "True", "l"]


def test_no_espeak_at_all_says_how_to_fix_it():
    result = _run("""
        import ctypes.util, sys
        ctypes.util.find_library = lambda name: None
        sys.modules["espeakng_loader"] = None  # import fails
        from phonex import espeak, tts
        print(tts.EspeakEngine().available())
        espeak.find_espeak()
    """)
    assert result.returncode != 0
    assert "EspeakNotFoundError" in result.stderr
    assert "apt-get install espeak-ng" in result.stderr and "espeakng-loader" in result.stderr
    assert "(False," in result.stdout


def test_piper_engine_speaks_or_says_how_to_install():
    engine = tts.get_engine("piper")
    ok, why = engine.available()
    if ok:
        speech = engine.synthesize("amoxicillin", tts.Voice("piper", "en_US-joe-medium"))
        assert speech.sample_rate == 22050 and speech.duration > 0.3
        assert speech.phones is None  # piper reports no phone times
    else:
        assert "phonex[piper]" in why
        with pytest.raises(tts.EngineUnavailableError, match="piper"):
            engine.synthesize("amoxicillin", tts.Voice("piper", "en_US-joe-medium"))


def test_voice_grid_is_data_and_checks_its_test_voices(tmp_path):
    grid = tts.load_voice_grid("quick")
    assert set(grid.test_speakers) <= set(grid.speakers())
    assert 0 < len(grid.test_speakers) < len(grid.speakers())
    bad = tmp_path / "voices.yaml"
    bad.write_text("quick:\n  espeak:\n    voices: [en-us]\n    test: [en-gb]\n")
    with pytest.raises(ValueError, match=r"test voices \['en-gb'\]"):
        tts.load_voice_grid("quick", bad)
    with pytest.raises(ConfigError, match="no voice grid 'huge'"):
        tts.load_voice_grid("huge", bad)


@pytest.mark.parametrize("text", ["NovoLog", "Tylenol PM", "amoxicillin-clavulanate", "ProAir"])
def test_word_split_of_the_events_matches_the_phonemizer(text):
    voice = tts.Voice("espeak", "en-us")
    speech = tts.synthesize(text, voice)
    spoken = [[p.label for p in speech.phones if w.start <= p.start < w.end] for w in speech.words]
    assert to_string(spoken) == to_string(phonemize([text], voice.language)[0])
    assert "".join(w.label for w in speech.words).replace(" ", "") == text.replace(" ", "")


def test_every_full_grid_accent_labels_its_clips_as_the_phonemizer_does(tmp_path):
    from phonex.corpus import write_textgrid
    from phonex.lexicon import load_drugs

    names = [d.name for d in load_drugs()][::12]  # about 50 names, generic and brand
    grid = tts.load_voice_grid("full")
    accents = {v.name.split("+")[0] for v in grid.voices if v.engine == "espeak"}
    assert len(accents) >= 7
    for accent in sorted(accents):
        expected = phonemize(names, accent)
        for name, pron in zip(names, expected):
            speech = tts.synthesize(name, tts.Voice("espeak", accent))
            spoken = [
                [p.label for p in speech.phones if w.start <= p.start < w.end]
                for w in speech.words
            ]
            assert to_string(spoken) == to_string(pron), (accent, name)
            # the true times make a valid Praat TextGrid (sorted, no overlaps, inside the clip)
            tiers = {"words": speech.words, "phones": speech.phones}
            write_textgrid(tmp_path / "clip.TextGrid", tiers, speech.duration)


@pytest.mark.parametrize(
    ("engine", "voice"), [("flite", "slt"), ("flite", "kal16"), ("festival", "kal_diphone")]
)
def test_command_line_engines_speak_at_the_rate_asked_or_say_how_to_install(engine, voice):
    speaker = tts.get_engine(engine)
    ok, why = speaker.available()
    if not ok:  # .ci/run installs both; a machine without them must say how to get them
        assert "apt-get install" in why
        with pytest.raises(tts.EngineUnavailableError, match=engine):
            speaker.synthesize("Zyrtec", tts.Voice(engine, voice))
        return
    normal = speaker.synthesize("amoxicillin", tts.Voice(engine, voice))
    slow = speaker.synthesize("amoxicillin", tts.Voice(engine, voice, rate=120))
    assert normal.sample_rate == 16000 and 0.4 < normal.duration < 2.0
    assert slow.duration > 1.2 * normal.duration
    assert normal.phones is None and np.abs(normal.wave).max() > 0.1
    with pytest.raises(ValueError, match="no speech"):
        speaker.synthesize("!!!", tts.Voice(engine, voice))
    with pytest.raises((ValueError, tts.EngineUnavailableError), match="no voice 'nobody'"):
        speaker.synthesize("Zyrtec", tts.Voice(engine, "nobody"))


def test_missing_command_line_engines_are_reported_not_raised(monkeypatch):
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)
    for name in ("flite", "festival"):
        ok, why = tts.get_engine(name).available()
        assert not ok and f"apt-get install {name}" in why
        with pytest.raises(tts.EngineUnavailableError, match=f"'{name}' is unavailable"):
            tts.synthesize("Zyrtec", tts.Voice(name, "slt"))


@pytest.mark.parametrize("program", ["festival", "text2wave"])
def test_festival_needs_both_its_programs(monkeypatch, program):
    found = {"festival", "text2wave"} - {program}
    monkeypatch.setattr(tts.shutil, "which", lambda name: f"/x/{name}" if name in found else None)
    ok, why = tts.get_engine("festival").available()
    assert not ok and "apt-get install festival" in why
    assert not tts.get_engine("festival").has_voice("kal_diphone")
    assert tts.missing_voices([tts.Voice("festival", "kal_diphone")]) == {}  # absent, not lacking


def test_missing_voices_of_an_installed_engine_are_named(monkeypatch):
    festival = tts.get_engine("festival")
    monkeypatch.setattr(tts.shutil, "which", lambda name: f"/x/{name}")
    monkeypatch.setattr(type(festival), "voices", staticmethod(lambda: ("kal_diphone",)))
    voices = [tts.Voice("festival", "kal_diphone"), tts.Voice("festival", "ked_diphone"),
              tts.Voice("espeak", "en-us")]  # fmt: skip
    missing = tts.missing_voices(voices)
    assert list(missing) == ["festival:ked_diphone"]
    assert "without voice 'ked_diphone'" in missing["festival:ked_diphone"]


def test_a_voice_listing_that_fails_counts_as_no_voices(monkeypatch):
    def fail():
        raise subprocess.CalledProcessError(1, ["festival", "-b"])

    festival = tts.get_engine("festival")
    monkeypatch.setattr(tts.shutil, "which", lambda name: f"/x/{name}")
    monkeypatch.setattr(type(festival), "voices", staticmethod(fail))
    assert list(tts.missing_voices([tts.Voice("festival", "kal_diphone")])) == [
        "festival:kal_diphone"
    ]
