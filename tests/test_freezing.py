"""The freezing comparison of notebook 03: its clips, its settings, and scores from the cache
that agree with scores from the waveforms."""

import pytest

from phonex import freezing
from phonex.config import PROJ_ROOT, Config
from phonex.corpus import Utterance
from phonex.english_phones import english_vocabulary
from phonex.models import load_model

RECIPE = PROJ_ROOT / "configs" / "phonex-en.yaml"


def _row(i: int, split: str, source: str, engine: str = "human") -> Utterance:
    return Utterance(id=f"{source}-{i}", audio=f"{i}.wav", text="a", phones="ə", speaker="s",
                     engine=engine, augmentation="none", split=split, duration=1.0,
                     sample_rate=16000, checksum="0", source=source)  # fmt: skip


def _rows(source: str, engine: str, counts: dict[str, int]) -> list[Utterance]:
    return [_row(i, split, source, engine) for split, n in counts.items()
            for i in range(n * len(split), n * len(split) + n)]  # fmt: skip


def test_splits_take_sentences_for_dev_and_keep_the_control_out_of_training():
    real = _rows("speechocean762", "human", {"train": 30, "dev": 10})
    real += _rows("fsdd", "human", {"train": 30, "dev": 10})
    drugs = _rows("phonex-synth", "espeak", {"train": 20, "dev": 5, "test": 9})
    sizes = {"real_train": 12, "drug_train": 4, "dev": 6, "control": 5}
    splits = freezing.comparison_splits(real, drugs, sizes, seed=1)
    assert len(splits.train) == 16 and len(splits.dev) == 6 and len(splits.control) == 5
    assert {r.source for r in splits.dev} == {"speechocean762"}
    assert {r.split for r in splits.train} == {"train"} and not splits.notes
    assert {r.split for r in splits.control} == {"test"}
    assert splits.train == freezing.comparison_splits(real, drugs, sizes, seed=1).train


def test_splits_without_real_speech_train_and_score_on_drug_names():
    drugs = _rows("phonex-synth", "espeak", {"train": 20, "dev": 5, "test": 9})
    sizes = {"real_train": 12, "drug_train": 4, "dev": 3, "control": 5}
    splits = freezing.comparison_splits([], drugs, sizes)
    assert len(splits.train) == 16  # the real speech's share goes to drug names
    assert {r.split for r in splits.dev} == {"dev"} and splits.notes
    everything = freezing.comparison_splits([], drugs)
    assert len(everything.train) == 20 and len(everything.control) == 9


def test_config_caches_every_choice_but_all():
    recipe = Config.load(RECIPE)
    short = freezing.freezing_config(recipe, "whisper-base", 2, 50, ["train.lr=0.002"])
    assert short.model.name == "whisper-base" and short.model.trainable_layers == 2
    assert short.model.feature_cache and short.train.max_steps == 50
    assert short.train.eval_every == 50 and short.train.lr == 0.002
    whole = freezing.freezing_config(recipe, "whisper-tiny.en", freezing.ALL)
    assert not whole.model.feature_cache and whole.model.trainable_layers == -1
    assert whole.train.max_steps == recipe.train.max_steps  # the recipe's schedule kept
    assert whole.train.eval_every == recipe.train.eval_every
    assert [freezing.choice_label(n) for n in (0, 1, -1)] == ["N=0 (head)", "N=1", "all"]


@pytest.mark.parametrize("trainable", [0, 1, 2])
def test_scores_from_the_cache_equal_scores_from_the_waveforms(trainable, tiny_corpus, tmp_path):
    loaded = load_model("whisper-tiny-test", english_vocabulary())
    cfg = Config.load(RECIPE)
    rows = [r for r in tiny_corpus[1] if r.split == "dev"][:6]
    data = freezing.speech_set(cfg, loaded, rows)
    cached = freezing.score(loaded, data, trainable, tmp_path, dtype="float32")
    whole = freezing.score(loaded, data, freezing.ALL, tmp_path)
    assert cached["hypotheses"] == whole["hypotheses"]
    assert cached["error"] == pytest.approx(whole["error"])
    assert cached["loss"] == pytest.approx(whole["loss"], rel=1e-4)
    assert len(list(tmp_path.rglob("*.npy"))) == len(rows)  # one cached clip each


def test_encoder_parts_add_up_to_the_model():
    model = load_model("whisper-tiny-test", english_vocabulary()).model
    parts = freezing.encoder_parts(model)
    assert sum(parts.values()) == sum(p.numel() for p in model.parameters())
    assert list(parts)[-1] == "CTC head" and "block 1" in parts
