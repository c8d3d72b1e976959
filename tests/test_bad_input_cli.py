"""Bad input on the command line: every case stops with a message naming the file (or option) and
the problem, and nothing already computed is lost. ``main`` runs in-process (imports are slow)."""

import ast
import importlib
import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
import soundfile as sf

import phonex.align
import phonex.cli
from phonex.cli import main
from phonex.cli_types import USER_ERRORS
from phonex.config import ConfigError
from phonex.files import atomic_write, write_cache
from phonex.lexicon import pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.tts import Voice, synthesize


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    vocab = Vocabulary.build(pronunciations(["Zyrtec"]).values())
    folder = tmp_path_factory.mktemp("bad-input") / "model"
    load_model("tiny-test", vocab).save(folder)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    speech = synthesize("Zyrtec", Voice("espeak", "en-us"))
    path = tmp_path_factory.mktemp("bad-input-audio") / "zyrtec.wav"
    sf.write(path, speech.wave, speech.sample_rate)
    return path


# --- arguments: argparse refuses them (SystemExit 2) before anything loads -----------------

ARGUMENTS = {
    "top 0": (["recognize", "--model", "m", "--lexicon", "{file}", "--top", "0", "{file}"],
              "--top", "must be at least 1, got 0"),
    "top -1": (["recognize", "--model", "m", "--lexicon", "{file}", "--top", "-1", "{file}"],
               "--top", "must be at least 1, got -1"),
    "top text": (["recognize", "--model", "m", "--lexicon", "{file}", "--top", "two", "{file}"],
                 "--top", "expected a whole number, got 'two'"),
    "batch size 0": (["evaluate", "m", "--manifest", "{file}", "--batch-size", "0"],
                     "--batch-size", "must be at least 1, got 0"),
    "workers 0": (["synth", "--workers", "0"], "--workers", "must be at least 1, got 0"),
    "window -1": (["align", "--model", "m", "--audio", "{file}", "--text", "a",
                   "--window-seconds", "-1"], "--window-seconds", "must be a positive number"),
    "window 0": (["align", "--model", "m", "--audio", "{file}", "--text", "a",
                  "--window-seconds", "0"], "--window-seconds", "must be a positive number"),
    "window nan": (["align", "--model", "m", "--audio", "{file}", "--text", "a",
                    "--window-seconds", "nan"], "--window-seconds", "must be a positive number"),
    "missing lexicon": (["recognize", "--model", "m", "--lexicon", "{missing}", "{file}"],
                        "--lexicon", "{missing}: no such file"),
    "lexicon is a folder": (["recognize", "--model", "m", "--lexicon", "{dir}", "{file}"],
                            "--lexicon", "{dir}: is a folder, not a file"),
    "missing audio": (["align", "--model", "m", "--audio", "{missing}", "--text", "a"],
                      "--audio", "{missing}: no such file"),
    "missing config": (["train", "--config", "{missing}"], "--config", "{missing}: no such file"),
    "missing manifest": (["evaluate", "m", "--manifest", "{missing}"],
                         "--manifest", "{missing}: no such file"),
    "missing calibration": (["align", "--model", "m", "--audio", "{file}", "--text", "a",
                             "--calibration", "{missing}"], "--calibration", "no such file"),
    "textgrid is a folder": (["align", "--model", "m", "--audio", "{file}", "--text", "a",
                              "--textgrid", "{dir}"], "--textgrid", "{dir}: is a folder"),
    "textgrid below a file": (["align", "--model", "m", "--audio", "{file}", "--text", "a",
                               "--textgrid", "{file}/x.TextGrid"],
                              "--textgrid", "{file} is a file, not a folder"),
    "synth out is a file": (["synth", "--out", "{file}"], "--out", "{file}: is a file, not a folder"),
    "train out below a file": (
        ["train", "--out", "{file}/run"], "--out", "{file} is a file, not a folder"
    ),
    "missing ct2 folder": (["convert-ct2-whisper", "{missing}", "{dir}/out"],
                           "src_dir", "{missing}: no such folder"),
}  # fmt: skip


@pytest.mark.parametrize("case", ARGUMENTS)
def test_a_bad_argument_stops_in_argparse_naming_option_and_problem(case, tmp_path, capsys):
    argv, option, problem = ARGUMENTS[case]
    (tmp_path / "file.txt").write_text("Zyrtec\n")
    paths = {"file": tmp_path / "file.txt", "dir": tmp_path, "missing": tmp_path / "nope.txt"}
    with pytest.raises(SystemExit) as stopped:
        main([a.format(**paths) for a in argv])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert option in err and problem.format(**paths) in err


