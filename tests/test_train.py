import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from transformers import Wav2Vec2ForCTC

from phonex.checkpoints import CheckpointError
from phonex.cli import main
from phonex.config import ConfigError
from phonex.corpus import write_manifest
from phonex.data import DataError, SpeechDataset, collate
from phonex.evaluate import evaluate_manifest
from phonex.models import ModelError, load_model
from phonex.phonemes import Vocabulary
from phonex.train import optimizer_step, train


def weights(folder):
    return load_model(str(folder)).model.state_dict()


def test_training_lowers_the_loss_and_leaves_a_loadable_best_model(tiny_corpus, train_config,
                                                                   tmp_path):  # fmt: skip
    manifest, _ = tiny_corpus
    result = train(train_config("train.max_steps=30"), [manifest], tmp_path / "run")
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert history.train_loss.iloc[-3:].mean() < 0.5 * history.train_loss.iloc[:3].mean()
    assert history.dev_error.notna().sum() >= 2  # once per epoch (12 batches) and at the end
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["step"] == 30 and run["parameters"]["trainable"] > 0
    assert run["best_dev_error"] == history.dev_error.min()
    scored = evaluate_manifest(result.best_dir, manifest, "test")
    assert scored["clips"] == 16 and 0.0 <= scored["error"] <= 1.5
    assert (tmp_path / "run" / "config.yaml").exists()


def test_fp16_overflow_skips_the_step_halves_the_scale_and_grows_it_back(tiny_corpus):
    _, rows = tiny_corpus
    vocab = Vocabulary.build(r.phones for r in rows)
    model = load_model("tiny-test", vocab).model
    batch = collate(SpeechDataset(rows[:4], vocab).examples)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)

    def backward():
        with torch.autocast("cpu", dtype=torch.float16):
            loss = model(**batch).loss
        scaler.scale(loss).backward()

    before = {k: v.clone() for k, v in model.state_dict().items()}
    backward()
    model.lm_head.weight.grad[0, 0] = float("inf")  # an fp16 overflow in one gradient
    assert optimizer_step(model, optimizer, scaler, clip=1.0) is False
    assert scaler.get_scale() == 512.0
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in model.parameters())
    for _ in range(2):
        backward()
        assert optimizer_step(model, optimizer, scaler, clip=1.0) is True
    assert scaler.get_scale() == 1024.0  # doubled after growth_interval clean steps
    assert not torch.equal(model.lm_head.weight, before["lm_head.weight"])


def test_non_finite_loss_skips_the_step_and_is_counted(tiny_corpus, train_config, tmp_path,
                                                       monkeypatch):  # fmt: skip
    manifest, _ = tiny_corpus
    forward = Wav2Vec2ForCTC.forward
    calls = {"train": 0}

    def nan_on_third_training_batch(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        if self.training:
            calls["train"] += 1
            if calls["train"] == 3:
                out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(Wav2Vec2ForCTC, "forward", nan_on_third_training_batch)
    train(train_config("train.max_steps=5"), [manifest], tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["skipped_steps"] == 1 and run["step"] == 5
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "run" / "best").values())


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(
    tiny_corpus, train_config, tmp_path, kill_at_first_checkpoint, assert_same_weights
):
    manifest, _ = tiny_corpus
    # One thread in both processes: a float sum split over N threads rounds differently than
    # over M, and the reference, the killed and the resumed runs must add up in the same order.
    settings = ["model.dropout=0.1", "train.max_steps=150", "train.checkpoint_every=4",
                "train.log_every=50", "train.threads=1"]  # fmt: skip
    cfg = train_config(*settings)
    reference = train(cfg, [manifest], tmp_path / "reference", progress=False)

    run = tmp_path / "killed"
    command = [sys.executable, "-m", "phonex.cli", "train", "--manifest", str(manifest),
               "--out", str(run), *[f"{k}" for k in _overrides(cfg)]]  # fmt: skip
    killed_at = kill_at_first_checkpoint(command, run)
    assert killed_at is not None and not killed_at.name.endswith("150"), "kill came too late"

    threads = torch.get_num_threads()
    resumed = train(cfg, [manifest], run, progress=False)
    assert resumed.state.step == 150 and resumed.state.threads == 1
    assert torch.get_num_threads() == threads  # the caller's setting is given back
    # Same batches, RNG, optimizer state and summation order: the very same weights, even the
    # attention key biases, whose gradient is rounding noise that Adam scales up.
    assert_same_weights(run / "checkpoints" / "step-000150" / "model",
                        tmp_path / "reference" / "checkpoints" / "step-000150" / "model")  # fmt: skip
    assert resumed.state.best_error == reference.state.best_error


