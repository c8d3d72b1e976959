"""A small non-autoregressive acoustic model: phones with durations -> Tacotron2 log-mel.

FastSpeech's recipe, cut to what trains on 2 CPU cores in minutes: phone embeddings, a
convolutional encoder, a duration predictor (log frames), a length regulator that repeats each
phone's encoding for its frames, and a convolutional decoder to 80 mel bands. Training takes the
true durations (teacher forcing); synthesis takes the predicted ones. Targets are
:func:`phonex.audio.mel_spectrogram` with :meth:`AudioConfig.tacotron2`; Griffin-Lim vocodes.

Durations come from a clip's phone intervals: espeak-ng's own times, or a forced alignment
(:func:`phonex.probe.reference_phones`). Gaps between phones (leading and trailing silence,
pauses) become the silence token, ``[PAD]``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from phonex.checkpoints import CheckpointError, read_state, replace_dir, write_state
from phonex.config import AudioConfig
from phonex.phonemes import WORD_SEP, Vocabulary

SILENCE = "[PAD]"


@dataclass
class Example:
    """One clip: token ids ``[P]``, their durations in mel frames ``[P]`` and the mel ``[80, F]``."""

    tokens: torch.Tensor
    durations: torch.Tensor
    mel: torch.Tensor


def example(wave: np.ndarray, intervals, vocab: Vocabulary, cfg: AudioConfig) -> Example:
    """Tokens and frame durations that tile the whole mel (silence in the gaps)."""
    from phonex.audio import mel_spectrogram

    mel = torch.from_numpy(mel_spectrogram(wave, cfg))
    frames, per_second = mel.shape[1], cfg.sample_rate / cfg.hop_length
    tokens, ends = [], []
    for interval in intervals:
        start, end = round(interval.start * per_second), round(interval.end * per_second)
        if start > (ends[-1] if ends else 0):
            tokens.append(SILENCE), ends.append(start)
        if end > (ends[-1] if ends else 0):  # a phone shorter than a frame is dropped
            tokens.append(interval.label), ends.append(min(end, frames))
    if not ends or ends[-1] < frames:
        tokens.append(SILENCE), ends.append(frames)
    durations = np.diff([0, *ends])
    return Example(torch.tensor(vocab.encode(" ".join(tokens))), torch.tensor(durations), mel)


class _ConvBlock(nn.Module):
    def __init__(self, dim: int, kernel: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # x: [B, T, D]
        y = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return self.norm(x + self.dropout(y)) * mask[..., None]


class AcousticModel(nn.Module):
    """Phones -> encoder -> (durations, length regulator) -> decoder -> log-mel."""

    def __init__(self, n_tokens: int, n_mels: int = 80, dim: int = 128, layers: int = 3,
                 kernel: int = 5, dropout: float = 0.1):  # fmt: skip
        super().__init__()
        self.config = {"n_tokens": n_tokens, "n_mels": n_mels, "dim": dim, "layers": layers,
                       "kernel": kernel, "dropout": dropout}  # fmt: skip
        self.embed = nn.Embedding(n_tokens, dim)
        self.encoder = nn.ModuleList(_ConvBlock(dim, kernel, dropout) for _ in range(layers))
        self.duration = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU(),
                                      nn.Conv1d(dim, 1, 1))  # fmt: skip
        self.position = nn.Linear(1, dim)  # where in its phone a frame is (0..1)
        self.decoder = nn.ModuleList(_ConvBlock(dim, kernel, dropout) for _ in range(layers))
        self.out = nn.Linear(dim, n_mels)

    def encode(self, tokens: torch.Tensor, mask: torch.Tensor):
        x = self.embed(tokens) * mask[..., None]
        for block in self.encoder:
            x = block(x, mask)
        log_durations = self.duration(x.transpose(1, 2)).squeeze(1) * mask
        return x, log_durations

    def decode(self, x: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
        """Repeat each phone's encoding for its frames, then decode: ``[B, n_mels, F]``."""
        frames = int(durations.sum(1).max())
        index = torch.zeros(len(x), frames, dtype=torch.long, device=x.device)
        phase = torch.zeros(len(x), frames, device=x.device)
        mask = torch.zeros(len(x), frames, device=x.device)
        for b in range(len(x)):
            ids = torch.repeat_interleave(torch.arange(len(durations[b]), device=x.device),
                                          durations[b])  # fmt: skip
            starts = torch.cumsum(durations[b], 0) - durations[b]
            index[b, : len(ids)], mask[b, : len(ids)] = ids, 1
            within = torch.arange(len(ids), device=x.device) - starts[ids]
            phase[b, : len(ids)] = within / durations[b][ids].clamp(min=1)
        y = x.gather(1, index[..., None].expand(-1, -1, x.shape[2])) + self.position(
            phase[..., None]
        )
        y = y * mask[..., None]
        for block in self.decoder:
            y = block(y, mask)
        return self.out(y).transpose(1, 2)

    def forward(self, tokens, durations, token_mask):
        x, log_durations = self.encode(tokens, token_mask)
        return self.decode(x, durations), log_durations

    @torch.no_grad()
    def infer(self, tokens: torch.Tensor, pace: float = 1.0) -> torch.Tensor:
        """Log-mel ``[n_mels, F]`` of one token sequence ``[P]``, with predicted durations."""
        self.eval()
        mask = torch.ones(1, len(tokens), device=tokens.device)
        x, log_durations = self.encode(tokens[None], mask)
        durations = torch.clamp(torch.round(torch.expm1(log_durations) * pace), min=1).long()
        return self.decode(x, durations)[0]


