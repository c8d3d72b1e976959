import dataclasses

import numpy as np
import pytest
import torch

from phonex.data import (
    IGNORE_INDEX,
    DataError,
    SpeechDataset,
    char_tokens,
    collate,
    length_grouped_batches,
)  # fmt: skip
from phonex.phonemes import Vocabulary


def test_char_tokens_follow_the_vocabulary_case():
    upper = Vocabulary.from_index({"<pad>": 0, "<unk>": 1, "|": 2, "A": 3})
    lower = Vocabulary.build(["a"])
    assert char_tokens("Novo  Log", upper) == "N O V O | L O G"
    assert char_tokens("Novo Log", lower) == "n o v o | l o g"


def test_dataset_normalises_audio_and_lists_unknown_phones_with_their_files(tiny_corpus):
    _, rows = tiny_corpus
    train = [r for r in rows if r.split == "train"]
    vocab = Vocabulary.build(r.phones for r in train[:2])  # too few phones on purpose
    with pytest.raises(DataError, match=r"not in the model vocabulary: .*\(e\.g\. .*\.wav\)"):
        SpeechDataset(train, vocab)
    dataset = SpeechDataset(train, vocab, unknown="unk")
    assert len(dataset) == len(train)
    wave = dataset[0].wave
    assert abs(wave.mean()) < 1e-3 and abs(wave.std() - 1) < 1e-2
    assert any(vocab.index["[UNK]"] in e.labels for e in dataset.examples)


def test_clips_longer_than_the_limit_are_named_or_dropped_when_asked(tiny_corpus):
    _, rows = tiny_corpus
    vocab = Vocabulary.build(r.phones for r in rows)
    longest = max(rows, key=lambda r: r.duration)
    limit = longest.duration - 1e-3
    with pytest.raises(DataError, match=f"longer than max_seconds.*{longest.audio}"):
        SpeechDataset(rows, vocab, max_seconds=limit)
    kept = SpeechDataset(rows, vocab, max_seconds=limit, drop_long=True)
    assert len(kept) == sum(r.duration <= limit for r in rows)


def test_missing_phones_are_a_clear_error(tiny_corpus):
    _, rows = tiny_corpus
    vocab = Vocabulary.build(r.phones for r in rows)
    with pytest.raises(DataError, match="no phones"):
        SpeechDataset([dataclasses.replace(rows[0], phones="")], vocab)


def test_length_grouped_batches_cover_every_clip_once_and_repeat_per_epoch():
    lengths = np.random.default_rng(0).integers(1000, 20000, size=103)
    batches = length_grouped_batches(lengths, 8, seed=1, epoch=0, group=4)
    assert sorted(i for b in batches for i in b) == list(range(103))
    assert batches == length_grouped_batches(lengths, 8, seed=1, epoch=0, group=4)
    assert batches != length_grouped_batches(lengths, 8, seed=1, epoch=1, group=4)

    # grouping by length pads less than random batches
    def padding(bs):
        return sum(max(lengths[b]) * len(b) - lengths[b].sum() for b in bs)

    rng = np.random.default_rng(0)
    random_batches = [p.tolist() for p in np.array_split(rng.permutation(103), 13)]
    assert padding(batches) < 0.5 * padding(random_batches)


def test_collate_pads_audio_with_a_mask_and_labels_with_ignore_index(tiny_corpus):
    _, rows = tiny_corpus
    vocab = Vocabulary.build(r.phones for r in rows)
    examples = SpeechDataset(rows[:3], vocab).examples
    batch = collate(examples)
    lengths = [len(e.wave) for e in examples]
    assert batch["input_values"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    for i, e in enumerate(examples):
        assert batch["labels"][i, : len(e.labels)].tolist() == e.labels
        assert (batch["labels"][i, len(e.labels) :] == IGNORE_INDEX).all()
        assert torch.all(batch["input_values"][i, lengths[i] :] == 0)
    assert "attention_mask" not in collate(examples, attention_mask=False)
