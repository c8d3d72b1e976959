"""Training a Whisper CTC model from the frozen-feature cache through the one training loop: it
learns, it matches training from waveforms, a killed run resumes exactly, and bad settings stop."""

import json
import sys

import pandas as pd
import pytest
import torch

from phonex.config import PROJ_ROOT, Config, ConfigError
from phonex.data import SpeechDataset
from phonex.english_phones import english_vocabulary
from phonex.feature_cache import (
    INDEX_FILE,
    FeatureCache,
    collate,
    forward_cached,
    wave_checksum,
)
from phonex.models import emissions, load_model
from phonex.train import prepare_model, read_splits, train

CACHED = ["model.name=whisper-tiny-test", "model.trainable_layers=1", "model.feature_cache=true"]


def result_vocab(result):
    return load_model(str(result.best_dir)).vocab


def weights(folder):
    return load_model(str(folder)).model.state_dict()


def test_cached_training_lowers_the_loss_and_saves_a_full_model(tiny_corpus, train_config,
                                                                tmp_path):  # fmt: skip
    manifest, _ = tiny_corpus
    cfg = train_config(*CACHED, "model.mask_time_prob=0.1", "train.max_steps=40")
    result = train(cfg, [manifest], tmp_path / "run", progress=False, cache_root=tmp_path / "c")
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert history.train_loss.iloc[-3:].mean() < 0.5 * history.train_loss.iloc[:3].mean()
    assert history.dev_error.notna().sum() >= 2
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["best_dev_error"] == history.dev_error.min()
    (folder,) = (tmp_path / "c").iterdir()  # one cache: the frozen prefix never changed
    index = json.loads((folder / INDEX_FILE).read_text())
    train_rows, dev_rows = read_splits([manifest])
    data = SpeechDataset(train_rows + dev_rows, result_vocab(result), normalize=False,
                         unknown="unk")  # fmt: skip
    assert set(index["entries"]) == {wave_checksum(e.wave) for e in data.examples}
    assert index["first_block"] == 1 and index["dtype"] == "float16"

    # The best model is an ordinary model folder; its emissions from waveforms are what the
    # cached path computes from the stored float16 features of the same clip.
    best = load_model(str(result.best_dir))
    assert len(data.examples) == run["train_clips"] + run["dev_clips"]
    wave = data.examples[-1].wave  # a dev clip, cached while training
    full = emissions(best, [wave])[0]
    cache = FeatureCache(best.model, 1, tmp_path / "c")
    assert cache.folder == folder and wave_checksum(wave) in cache.entries
    with torch.no_grad():
        logits = forward_cached(best.model.eval(), collate([cache.get(wave)]), 1).logits[0]
    cached = torch.log_softmax(logits, dim=-1)
    assert cached.shape == full.shape
    # Features stored as float16 (relative error 5e-4) move these log-probabilities by ~1e-4.
    torch.testing.assert_close(cached, full, rtol=0, atol=2e-3)


def test_cached_training_matches_training_from_waveforms(tiny_corpus, train_config, tmp_path):
    manifest, _ = tiny_corpus
    settings = ["model.name=whisper-tiny-test", "model.trainable_layers=1", "train.max_steps=8",
                "train.threads=1", "model.feature_cache_dtype=float32"]  # fmt: skip
    waves = train(train_config(*settings), [manifest], tmp_path / "waves", progress=False)
    cached = train(train_config(*settings, "model.feature_cache=true"), [manifest],
                   tmp_path / "cached", progress=False, cache_root=tmp_path / "c")  # fmt: skip
    # The same numbers up to float rounding: from waveforms the frozen block sees a padded
    # batch, from the cache each clip alone, so its matrix products add in another order
    # (about 1e-7 apart); eight Adam steps keep that at rounding level.
    loss_a = [row["train_loss"] for row in waves.state.history]
    loss_b = [row["train_loss"] for row in cached.state.history]
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    a = weights(tmp_path / "waves" / "checkpoints" / "step-000008" / "model")
    b = weights(tmp_path / "cached" / "checkpoints" / "step-000008" / "model")
    earlier = weights(tmp_path / "cached" / "checkpoints" / "step-000006" / "model")
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=1e-5, atol=1e-6, msg=name)
    # Not a comparison of two idle runs: the trained block and head moved, the frozen one not.
    assert torch.equal(b["encoder.layers.0.fc1.weight"], earlier["encoder.layers.0.fc1.weight"])
    for name in ("encoder.layers.1.fc1.weight", "lm_head.weight"):
        assert (b[name] - earlier[name]).abs().max() > 1e-3, name