def collate(examples: Sequence[Example]) -> dict[str, torch.Tensor]:
    phones = max(len(e.tokens) for e in examples)
    frames = max(e.mel.shape[1] for e in examples)
    batch = {
        "tokens": torch.zeros(len(examples), phones, dtype=torch.long),
        "durations": torch.zeros(len(examples), phones, dtype=torch.long),
        "token_mask": torch.zeros(len(examples), phones),
        "mel": torch.zeros(len(examples), examples[0].mel.shape[0], frames),
        "frame_mask": torch.zeros(len(examples), frames),
    }
    for i, e in enumerate(examples):
        p, f = len(e.tokens), e.mel.shape[1]
        batch["tokens"][i, :p], batch["durations"][i, :p], batch["token_mask"][i, :p] = (
            e.tokens, e.durations, 1)  # fmt: skip
        batch["mel"][i, :, :f], batch["frame_mask"][i, :f] = e.mel, 1
    return batch


def loss(model: AcousticModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Masked L1 on the mel plus MSE on log(1 + duration), as FastSpeech."""
    mel, log_durations = model(batch["tokens"], batch["durations"], batch["token_mask"])
    frames = batch["frame_mask"][:, None, :]
    mel_loss = ((mel.float() - batch["mel"]).abs() * frames).sum() / (frames.sum() * mel.shape[1])
    target = torch.log1p(batch["durations"].float())
    mask = batch["token_mask"]
    duration_loss = (((log_durations.float() - target) ** 2) * mask).sum() / mask.sum()
    return mel_loss + duration_loss


def fit_acoustic(examples: Sequence[Example], vocab: Vocabulary, out_dir: str | Path,
                 steps: int = 1000, batch_size: int = 16, lr: float = 2e-3,
                 precision: str = "auto", checkpoint_every: int = 200, seed: int = 0,
                 progress: bool = True) -> AcousticModel:  # fmt: skip
    """Train an :class:`AcousticModel` with the project's AMP step (fp16/bf16 on a GPU).

    ``out_dir/checkpoint/`` (model, optimiser, scaler, step; safetensors + JSON, as
    :func:`phonex.checkpoints.write_state`) is written every ``checkpoint_every`` steps, and a run
    killed midway resumes from it; the finished model is ``out_dir/acoustic/``
    (:func:`load_acoustic`).
    """
    from tqdm.auto import tqdm

    from phonex.models import autocast, resolve_precision
    from phonex.train import optimizer_step

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(precision, device)
    torch.manual_seed(seed)
    model = AcousticModel(len(vocab)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-6)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    step, checkpoint = 0, out_dir / "checkpoint"
    if (checkpoint / "state.json").is_file():
        state = read_state(checkpoint)
        model.load_state_dict(state["model"]), optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step = state["step"]
    rng = np.random.default_rng(seed + step)  # a resumed run draws new batches
    model.train()
    with tqdm(total=steps, initial=step, desc="acoustic model", disable=not progress) as bar:
        while step < steps:
            picked = rng.choice(len(examples), min(batch_size, len(examples)), replace=False)
            batch = {k: v.to(device) for k, v in collate([examples[i] for i in picked]).items()}
            with autocast(precision, device):
                value = loss(model, batch)
            scaler.scale(value).backward()
            optimizer_step(model, optimizer, scaler, clip=1.0)
            step += 1
            bar.update(1), bar.set_postfix(loss=f"{value.item():.3f}")
            if step % checkpoint_every == 0 or step == steps:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scaler": scaler.state_dict(), "step": step}  # fmt: skip
                tmp = checkpoint.with_name("checkpoint.tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                write_state(tmp, state)
                replace_dir(tmp, checkpoint)
    save_acoustic(model.cpu(), vocab, out_dir / "acoustic")
    return model.eval()


def phone_tokens(phones: str, vocab: Vocabulary) -> torch.Tensor:
    """Token ids of a phone string for :meth:`AcousticModel.infer`, silence at both ends."""
    inner = [p for p in phones.split() if p != WORD_SEP]
    missing = sorted({p for p in inner if p not in vocab.index})
    if not inner or missing:
        raise ValueError(f"cannot synthesize {phones!r}: " + (
            f"phones {missing} were never in training" if missing else "no phones"))  # fmt: skip
    return torch.tensor(vocab.encode(" ".join([SILENCE, *inner, SILENCE])))


def save_acoustic(model: AcousticModel, vocab: Vocabulary, folder: str | Path) -> Path:
    """Write ``folder/model.safetensors`` (weights) and ``folder/model.json`` (sizes, tokens)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    saved = {"config": model.config, "state": model.state_dict(), "tokens": vocab.tokens}
    write_state(tmp, saved, name="model")
    replace_dir(tmp, folder)
    return folder


def load_acoustic(folder: str | Path) -> tuple[AcousticModel, Vocabulary]:
    """The model and vocabulary :func:`save_acoustic` wrote (reading runs no code)."""
    try:
        saved = read_state(Path(folder), name="model")
        model = AcousticModel(**saved["config"])
        model.load_state_dict(saved["state"])
        vocab = Vocabulary(saved["tokens"])
    except (CheckpointError, KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{folder}: not an acoustic model phonex saved: {err}") from None
    return model.eval(), vocab
