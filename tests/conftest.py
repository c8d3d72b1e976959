"""Shared fixtures: a small synthetic corpus spoken by espeak-ng, made once per test session."""

import signal
import subprocess
import time

import pytest

from phonex.checkpoints import latest_checkpoint
from phonex.config import Config, DataConfig
from phonex.corpus import read_manifest
from phonex.synth import build_corpus


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """4 drug names x the quick voice grid x (clean + 1 augmented): 72 clips in 3 voice splits."""
    out = tmp_path_factory.mktemp("tiny-corpus")
    manifest = build_corpus(out, DataConfig(size="quick", max_names=4, augmentations_per_clip=1))
    return manifest, read_manifest(manifest)


@pytest.fixture
def train_config():
    """Settings for a seconds-long run of the ``tiny-test`` model, without dropout or masking."""

    def make(*overrides: str) -> Config:
        return Config().override([
            "model.name=tiny-test", "model.dropout=0.0", "model.mask_time_prob=0.0",
            "model.freeze_feature_encoder=false", "train.batch_size=4", "train.lr=3e-3",
            "train.warmup_steps=2", "train.max_steps=6", "train.log_every=1",
            "train.checkpoint_every=3", *overrides,
        ])  # fmt: skip

    return make


@pytest.fixture
def tiny_whisper_config():
    """A Whisper config of a few thousand parameters (2 encoder blocks, 30 s of positions)."""
    from transformers import WhisperConfig

    return WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2,
                         encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100,
                         max_source_positions=1500, max_target_positions=32,
                         pad_token_id=1, bos_token_id=1, eos_token_id=2,
                         decoder_start_token_id=3)  # fmt: skip


@pytest.fixture
def kill_at_first_checkpoint():
    """Start a training command, SIGKILL it once it has written a checkpoint, and return the
    newest checkpoint it left (None if it wrote none within two minutes)."""

    def run(command: list[str], run_dir):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while (
            latest_checkpoint(run_dir) is None and time.time() < deadline and proc.poll() is None
        ):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return latest_checkpoint(run_dir)

    return run


@pytest.fixture
def assert_same_weights():
    """Assert that two saved model folders hold bit-identical weights, tensor by tensor."""
    import torch

    from phonex.models import load_model

    def check(folder_a, folder_b) -> None:
        a = load_model(str(folder_a)).model.state_dict()
        b = load_model(str(folder_b)).model.state_dict()
        assert a.keys() == b.keys()
        for name in b:
            assert torch.equal(a[name], b[name]), name

    return check


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An untrained tiny-test model that can spell "Novolog insulin" and "Zyrtec" (a test module
    that needs other words defines its own)."""
    from phonex.lexicon import pronunciations
    from phonex.models import load_model
    from phonex.phonemes import Vocabulary

    vocab = Vocabulary.build(pronunciations(["Novolog insulin", "Zyrtec"]).values())
    folder = tmp_path_factory.mktemp("align-model") / "tiny"
    load_model("tiny-test", vocab).save(folder)
    return folder
