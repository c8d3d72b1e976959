"""From a manifest to model batches: labels, length-grouped batches, padding.

The clips of a split are read once into memory (the synthetic corpora are small), normalised as
wav2vec2 expects (or left as they are for a model that scales its own features, Whisper), and
served in batches of similar length. Batch order is a pure function of
(seed, epoch), so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from phonex.audio import load_audio
from phonex.corpus import Utterance
from phonex.integrity import verify_rows
from phonex.phonemes import WORD_SEP, Vocabulary

IGNORE_INDEX = -100  # label padding that CTC loss skips


class DataError(ValueError):
    """Clips or transcripts that a model cannot be trained or evaluated on."""


def normalize_wave(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance: wav2vec2's input, as ``Wav2Vec2FeatureExtractor`` makes it."""
    return ((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)).astype(np.float32)


def char_tokens(text: str, vocab: Vocabulary) -> str:
    """Text to a space-separated character-token string: ``"Novo Log"`` -> ``"N O V O | L O G"``.

    Letters take the case the vocabulary uses (wav2vec2-base-960h is upper case).
    """
    upper = any(t.isupper() for t in vocab.tokens if len(t) == 1)
    text = text.upper() if upper else text.lower()
    return " ".join(WORD_SEP if c == " " else c for c in " ".join(text.split()))


def label_string(row: Utterance, units: str, vocab: Vocabulary) -> str:
    """The token string a row is trained on: its phones, or its text as characters."""
    if units == "phones":
        if not row.phones.strip():
            raise DataError(f"{row.audio}: no phones (run phonex.corpus.add_phones first)")
        return row.phones
    if units == "chars":
        return char_tokens(row.text, vocab)
    raise DataError(f"units={units!r}: expected 'phones' or 'chars'")


def check_vocabulary(rows: Sequence[Utterance], vocab: Vocabulary, units: str) -> None:
    """Raise one :class:`DataError` listing every label token outside ``vocab`` and where."""
    missing: dict[str, str] = {}
    for row in rows:
        for token in label_string(row, units, vocab).split():
            if token not in vocab.index:
                missing.setdefault(token, row.audio)
    if missing:
        listed = ", ".join(f"{t!r} (e.g. {where})" for t, where in sorted(missing.items()))
        raise DataError(
            f"{len(missing)} label token(s) not in the model vocabulary: {listed}. Map them to "
            "[UNK] with train.unknown=unk, or build the vocabulary from this corpus."
        )


@dataclass
class Example:
    id: str
    wave: np.ndarray  # [samples] float32; zero mean and unit variance unless not normalized
    labels: list[int]
    reference: str  # label tokens, for error rates


class SpeechDataset(torch.utils.data.Dataset):
    """One split in memory: waveforms as the model takes them, and encoded labels.

    Args:
        rows: manifest rows (one split).
        vocab: output tokens.
        units: ``"phones"`` or ``"chars"``.
        sample_rate: model rate; clips at another rate are resampled on load.
        max_seconds: longest clip accepted; longer ones raise (listing them) unless
            ``drop_long`` is set.
        unknown: ``"error"`` or ``"unk"`` for label tokens outside ``vocab``.
        normalize: zero mean and unit variance (wav2vec2's input; the model's
            ``feature_extractor.do_normalize``); ``False`` keeps the waveform as it is (Whisper).
        verify: compare each clip with its row's checksum before training or scoring on it.

    Raises:
        DataError: unknown label tokens, clips too long or rows without phones.
        IntegrityError: clips that differ from their manifest row, each one named.
    """

    def __init__(
        self,
        rows: Sequence[Utterance],
        vocab: Vocabulary,
        units: str = "phones",
        sample_rate: int = 16000,
        max_seconds: float = 20.0,
        drop_long: bool = False,
        unknown: str = "error",
        progress: bool = False,
        normalize: bool = True,
        verify: bool = True,
    ):
        if verify:
            # a clip rewritten after its manifest (a second build into the folder) need no
            # longer fit the duration and phone times the manifest and TextGrid give for it
            verify_rows(rows, "manifest rows", full=False)
        if unknown == "error":
            check_vocabulary(rows, vocab, units)
        too_long = [r for r in rows if r.duration > max_seconds]
        if too_long and not drop_long:
            listed = ", ".join(f"{r.audio} ({r.duration:.1f} s)" for r in too_long[:5])
            raise DataError(
                f"{len(too_long)} clip(s) longer than max_seconds={max_seconds}: {listed}. "
                "Raise train.max_seconds (memory grows with length) or set train.drop_long=true."
            )
        keep = [r for r in rows if r.duration <= max_seconds]
        self.examples = [
            self._example(row, vocab, units, sample_rate, unknown, normalize)
            for row in tqdm(keep, desc="loading clips", disable=not progress, leave=False)
        ]
        self.lengths = np.array([len(e.wave) for e in self.examples])

    @staticmethod
    def _example(row, vocab, units, sample_rate, unknown, normalize=True) -> Example:
        wave = load_audio(row.audio, sample_rate)
        if normalize:
            wave = normalize_wave(wave)
        reference = label_string(row, units, vocab)
        return Example(
            row.id, wave.astype(np.float32), vocab.encode(reference, unknown), reference
        )

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Example:
        return self.examples[i]


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group: int = 32
) -> list[list[int]]:
    """Shuffled batches of similar-length clips (less padding); the same for the same seed, epoch.

    Clips are shuffled, cut into groups of ``group`` batches, sorted by length inside a group,
    batched, and the batches shuffled again.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    span = batch_size * group
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[list[int]]:
    """Evaluation batches: longest first, no shuffling."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def collate(examples: Sequence[Example], attention_mask: bool = True) -> dict[str, torch.Tensor]:
    """Pad a batch: ``input_values`` [batch, samples], ``attention_mask``, ``labels`` (-100 pad).

    wav2vec2-base-style models (group-norm convs) are trained without an attention mask, as
    their model cards say; their padding is zeros.
    """
    longest = max(len(e.wave) for e in examples)
    longest_label = max(len(e.labels) for e in examples)
    batch = len(examples)
    values = torch.zeros(batch, longest)
    mask = torch.zeros(batch, longest, dtype=torch.long)
    labels = torch.full((batch, longest_label), IGNORE_INDEX, dtype=torch.long)
    for i, e in enumerate(examples):
        values[i, : len(e.wave)] = torch.from_numpy(e.wave)
        mask[i, : len(e.wave)] = 1
        labels[i, : len(e.labels)] = torch.tensor(e.labels)
    out = {"input_values": values, "labels": labels}
    if attention_mask:
        out["attention_mask"] = mask
    return out
