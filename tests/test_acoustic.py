"""The small acoustic model: durations tile the mel, training learns, a killed run resumes."""

import numpy as np
import pytest
import torch

from phonex import acoustic
from phonex.checkpoints import read_state
from phonex.config import AudioConfig
from phonex.intervals import Interval
from phonex.phonemes import Vocabulary

CFG = AudioConfig.tacotron2()
VOCAB = Vocabulary([acoustic.SILENCE, "a", "b"])


def tone_clip(pieces):
    """(label, seconds, frequency) pieces as one wave, and their intervals (silence unlabelled)."""
    t, waves, intervals = 0.0, [], []
    for label, seconds, freq in pieces:
        n = int(seconds * CFG.sample_rate)
        waves.append(
            0.5 * np.sin(2 * np.pi * freq * np.arange(n) / CFG.sample_rate)
            if freq
            else np.zeros(n)
        )
        if label:
            intervals.append(Interval(label, t, t + seconds))
        t += seconds
    return np.concatenate(waves).astype(np.float32), intervals


def test_an_example_tiles_the_whole_mel_with_silence_in_the_gaps():
    wave, intervals = tone_clip([("", 0.1, 0), ("a", 0.2, 300), ("b", 0.1, 1200), ("", 0.05, 0)])
    ex = acoustic.example(wave, intervals, VOCAB, CFG)
    assert [VOCAB.tokens[i] for i in ex.tokens] == ["[PAD]", "a", "b", "[PAD]"]
    assert int(ex.durations.sum()) == ex.mel.shape[1] == 1 + len(wave) // CFG.hop_length
    frames_per_s = CFG.sample_rate / CFG.hop_length
    assert ex.durations[1] == pytest.approx(0.2 * frames_per_s, abs=1)


def test_the_length_regulator_repeats_each_phone_for_its_frames():
    model = acoustic.AcousticModel(len(VOCAB), dim=8, layers=1)
    x = torch.arange(3, dtype=torch.float32)[None, :, None].expand(1, 3, 8).clone()
    durations = torch.tensor([[2, 0, 3]])
    model.decoder, model.out = torch.nn.ModuleList(), torch.nn.Identity()
    model.position = torch.nn.Linear(1, 8)
    torch.nn.init.zeros_(model.position.weight), torch.nn.init.zeros_(model.position.bias)
    out = model.decode(x, durations)  # [1, 8, frames]
    assert out[0, 0].tolist() == [0, 0, 2, 2, 2]


def test_training_learns_tones_and_a_killed_run_resumes(tmp_path):
    clips = [tone_clip([("", 0.05, 0), ("a", 0.15 + 0.05 * k, 300), ("b", 0.15, 1500),
                        ("", 0.05, 0)]) for k in range(4)]  # fmt: skip
    examples = [acoustic.example(w, i, VOCAB, CFG) for w, i in clips]
    batch = acoustic.collate(examples)
    torch.manual_seed(0)
    untrained = acoustic.loss(acoustic.AcousticModel(len(VOCAB)), batch).item()
    model = acoustic.fit_acoustic(examples, VOCAB, tmp_path, steps=60, batch_size=4,
                                  checkpoint_every=30, progress=False)  # fmt: skip
    assert acoustic.loss(model, batch).item() < 0.5 * untrained
    mel = model.infer(acoustic.phone_tokens("a b", VOCAB))
    assert mel.shape[0] == 80 and 15 < mel.shape[1] < 80  # predicted durations near the truth
    third = mel.shape[1] // 3  # a 300 Hz tone, then a 1500 Hz one: the loudest band rises
    assert mel[:, :third].mean(1).argmax() < mel[:, -third:].mean(1).argmax()
    reloaded, vocab = acoustic.load_acoustic(tmp_path / "acoustic")
    assert vocab.tokens == VOCAB.tokens
    assert torch.equal(reloaded.infer(acoustic.phone_tokens("a b", VOCAB)), mel)
    # a run "killed" at step 60 of 90 goes on from its checkpoint instead of starting again
    state = read_state(tmp_path / "checkpoint")
    assert state["step"] == 60
    assert state["optimizer"]["state"][0]["step"].item() == 60  # Adam's own counter, restored
    acoustic.fit_acoustic(examples, VOCAB, tmp_path, steps=90, batch_size=4, progress=False)
    assert read_state(tmp_path / "checkpoint")["step"] == 90
    assert not list(tmp_path.glob("*.pt"))  # nothing pickled


def test_unknown_phones_and_bad_files_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"phones \['z'\] were never in training"):
        acoustic.phone_tokens("a z", VOCAB)
    with pytest.raises(ValueError, match="no phones"):
        acoustic.phone_tokens(" | ", VOCAB)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.json").write_text("not a model")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"not tensors")
    with pytest.raises(ValueError, match="bad: not an acoustic model"):
        acoustic.load_acoustic(tmp_path / "bad")
    with pytest.raises(ValueError, match="missing: not an acoustic model"):
        acoustic.load_acoustic(tmp_path / "missing")
