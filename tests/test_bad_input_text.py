"""Bad input to ``phonex recognize`` and ``phonex align``: short clips, text espeak-ng would
misread, broken lexicon files and caches. Each is refused or skipped by name, with the right
exit status, and what can be computed still is (in-process CLI runs on a tiny random model)."""

import json
import warnings

import numpy as np
import pytest
import soundfile as sf

from phonex import config
from phonex.cli import main
from phonex.intervals import read_alignment
from phonex.lexicon import pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.tts import Voice, synthesize

WORDS = ["Zyrtec", "Zantac", "Xanax", "insulin glargine"]
ALIGN_TEXT = "take 2 tablets, 3x daily!"
SPOKEN = ["take", "two", "tablets", "three", "ex", "daily"]


def strict_json(line: str) -> dict:
    """``json.loads`` that fails on NaN and Infinity, as strict parsers do."""

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Pronunciation caches go to the test's own folder, never the project's data/."""
    monkeypatch.setattr(config, "INTERIM_DIR", tmp_path / "interim")
    return tmp_path / "interim" / "lexicon"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An untrained tiny-test model whose vocabulary spells WORDS and the align text."""
    cache = tmp_path_factory.mktemp("cache")
    prons = pronunciations([*WORDS, *SPOKEN, " ".join(SPOKEN)], cache_dir=cache)
    folder = tmp_path_factory.mktemp("model") / "tiny"
    load_model("tiny-test", Vocabulary.build(prons.values())).save(folder)
    return folder


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    return path


