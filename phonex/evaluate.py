"""Scoring a CTC model on a split: dev loss and phone (or character) error rate."""

from __future__ import annotations

from pathlib import Path

import torch

from phonex.corpus import read_manifest
from phonex.data import DataError, SpeechDataset, collate, sorted_batches
from phonex.decode import greedy_decode
from phonex.metrics import error_rate
from phonex.models import LoadedModel, autocast, load_model


@torch.no_grad()
def evaluate(
    loaded: LoadedModel, dataset: SpeechDataset, batch_size: int = 16, precision: str = "no"
) -> dict:
    """Dev loss and token error rate (PER for phones, CER for characters) with greedy decoding.

    Returns:
        ``{"loss", "error", "error_sub", "error_del", "error_ins", "hypotheses"}``.

    Raises:
        ValueError: ``batch_size`` under 1 (no batch would ever be formed).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be at least 1")
    model = loaded.model
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    use_mask = loaded.feature_extractor.return_attention_mask
    losses, hyps, refs = [], {}, {}
    for idx in sorted_batches(dataset.lengths, batch_size):
        examples = [dataset[i] for i in idx]
        batch = {k: v.to(device) for k, v in collate(examples, use_mask).items()}
        with autocast(precision, device):
            out = model(**batch)
        losses.append(out.loss.float().item() * len(idx))
        frames = model._get_feat_extract_output_lengths(torch.tensor(dataset.lengths[idx]))
        for e, text in zip(
            examples, greedy_decode(out.logits.float().cpu(), loaded.vocab, frames)
        ):
            hyps[e.id], refs[e.id] = text, e.reference
    model.train(was_training)
    ids = [e.id for e in dataset.examples]
    rate = error_rate([refs[i] for i in ids], [hyps[i] for i in ids], loaded.units == "chars")
    return {
        "loss": sum(losses) / len(dataset),
        **rate.as_dict("error"),
        "hypotheses": [hyps[i] for i in ids],
    }


def evaluate_manifest(
    model: str | Path, manifest: str | Path, split: str = "test", batch_size: int = 16
) -> dict:
    """Error rate of a saved model on one split of a manifest (see :func:`evaluate`)."""
    loaded = load_model(str(model))
    rows = [r for r in read_manifest(manifest) if r.split == split]
    if not rows:
        raise DataError(f"{manifest}: no rows with split={split}")
    dataset = SpeechDataset(rows, loaded.vocab, loaded.units, loaded.sample_rate, unknown="unk",
                            normalize=loaded.feature_extractor.do_normalize)  # fmt: skip
    return {"split": split, "clips": len(dataset), **evaluate(loaded, dataset, batch_size)}
