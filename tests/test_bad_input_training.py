"""Bad input to ``phonex train``: refused with the file or setting named, before any work, and
without losing what a run directory already holds."""

import json

import pytest
import yaml

import phonex.train
from phonex.checkpoints import write_state
from phonex.cli import main


def run_train(manifest, run, config, *overrides: str) -> int:
    return main(["train", "--manifest", str(manifest), "--out", str(run), "--config", str(config),
                 *overrides])  # fmt: skip


@pytest.fixture
def settings(train_config, tmp_path):
    """A settings file for a 3-step run of the tiny model."""
    path = tmp_path / "settings.yaml"
    train_config("train.max_steps=3").save(path)
    return path


def snapshot(run) -> dict:
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_a_crafted_pickle_in_a_run_folder_is_refused_and_runs_nothing(tiny_corpus, settings,
                                                                      tmp_path, capsys):  # fmt: skip
    manifest, _ = tiny_corpus
    marker, run = tmp_path / "ran", tmp_path / "run"
    folder = run / "checkpoints" / "step-000002"
    folder.mkdir(parents=True)
    # A protocol-0 pickle whose loading calls exec(): unpickled, it would leave the marker file.
    payload = f"cbuiltins\nexec\n(S\"open('{marker}', 'w').write('ran')\"\ntR."
    (folder / "state.pt").write_bytes(payload.encode())
    assert run_train(manifest, run, settings) == 2
    err = capsys.readouterr().err
    assert str(folder) in err and "state.pt" in err and "not loaded" in err
    assert not marker.exists()
    assert snapshot(run) == {folder.relative_to(run) / "state.pt": payload.encode()}


def test_a_json_state_that_asks_for_code_is_refused(tiny_corpus, settings, tmp_path, capsys):
    manifest, _ = tiny_corpus
    run = tmp_path / "run"
    folder = run / "checkpoints" / "step-000002"
    write_state(folder, {"x": 1})
    crafted = {
        "format": "phonex-training-state-1",
        "rng": {"python": {"__reduce__": ["os.system", [f"touch {tmp_path / 'ran'}"]]}},
    }
    (folder / "state.json").write_text(json.dumps(crafted))
    assert run_train(manifest, run, settings) == 2
    err = capsys.readouterr().err
    assert str(folder / "state.json") in err and "'__reduce__'" in err
    assert not (tmp_path / "ran").exists() and not (run / "config.yaml").exists()


def test_an_old_pickled_run_is_refused_by_name_and_restart_replaces_it(tiny_corpus, settings,
                                                                       tmp_path, capsys):  # fmt: skip
    manifest, _ = tiny_corpus
    run = tmp_path / "run"
    old = run / "checkpoints" / "step-000003"
    (old / "model").mkdir(parents=True)
    (old / "state.pt").write_bytes(b"(dp0\n.")  # an empty dict, pickled as older phonex did
    (run / "metrics.csv").write_text("step,train_loss\n3,1.0\n")
    before = snapshot(run)
    assert run_train(manifest, run, settings) == 2
    err = capsys.readouterr().err
    assert f"{old} holds state.pt" in err and "--restart" in err
    assert snapshot(run) == before  # the old run's files are all still there
    assert run_train(manifest, run, settings, "--restart") == 0
    assert (old / "state.json").is_file() and not (old / "state.pt").exists()


def test_resuming_with_other_training_settings_is_refused_naming_them(tiny_corpus, settings,
                                                                      tmp_path, capsys):  # fmt: skip
    manifest, _ = tiny_corpus
    run = tmp_path / "run"
    assert run_train(manifest, run, settings) == 0
    capsys.readouterr()
    before = snapshot(run)
    assert run_train(manifest, run, settings, "train.lr=0.01", "train.max_steps=6") == 2
    err = capsys.readouterr().err
    assert "train.lr: 0.003 -> 0.01" in err and "train.max_steps: 3 -> 6" in err
    assert "new run directory" in err and "train.batch_size" not in err
    assert snapshot(run) == before
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 0.003
    # what is logged and kept may change: the finished run resumes and stays at step 3
    assert run_train(manifest, run, settings, "train.log_every=2") == 0
    assert json.loads((run / "run.json").read_text())["step"] == 3


@pytest.mark.parametrize(
    "override, shown",
    [
        ("train.max_steps=-5", "'train.max_steps' is -5"),
        ("train.batch_size=0", "'train.batch_size' is 0"),
        ("train.checkpoint_every=0", "'train.checkpoint_every' is 0"),
        ("train.lr=-0.1", "'train.lr' is -0.1"),
    ],
)
def test_impossible_settings_are_refused_before_any_work(tiny_corpus, settings, tmp_path, capsys,
                                                         monkeypatch, override, shown):  # fmt: skip
    manifest, _ = tiny_corpus

    def must_not_run(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(phonex.train, "train", must_not_run)
    assert run_train(manifest, tmp_path / "run", settings, override) == 2
    assert shown in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