# --- model folders: every file checked on load ---------------------------------------------


def _rewrite_json(name, change):
    def mutate(folder):
        path = folder / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return mutate


def _truncate(folder):
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _drop_last_token(index):
    return {t: i for t, i in index.items() if i != len(index) - 1}


def _swap_blank(index):
    first_other = next(t for t, i in index.items() if i == 1)
    return {**index, "[PAD]": 1, first_other: 0}


FOLDERS = {
    "truncated weights": ("model.safetensors", _truncate, "truncated: "),
    "weights with bytes added": (
        "model.safetensors",
        lambda f: (f / "model.safetensors").write_bytes(
            (f / "model.safetensors").read_bytes() + b"\0" * 10
        ),
        "damaged: ",
    ),
    "config not JSON": (
        "config.json", lambda f: (f / "config.json").write_text("{oops"), "not valid JSON"
    ),
    "config of no known model": (
        "config.json", _rewrite_json("config.json", lambda c: {**c, "model_type": "nonsense"}),
        "nonsense",
    ),
    "vocab not JSON": ("vocab.json", lambda f: (f / "vocab.json").write_text("["), "not valid JSON"),
    "vocab a list": (
        "vocab.json", lambda f: (f / "vocab.json").write_text('["a"]'), "expected a JSON object"
    ),
    "vocab a token short": (
        "vocab.json", _rewrite_json("vocab.json", _drop_last_token),
        r"\d+ tokens, but the CTC head \(config.json vocab_size\) has \d+ outputs",
    ),
    "vocab a token long": (
        "vocab.json", _rewrite_json("vocab.json", lambda v: {**v, "extra": len(v)}),
        r"\d+ tokens, but the CTC head \(config.json vocab_size\) has \d+ outputs",
    ),
    "vocab ids with a gap": (
        "vocab.json", _rewrite_json("vocab.json", lambda v: {**v, "[PAD]": len(v) + 5}),
        "ids are not 0..n-1",
    ),
    "vocab blank not the pad id": (
        "vocab.json", _rewrite_json("vocab.json", _swap_blank), "pad_token_id is 0"
    ),
    "preprocessor not JSON": (
        "preprocessor_config.json", lambda f: (f / "preprocessor_config.json").write_text("{"),
        "not valid JSON",
    ),
    "preprocessor rate negative": (
        "preprocessor_config.json",
        _rewrite_json("preprocessor_config.json", lambda p: {**p, "sampling_rate": -16000}),
        "sampling_rate -16000",
    ),
    "sidecar not JSON": ("phonex.json", lambda f: (f / "phonex.json").write_text("{"), "not valid"),
    "sidecar units unknown": (
        "phonex.json", _rewrite_json("phonex.json", lambda s: {**s, "units": "words"}),
        "units 'words'",
    ),
    "no config": ("config.json", lambda f: (f / "config.json").unlink(), "missing"),
    "no weights": ("model.safetensors", lambda f: (f / "model.safetensors").unlink(), "missing"),
    "no vocab": ("vocab.json", lambda f: (f / "vocab.json").unlink(), "missing"),
}  # fmt: skip


