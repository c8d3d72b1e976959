"""Per-phone confidence (GOP): known answers on hand-made emissions, in JSON and TextGrids."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from phonex.align import WILDCARD, TokenSpan, WordSpan, align
from phonex.align_corpus import textgrid_tiers
from phonex.cli import main
from phonex.confidence import TIER, phone_classes, span_gop, token_gops, with_gops
from phonex.intervals import read_alignment, write_textgrid
from phonex.lexicon import pronunciations
from phonex.models import load_model

TOKENS = ["[PAD]", "[UNK]", "|", "a", "b", "c"]


def frames(*rows):
    """``[frames, 6]`` log posteriors from rows of probabilities over :data:`TOKENS`."""
    probs = torch.tensor(rows, dtype=torch.float64)
    return torch.log(probs / probs.sum(1, keepdim=True)).float()


def test_only_phones_compete_not_blank_unknown_separator_or_the_wildcard():
    mask = phone_classes(["[PAD]", "[UNK]", "|", "a", "<s>", "b"], classes=7)
    assert mask.tolist() == [False, False, False, True, False, True, False]


def test_a_phone_its_frames_favour_scores_above_one_they_do_not():
    log_probs = frames(
        [0.02, 0, 0, 0.96, 0.01, 0.01],  # a, clear
        [0.02, 0, 0, 0.96, 0.01, 0.01],
        [0.02, 0, 0, 0.30, 0.60, 0.08],  # b favoured, a aligned here
        [0.02, 0, 0, 0.30, 0.60, 0.08],
    )
    competitors = phone_classes(TOKENS)
    clear = span_gop(log_probs, TokenSpan("a", 0, 2, 1.0), 3, competitors)
    other = span_gop(log_probs, TokenSpan("a", 2, 4, 1.0), 3, competitors)
    assert clear == pytest.approx(math.log(0.96 / 0.01), rel=1e-4)  # against b (or c)
    assert other == pytest.approx(math.log(0.30 / 0.60), rel=1e-4)  # b beats it: negative
    assert clear > 0 > other


def test_the_blank_is_no_competitor():
    # the same phone ratios, the blank taking most of the frame in one: the same score
    mostly_blank = frames([0.9, 0, 0, 0.08, 0.01, 0.01])
    no_blank = frames([0.0, 0, 0, 0.80, 0.10, 0.10])
    competitors = phone_classes(TOKENS)
    span = TokenSpan("a", 0, 1, 1.0)
    assert span_gop(mostly_blank, span, 3, competitors) == pytest.approx(
        span_gop(no_blank, span, 3, competitors), rel=1e-5
    )


def test_separators_and_wildcards_have_no_score_and_words_get_their_phones_scores():
    log_probs = torch.cat([frames([0.1, 0, 0, 0.8, 0.05, 0.05], [0.1, 0, 0.8, 0.05, 0.05, 0]),
                           torch.zeros(2, 1)], dim=1)  # fmt: skip
    log_probs = torch.cat([log_probs, log_probs[:1]])
    spans = [TokenSpan("a", 0, 1, 0.8), TokenSpan("|", 1, 2, 0.8), TokenSpan(WILDCARD, 2, 3, 1)]
    gops = token_gops(log_probs, spans, [3, 2, 6], TOKENS)
    assert gops[0] == pytest.approx(math.log(16)) and gops[1:] == [None, None]
    words = [WordSpan("A", 0.0, 0.02, [("a", 0.0, 0.02, 0.8)]),
             WordSpan("X", 0.04, 0.06, [(WILDCARD, 0.04, 0.06, 1.0)])]  # fmt: skip
    scored = with_gops(words, spans, gops)
    assert scored[0].gop == (pytest.approx(math.log(16)),) and scored[1].gop == (None,)
    assert scored[1].to_json()["phones"][0]["gop"] is None


def test_align_scores_a_mispronounced_phone_below_the_others(model_dir, monkeypatch, tmp_path):
    loaded = load_model(str(model_dir))
    vocab = loaded.vocab
    phones = pronunciations(["Zyrtec"])["Zyrtec"].split()
    log_probs = torch.full((len(phones) * 2 + 2, len(vocab)), math.log(0.02 / len(vocab)))
    log_probs[:, vocab.blank_id] = math.log(0.5)
    swap = 1  # this phone's frame holds another phone the model knows, clearly
    other = next(t for t in vocab.tokens[3:] if t not in phones)
    for k, phone in enumerate(phones):
        log_probs[2 * k + 1, vocab.index[other if k == swap else phone]] = math.log(0.45)
        if k == swap:
            log_probs[2 * k + 1, vocab.index[phone]] = math.log(0.03)
    monkeypatch.setattr("phonex.models.emissions", lambda loaded, waves, **_: [log_probs])
    (word,) = align(loaded, np.full(16000, 0.1, np.float32), "Zyrtec")
    assert len(word.gop) == len(phones)
    assert word.gop[swap] < 0 < min(g for k, g in enumerate(word.gop) if k != swap)
    tiers = textgrid_tiers([word], 1.0)
    assert [(i.start, i.end) for i in tiers[TIER]] == [(i.start, i.end) for i in tiers["phones"]]
    grid = write_textgrid(tmp_path / "z.TextGrid", tiers, 1.0)
    labels = [i.label for i in read_alignment(grid)[TIER]]
    assert [float(x) for x in labels] == pytest.approx(word.gop, abs=0.006)


def test_the_command_line_gives_each_phone_a_score_in_json_and_textgrid(model_dir, tmp_path,
                                                                       capsys):  # fmt: skip
    clip, grid = tmp_path / "clip.wav", tmp_path / "clip.TextGrid"
    sf.write(clip, np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    assert main(["align", "--model", str(model_dir), "--audio", str(clip), "--text", "Zyrtec",
                 "--json", "--textgrid", str(grid)]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    gops = [p["gop"] for w in out["words"] for p in w["phones"]]
    assert gops and all(isinstance(g, float) for g in gops)
    tiers = read_alignment(grid)
    assert set(tiers) == {"words", "phones", TIER}
    assert [float(i.label) for i in tiers[TIER]] == pytest.approx(gops, abs=0.006)
