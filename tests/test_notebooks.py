"""Every numbered notebook runs top to bottom in quick mode (papermill), writing its figures."""

import pytest

from phonex.lexicon import load_drugs, pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.runner import notebook_paths, run_notebooks


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_runs_headless_in_quick_mode(path, tmp_path, tiny_corpus, tiny_whisper_config):
    figures = tmp_path / "figures"
    params = {"FIGURES_DIR": str(figures)}
    if path.name.startswith("01"):
        params.update(CORPUS_DIR=str(tmp_path / "corpus"), MAX_NAMES=4)
    if path.name.startswith("03"):  # a short run on 4 names, away from models/drugs-tiny
        params.update(CORPUS_DIR=str(tmp_path / "corpus"), RUN_DIR=str(tmp_path / "run"),
                      MAX_NAMES=4, MAX_STEPS=20, MAX_DEV_PER=10.0)  # fmt: skip
    if path.name.startswith(("04", "05", "07")):  # an untrained model that can spell every name
        names = [d.name for d in load_drugs()]
        spoken = [r.phones for r in tiny_corpus[1]]  # British voices say əʊ
        vocab = Vocabulary.build([*pronunciations(names).values(), *spoken])
        load_model("tiny-test", vocab).save(tmp_path / "model")
        params.update(MODEL=str(tmp_path / "model"))
    if path.name.startswith(("04", "05")):
        params.update(CORPUS_DIR=str(tiny_corpus[0].parent), MAX_CLIPS=8)
    if path.name.startswith("06"):
        load_model("tiny-test", Vocabulary.build(r.phones for r in tiny_corpus[1])).save(
            tmp_path / "model"
        )
        params.update(MODEL=str(tmp_path / "model"), CORPUS_DIR=str(tiny_corpus[0].parent),
                      TRAIN_CLIPS=12, TEST_CLIPS=6, MAX_ITER=10,
                      CACHE_DIR=str(tmp_path / "hidden-states"))  # fmt: skip
    if path.name.startswith("08"):  # a tiny Whisper folder instead of converting tiny.en
        from transformers import WhisperForConditionalGeneration

        names = [d.name for d in load_drugs()]
        spoken = [r.phones for r in tiny_corpus[1]]
        vocab = Vocabulary.build([*pronunciations(names).values(), *spoken])
        load_model("tiny-test", vocab).save(tmp_path / "model")
        WhisperForConditionalGeneration(tiny_whisper_config).save_pretrained(tmp_path / "whisper")
        params.update(MODEL_DIR=str(tmp_path / "model"), WHISPER=str(tmp_path / "whisper"),
                      CORPUS_DIR=str(tiny_corpus[0].parent), RUN_DIR=str(tmp_path / "run"),
                      CACHE_DIR=str(tmp_path / "hidden-states"), SHARED_DIR=str(tmp_path),
                      ENGINES_CORPUS_DIR=str(tiny_corpus[0].parent),  # espeak-ng only: none
                      TRAIN_STEPS=3, TRAIN_CLIPS=16, DEV_CLIPS=4, EVAL_CLIPS=6,
                      PROBE_CLIPS=8, MAX_ITER=5)  # fmt: skip
    if path.name.startswith("04"):
        params.update(SNRS=[10], PIPER_NAMES=2, FSDD_CLIPS=20)
    if path.name.startswith("07"):  # 2 names from every installed engine, no noise
        params.update(CORPUS_DIR=str(tmp_path / "engines"), VOCODED_DIR=str(tmp_path / "vocoded"),
                      RUNS_DIR=str(tmp_path / "runs"), MAX_NAMES=3, DESCRIBE_NAMES=2,
                      SNRS=[None], GRIFFIN_LIM_ITERATIONS=4, TRAIN_STEPS=3, ACOUSTIC_STEPS=3,
                      DRUG_CORPUS_DIR=str(tiny_corpus[0].parent))  # fmt: skip
    (executed,) = run_notebooks([path.name[:2]], quick=True, out_dir=tmp_path, parameters=params)
    assert executed.exists()
    written = sorted(p.name for p in figures.glob(f"{path.name[:2]}-*.png"))
    assert written, f"{path.name} saved no figure"