@pytest.mark.parametrize("case", FOLDERS)
def test_a_damaged_model_folder_is_named_file_by_file(case, model_dir, clip, tmp_path, capsys):
    name, damage, problem = FOLDERS[case]
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    damage(folder)
    assert main(["transcribe", "--model", str(folder), str(clip)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"phonex transcribe: error: {folder / name}: ")
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert re.search(problem, err), err


def test_the_undamaged_folder_transcribes(model_dir, clip, capsys):
    assert main(["transcribe", "--model", str(model_dir), "--json", str(clip)]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(clip)


# --- align: the alignment is printed before the TextGrid is written ------------------------


@pytest.fixture
def textgrid_turns_into_a_folder(monkeypatch, tmp_path):
    """The --textgrid path passes argparse, then a folder appears there while aligning."""
    grid = tmp_path / "out.TextGrid"
    real_align = phonex.align.align

    def align_then_block(*args, **kwargs):
        words = real_align(*args, **kwargs)
        grid.mkdir()
        return words

    monkeypatch.setattr(phonex.align, "align", align_then_block)
    return grid


@pytest.mark.parametrize("as_json", [True, False])
def test_an_unwritable_textgrid_loses_no_alignment(as_json, model_dir, clip, capsys,
                                                   textgrid_turns_into_a_folder):  # fmt: skip
    grid = textgrid_turns_into_a_folder
    argv = ["align", "--model", str(model_dir), "--audio", str(clip), "--text", "Zyrtec",
            "--textgrid", str(grid)]  # fmt: skip
    assert main(argv + (["--json"] if as_json else [])) == 1
    out, err = capsys.readouterr()
    assert f"cannot write the TextGrid {grid}: is a folder" in err
    lines = out.splitlines()
    if not as_json:  # the text lines first, then the whole result as JSON
        assert lines[0].startswith("Zyrtec\t")
    words = json.loads(lines[-1])["words"]
    assert [w["word"] for w in words] == ["Zyrtec"]
    phones = pronunciations(["Zyrtec"])["Zyrtec"].split()
    assert [p["phone"] for p in words[0]["phones"]] == phones


# --- main: phonex's own errors in one line, bugs with their traceback, Ctrl-C as 130 ---------


def _doctor_raising(monkeypatch, error):
    def fail(args):
        raise error

    monkeypatch.setattr(phonex.cli, "cmd_doctor", fail)


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    _doctor_raising(monkeypatch, KeyboardInterrupt())
    assert main(["doctor"]) == 130
    assert capsys.readouterr().err == "phonex doctor: interrupted\n"


@pytest.mark.parametrize("error", [RuntimeError("a bug"), KeyError("a bug"), ValueError("a bug")])
def test_a_genuine_bug_keeps_its_traceback(monkeypatch, error):
    _doctor_raising(monkeypatch, error)
    with pytest.raises(type(error), match="a bug"):
        main(["doctor"])


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ConfigError("train.lr: expected float"), "train.lr: expected float"),
        (
            PermissionError(13, "Permission denied", "/data/x.wav"),
            "/data/x.wav: Permission denied",
        ),
        (FileNotFoundError(2, "No such file or directory", "m/a.b"), "m/a.b: No such file"),
    ],
)
def test_a_phonex_or_file_error_is_one_line_with_status_2(monkeypatch, capsys, error, message):
    _doctor_raising(monkeypatch, error)
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"phonex doctor: error: {message}") and err.count("\n") == 1


def _error_class_names(module_path):
    """Names of the classes a module defines whose bases look like exceptions."""
    for node in ast.parse(module_path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            bases = [getattr(b, "id", getattr(b, "attr", "")) for b in node.bases]
            if any(b.endswith("Error") or b == "Exception" for b in bases):
                yield node.name


def test_every_phonex_error_class_is_reported_as_bad_input():
    registered = tuple(
        getattr(importlib.import_module(module), name)
        for module, names in USER_ERRORS.items()
        for name in names
    )
    assert all(issubclass(error, Exception) for error in registered)
    for path in sorted(Path(phonex.cli.__file__).parent.glob("*.py")):
        names = list(_error_class_names(path))
        module = importlib.import_module(f"phonex.{path.stem}") if names else None
        for name in names:
            assert issubclass(getattr(module, name), registered), (
                f"{module.__name__}.{name} is not in phonex.cli_types.USER_ERRORS"
            )


# --- files: a path that cannot be written is named; a cache that cannot be is skipped -------


def test_atomic_write_names_the_target_not_its_temporary_file(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(IsADirectoryError) as folder:
        atomic_write(tmp_path, lambda tmp: None)
    assert folder.value.filename == str(tmp_path)
    below = tmp_path / "file.txt" / "out.json"
    with pytest.raises(NotADirectoryError, match="file.txt is a file, not a folder") as blocked:
        atomic_write(below, lambda tmp: None)
    assert blocked.value.filename == str(below)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # no temporary file left


def test_a_cache_that_cannot_be_written_warns_and_goes_on(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    blocked = tmp_path / "file.txt" / "cache.json"
    with pytest.warns(UserWarning, match=f"cache not written.*{blocked}"):
        assert write_cache(blocked, "{}") is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert write_cache(tmp_path / "cache" / "c.json", '{"a": 1}') is True
    assert json.loads((tmp_path / "cache" / "c.json").read_text()) == {"a": 1}