def _overrides(cfg) -> list[str]:
    """``section.key=value`` for every setting, to hand a config to ``phonex train``."""
    out = []
    for section, values in cfg.to_dict().items():
        for key, value in values.items():
            if isinstance(value, list):
                continue
            out.append(
                f"{section}.{key}={str(value).lower() if isinstance(value, bool) else value}"
            )
    return out


def test_two_process_ddp_matches_a_single_process_run(tiny_corpus, train_config, tmp_path):
    manifest, _ = tiny_corpus
    single = train(train_config("train.max_steps=4", "train.batch_size=4"), [manifest],
                   tmp_path / "single", progress=False)  # fmt: skip
    cfg = train_config("train.max_steps=4", "train.batch_size=2")  # per process: 2 x 2 = 4
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "phonex.cli", "train", "--manifest", str(manifest),
               "--out", str(tmp_path / "ddp"), *_overrides(cfg)]  # fmt: skip
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert run["world_size"] == 2
    first, second = run["rank_weight_checksums"]
    assert first == second  # both ranks hold identical weights
    ddp_loss = pd.read_csv(tmp_path / "ddp" / "metrics.csv").train_loss
    single_loss = pd.DataFrame(single.state.history).train_loss
    assert ddp_loss.tolist() == pytest.approx(single_loss.tolist(), rel=1e-3)
    a = weights(tmp_path / "ddp" / "checkpoints" / "step-000004" / "model")
    b = weights(tmp_path / "single" / "checkpoints" / "step-000004" / "model")
    for name, value in a.items():
        torch.testing.assert_close(value, b[name], rtol=1e-3, atol=1e-4, msg=name)


def test_bad_runs_stop_with_clear_errors(tiny_corpus, train_config, tmp_path):
    manifest, rows = tiny_corpus
    no_dev = write_manifest([r for r in rows if r.split != "dev"], tmp_path / "no-dev.jsonl")
    with pytest.raises(DataError, match="no rows with split=dev"):
        train(train_config(), [no_dev], tmp_path / "a")
    with pytest.raises(ModelError, match="no such model"):
        train(train_config("model.name=./no/such/model"), [manifest], tmp_path / "b")

    first_name = rows[0].text
    one_name = write_manifest([r for r in rows if r.text == first_name], tmp_path / "one.jsonl")
    small = train(train_config("train.max_steps=2"), [one_name], tmp_path / "small")
    with pytest.raises(CheckpointError, match="another vocabulary"):
        train(train_config("train.max_steps=2"), [manifest], tmp_path / "small")
    keep = train_config(f"model.name={small.best_dir}", "model.head=keep")
    with pytest.raises(DataError, match="not in the model vocabulary"):
        train(keep, [manifest], tmp_path / "continued")
    with pytest.raises(ConfigError, match="'model.head' is 'sideways'"):
        train_config("model.head=sideways")


def test_cli_train_and_evaluate(tiny_corpus, tmp_path, capsys):
    manifest, _ = tiny_corpus
    args = ["train", "--manifest", str(manifest), "--out", str(tmp_path / "run"),
            "model.name=tiny-test", "train.max_steps=3", "train.batch_size=4"]  # fmt: skip
    assert main(args) == 0
    assert "best dev error" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "run" / "best"), "--manifest", str(manifest)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["split"] == "test" and scored["clips"] == 16 and "error" in scored
    assert main(["train", "--manifest", str(manifest), "train.nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