RESUME_SCRIPT = """
import sys
from phonex.config import Config
from phonex.train import train
train(Config.load(sys.argv[1]), [sys.argv[2]], sys.argv[3], progress=False, cache_root=sys.argv[4])
"""


def test_a_killed_cached_run_resumes_to_the_weights_of_an_uninterrupted_one(
    tiny_corpus, train_config, tmp_path, kill_at_first_checkpoint, assert_same_weights
):
    manifest, _ = tiny_corpus
    # Dropout in the trained block and masks on the cached features: both must resume exactly
    # (torch's RNG from the checkpoint, the masks from (seed, rank, step, micro-step)).
    cfg = train_config(*CACHED, "model.dropout=0.1", "model.mask_time_prob=0.3",
                       "train.max_steps=150", "train.checkpoint_every=4", "train.log_every=50",
                       "train.threads=1", "train.grad_accum=2")  # fmt: skip
    cache = tmp_path / "cache"
    reference = train(cfg, [manifest], tmp_path / "reference", progress=False, cache_root=cache)

    run = tmp_path / "killed"
    cfg.save(tmp_path / "cfg.yaml")
    command = [sys.executable, "-c", RESUME_SCRIPT, str(tmp_path / "cfg.yaml"), str(manifest),
               str(run), str(cache)]  # fmt: skip
    killed_at = kill_at_first_checkpoint(command, run)
    assert killed_at is not None and not killed_at.name.endswith("150"), "kill came too late"

    resumed = train(cfg, [manifest], run, progress=False, cache_root=cache)
    assert resumed.state.step == 150
    assert_same_weights(run / "checkpoints" / "step-000150" / "model",
                        tmp_path / "reference" / "checkpoints" / "step-000150" / "model")  # fmt: skip
    assert resumed.state.best_error == reference.state.best_error
    assert resumed.state.history[-1] == reference.state.history[-1] | {
        "elapsed_s": resumed.state.history[-1]["elapsed_s"]
    }


def test_a_feature_cache_the_model_cannot_use_is_refused_by_name(tiny_corpus, train_config,
                                                                 tmp_path):  # fmt: skip
    manifest, _ = tiny_corpus
    wav2vec2 = train_config("model.feature_cache=true", "model.trainable_layers=1")
    with pytest.raises(ConfigError, match=r"'model\.feature_cache' is true.*Wav2Vec2ForCTC"):
        train(wav2vec2, [manifest], tmp_path / "a", cache_root=tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()  # nothing written
    with pytest.raises(ConfigError, match=r"'model\.feature_cache' is True.*trainable_layers"):
        train_config("model.name=whisper-tiny-test", "model.feature_cache=true")
    with pytest.raises(ConfigError, match=r"'model\.feature_cache_dtype' is 'float64'"):
        train_config(*CACHED, "model.feature_cache_dtype=float64")
    with pytest.raises(ConfigError, match=r"'model\.vocabulary' is 'french'"):
        train_config("model.vocabulary=french")
    with pytest.raises(ConfigError, match=r"'model\.vocabulary' is 'english'"):
        train_config("model.vocabulary=english", "model.units=chars")


def test_the_english_vocabulary_replaces_the_train_splits_own(tiny_corpus, train_config):
    manifest, _ = tiny_corpus
    train_rows, _ = read_splits([manifest])
    built = prepare_model(train_config(*CACHED), train_rows).vocab
    english = prepare_model(train_config(*CACHED, "model.vocabulary=english"), train_rows).vocab
    assert english.tokens == english_vocabulary().tokens
    assert set(built.tokens) < set(english.tokens)  # drug names use English phones only
    assert "ð" in english.tokens and "ð" not in built.tokens


def test_the_real_speech_recipe_without_real_speech_stops_before_training(
    tmp_path, monkeypatch, capsys
):
    from phonex import config as settings
    from phonex.cli import main

    config = PROJ_ROOT / "configs" / "phonex-en-tiny.yaml"
    cfg = Config.load(config)
    assert cfg.model.feature_cache and cfg.model.vocabulary == "english"
    monkeypatch.setattr(settings, "SHARED_DATA_DIR", tmp_path / "empty")
    monkeypatch.setattr("phonex.cli.PROCESSED_DIR", tmp_path / "processed")
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--real-speech", "--out", str(run)]) == 2
    assert "no real training speech" in capsys.readouterr().err
    assert not run.exists()