def noise_clip(path, seconds: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    sf.write(path, rng.normal(scale=0.1, size=round(16000 * seconds)).astype(np.float32), 16000)
    return path


def run(argv: list[str]) -> int:
    """``phonex`` in-process: its exit status, whether argparse or the command gave it."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def recognize(model_dir, lexicon, *clips, extra=()) -> list[str]:
    return ["recognize", "--model", str(model_dir), "--lexicon", str(lexicon), "--json",
            "--top", str(len(WORDS)), *extra, *map(str, clips)]  # fmt: skip


# --- scores and short clips -------------------------------------------------------------------


def test_words_too_long_for_a_clip_get_null_scores_and_rank_last(model_dir, lexicon, tmp_path,
                                                                  capsys):  # fmt: skip
    clip = noise_clip(tmp_path / "brief.wav", 0.2)  # 9 frames: "Xanax" fits, the long name not
    assert main(recognize(model_dir, lexicon, clip)) == 0
    (line,) = capsys.readouterr().out.splitlines()
    candidates = strict_json(line)["candidates"]
    scores = {c["word"]: c["score"] for c in candidates}
    assert scores["insulin glargine"] is None and isinstance(scores["Xanax"], float)
    cut = [c["score"] for c in candidates].index(None)
    assert all(c["score"] is None for c in candidates[cut:])
    assert all(isinstance(c["score"], float) for c in candidates[:cut])


@pytest.mark.parametrize("seconds", [0.05, 0.01])  # too short for any word; under 25 ms
def test_a_clip_too_short_is_named_and_the_others_still_recognised(
    model_dir, lexicon, tmp_path, capsys, seconds
):
    good = noise_clip(tmp_path / "good.wav", 1.0)
    short = noise_clip(tmp_path / "short.wav", seconds, seed=1)
    assert main(recognize(model_dir, lexicon, good)) == 0
    alone = strict_json(capsys.readouterr().out)

    assert main(recognize(model_dir, lexicon, short, good)) == 1
    out, err = capsys.readouterr()
    assert f"{short}: too short: {seconds:.3f} s" in err and "shortest lexicon word" in err
    (line,) = out.splitlines()
    assert strict_json(line) == alone  # the short clip is not scored, nor batched with it


def test_transcribe_skips_a_clip_under_the_receptive_field_by_name(model_dir, tmp_path, capsys):
    good = noise_clip(tmp_path / "good.wav", 1.0)
    blip = tmp_path / "blip.wav"
    sf.write(blip, np.full(160, 0.3, np.float32), 16000)  # 10 ms: no model frame
    assert main(["transcribe", "--model", str(model_dir), "--json", str(good)]) == 0
    alone = strict_json(capsys.readouterr().out)

    assert main(["transcribe", "--model", str(model_dir), "--json", str(blip), str(good)]) == 1
    out, err = capsys.readouterr()
    assert f"{blip}: too short" in err and "receptive field" in err
    assert [strict_json(line) for line in out.splitlines()] == [alone]


def test_align_refuses_a_clip_under_the_receptive_field_by_name(model_dir, tmp_path, capsys):
    clip = tmp_path / "blip.wav"
    sf.write(clip, np.full(160, 0.3, np.float32), 16000)  # 10 ms
    assert main(["align", "--model", str(model_dir), "--audio", str(clip), "--text", "take"]) == 2
    err = capsys.readouterr().err
    assert str(clip) in err and "receptive field" in err and "Traceback" not in err


# --- lexicon text -----------------------------------------------------------------------------


def test_a_chinese_entry_is_skipped_by_name_and_an_error_under_strict(model_dir, tmp_path,
                                                                      capsys):  # fmt: skip
    lexicon = tmp_path / "mixed.txt"
    lexicon.write_text("Zyrtec\n阿司匹林\nXanax\n", encoding="utf-8")
    clip = noise_clip(tmp_path / "clip.wav", 1.0)
    with pytest.warns(UserWarning, match="'阿司匹林': letters outside the Latin script"):
        assert main(recognize(model_dir, lexicon, clip)) == 0
    words = {c["word"] for c in strict_json(capsys.readouterr().out)["candidates"]}
    assert words == {"Zyrtec", "Xanax"}
    assert main(recognize(model_dir, lexicon, clip, extra=["--strict"])) == 2
    err = capsys.readouterr().err
    assert "'阿司匹林': letters outside the Latin script" in err and "CJK" in err


def test_a_byte_order_mark_stays_out_of_the_first_word(model_dir, tmp_path, capsys):
    lexicon = tmp_path / "bom.txt"
    lexicon.write_bytes("\n".join(WORDS).encode("utf-8-sig"))
    clip = noise_clip(tmp_path / "clip.wav", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped
        assert main(recognize(model_dir, lexicon, clip)) == 0
    words = [c["word"] for c in strict_json(capsys.readouterr().out)["candidates"]]
    assert sorted(words) == sorted(WORDS)


def test_a_latin1_lexicon_is_named_with_its_line(model_dir, tmp_path, capsys):
    lexicon = tmp_path / "latin1.txt"
    lexicon.write_bytes("Zyrtec\nXanax\nCafé Noir\n".encode("latin-1"))
    clip = noise_clip(tmp_path / "clip.wav", 1.0)
    assert main(recognize(model_dir, lexicon, clip)) == 2
    err = capsys.readouterr().err
    assert f"{lexicon}:3: not UTF-8" in err and "codec" not in err


def test_a_lexicon_folder_is_named(model_dir, tmp_path, capsys):
    clip = noise_clip(tmp_path / "clip.wav", 1.0)
    assert run(recognize(model_dir, tmp_path, clip)) == 2
    assert f"{tmp_path}: is a folder" in capsys.readouterr().err


def test_a_200000_character_line_is_not_echoed_whole(model_dir, lexicon, tmp_path, capsys):
    long = tmp_path / "long.txt"
    long.write_text(lexicon.read_text(encoding="utf-8") + "x" * 200_000 + "\n", encoding="utf-8")
    clip = noise_clip(tmp_path / "clip.wav", 1.0)
    with pytest.warns(UserWarning) as caught:
        assert main(recognize(model_dir, long, clip)) == 0
    messages = [str(w.message) for w in caught]
    assert any("(200000 characters): longer than 100" in m for m in messages)
    assert max(map(len, messages)) < 500
    assert len(strict_json(capsys.readouterr().out)["candidates"]) == len(WORDS)
    assert main(recognize(model_dir, long, clip, extra=["--strict"])) == 2
    err = capsys.readouterr().err
    assert "(200000 characters): longer than 100" in err and len(err) < 500


# --- the pronunciation cache ------------------------------------------------------------------


def test_an_unwritable_cache_warns_and_recognition_goes_on(model_dir, lexicon, tmp_path,
                                                           monkeypatch, capsys):  # fmt: skip
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setattr(config, "INTERIM_DIR", blocker)
    clip = noise_clip(tmp_path / "clip.wav", 1.0)
    with pytest.warns(UserWarning, match=f"cannot write the pronunciation cache {blocker}"):
        assert main(recognize(model_dir, lexicon, clip)) == 0
    assert len(strict_json(capsys.readouterr().out)["candidates"]) == len(WORDS)


def test_a_cache_with_entries_removed_is_recomputed(model_dir, lexicon, tmp_path, capsys,
                                                    private_cache):  # fmt: skip
    clip = noise_clip(tmp_path / "clip.wav", 1.0)
    assert main(recognize(model_dir, lexicon, clip)) == 0
    first = strict_json(capsys.readouterr().out)
    (cache,) = private_cache.glob("*.json")
    cached = json.loads(cache.read_text(encoding="utf-8"))
    cached["pronunciations"] = {"Zyrtec": cached["pronunciations"]["Zyrtec"]}
    cache.write_text(json.dumps(cached, ensure_ascii=False), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no word skipped as "empty"
        assert main(recognize(model_dir, lexicon, clip)) == 0
    assert strict_json(capsys.readouterr().out) == first


# --- align text -------------------------------------------------------------------------------


def test_align_keeps_the_users_words_for_digits_and_punctuation(model_dir, tmp_path, capsys):
    speech = synthesize(ALIGN_TEXT, Voice("espeak", "en-us"))
    clip, grid = tmp_path / "clip.wav", tmp_path / "clip.TextGrid"
    sf.write(clip, speech.wave, speech.sample_rate)
    assert main(["align", "--model", str(model_dir), "--audio", str(clip), "--text", ALIGN_TEXT,
                 "--json", "--textgrid", str(grid)]) == 0  # fmt: skip
    words = strict_json(capsys.readouterr().out)["words"]
    labels = ["take", "2", "tablets", "3x", "daily"]  # punctuation around a word is dropped
    assert [w["word"] for w in words] == labels
    assert [i.label for i in read_alignment(grid)["words"]] == labels
    two = pronunciations(["two"], cache_dir=tmp_path)["two"].split()
    assert [p["phone"] for p in words[1]["phones"]] == two  # "2" is spoken as "two"
    three_x = pronunciations(["3x"], cache_dir=tmp_path)["3x"].replace("|", " ").split()
    assert [p["phone"] for p in words[3]["phones"]] == three_x  # one word, "three ex"


def test_align_refuses_a_word_espeak_ng_would_misread_by_name(model_dir, tmp_path, capsys):
    speech = synthesize("take two", Voice("espeak", "en-us"))
    clip = tmp_path / "clip.wav"
    sf.write(clip, speech.wave, speech.sample_rate)
    command = ["align", "--model", str(model_dir), "--audio", str(clip), "--json"]
    assert main([*command, "--text", "take 中文"]) == 2
    err = capsys.readouterr().err
    assert "'中文': letters outside the Latin script" in err and str(clip) in err
    assert main([*command, "--text", "take — 中文", "--unknown", "wildcard"]) == 0
    words = strict_json(capsys.readouterr().out)["words"]
    assert [w["word"] for w in words] == ["take", "中文"]
    assert [p["phone"] for p in words[1]["phones"]] == ["*"]
