"""Training state as safetensors + strict JSON: exact round trips, and nothing in it runs code."""

import json
import math
import random

import numpy as np
import pytest
import torch

from phonex.checkpoints import (
    CheckpointError,
    latest_checkpoint,
    read_state,
    write_record,
    write_state,
)


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def trained_optimizer(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    for _ in range(3):
        model(torch.randn(8, 5)).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def test_an_optimizer_state_comes_back_exactly_and_steps_on_identically(tmp_path):
    model, optimizer = trained_optimizer(0)
    write_state(tmp_path, {"optimizer": optimizer.state_dict()})
    twin, fresh = trained_optimizer(1)  # other weights and moments, overwritten below
    twin.load_state_dict(model.state_dict())
    fresh.load_state_dict(read_state(tmp_path)["optimizer"])
    assert fresh.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    for a, b in zip(
        fresh.state_dict()["state"].values(), optimizer.state_dict()["state"].values()
    ):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    batch = torch.randn(8, 5)
    for net, opt in ((model, optimizer), (twin, fresh)):
        net(batch).pow(2).mean().backward()
        opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def test_rng_states_and_non_finite_numbers_round_trip_through_strict_json(tmp_path):
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    rng = {"python": random.getstate(), "numpy": np.random.get_state(),
           "torch": torch.get_rng_state()}  # fmt: skip
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state = {"rng": rng, "best": math.inf, "worst": -math.inf, "loss": math.nan,
             "by_id": {0: (1, "a"), 7: None}, "__odd": 1}  # fmt: skip
    write_state(tmp_path, state)
    text = (tmp_path / "state.json").read_text()
    strict_json(text)  # no Infinity or NaN tokens
    back = read_state(tmp_path)
    random.setstate(back["rng"]["python"])
    np.random.set_state(back["rng"]["numpy"])
    torch.set_rng_state(back["rng"]["torch"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert back["best"] == math.inf and back["worst"] == -math.inf and math.isnan(back["loss"])
    assert back["by_id"] == {0: (1, "a"), 7: None} and back["__odd"] == 1


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"x": {"__ndarray__": [1], "dtype": "object"}}', "__ndarray__"),
        ('{"x": {"__tensor__": "elsewhere"}}', "no tensor 'elsewhere'"),
        ('{"x": {"__import__": "os.system"}}', "unexpected entry '__import__'"),
        ("[1, 2]", "not a training state"),
        ("{not json", "unreadable"),
    ],
)
def test_a_state_file_phonex_did_not_write_is_refused_with_its_name(tmp_path, content, problem):
    write_state(tmp_path, {"x": 1})
    (tmp_path / "state.json").write_text(content)
    with pytest.raises(CheckpointError, match="state.json") as err:
        read_state(tmp_path)
    assert problem in str(err.value)


def test_damaged_tensors_or_a_missing_file_are_refused(tmp_path):
    write_state(tmp_path, {"t": torch.ones(3)})
    (tmp_path / "state.safetensors").write_bytes(b"\xff" * 40)
    with pytest.raises(CheckpointError, match="unreadable"):
        read_state(tmp_path)
    (tmp_path / "state.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no state.safetensors"):
        read_state(tmp_path)


def test_a_pickled_checkpoint_is_refused_by_name_and_never_unpickled(tmp_path):
    marker = tmp_path / "ran"
    folder = tmp_path / "run" / "checkpoints" / "step-000004"
    folder.mkdir(parents=True)
    # A protocol-0 pickle whose loading calls exec(): it would leave the marker file.
    payload = f"cbuiltins\nexec\n(S\"open('{marker}', 'w').write('ran')\"\ntR."
    (folder / "state.pt").write_bytes(payload.encode())
    with pytest.raises(CheckpointError, match=r"step-000004 holds state\.pt"):
        latest_checkpoint(tmp_path / "run")
    assert not marker.exists()


def test_an_incomplete_checkpoint_folder_is_not_the_latest(tmp_path):
    done = tmp_path / "checkpoints" / "step-000004"
    write_state(done, {"x": 1})
    (tmp_path / "checkpoints" / "step-000008.tmp").mkdir()  # killed while writing
    (tmp_path / "checkpoints" / "step-000012").mkdir()  # no state.json
    assert latest_checkpoint(tmp_path) == done
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_run_records_are_strict_json_with_null_for_non_finite(tmp_path):
    write_record(tmp_path / "run.json", {"best": math.inf, "rows": [{"loss": math.nan}],
                                         "path": tmp_path, "ok": True})  # fmt: skip
    record = strict_json((tmp_path / "run.json").read_text())
    assert record == {"best": None, "rows": [{"loss": None}], "path": str(tmp_path), "ok": True}


def test_a_setting_added_after_the_run_started_counts_as_its_default(tmp_path):
    from phonex.checkpoints import FORMAT, read_checkpoint
    from phonex.config import Config

    config = Config().to_dict()
    older = {section: dict(values) for section, values in config.items()}
    del older["model"]["vocabulary"]  # a run saved before phonex had this setting
    folder = tmp_path / "run" / "checkpoints" / "step-000003"
    write_state(folder, {"format": FORMAT, "config": older, "state": {"threads": 1}})
    assert read_checkpoint(folder, config)["config"] == older
    changed = Config().override(["model.vocabulary=english"]).to_dict()
    with pytest.raises(CheckpointError, match="model.vocabulary: 'train' -> 'english'"):
        read_checkpoint(folder, changed)
