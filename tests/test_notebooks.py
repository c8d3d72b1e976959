"""Every numbered notebook runs top to bottom in quick mode (papermill), writing its figures and
the numbers it prints; the notebooks that use optional engines, extras or shared data also run
as a newcomer's machine would (no flite, no festival, no piper, no ../shared/data): they say
what they skipped and still write their other figures."""

import os
import re
from pathlib import Path

import pytest

from phonex.english_phones import english_vocabulary
from phonex.lexicon import load_drugs, pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.roundtrip import usable_engines
from phonex.runner import notebook_paths, printed_text, run_notebooks
from phonex.tts import load_voice_grid

# flite's and festival's programs (flite, flite_time, festival, festival_client, text2wave...)
HIDDEN_PROGRAMS = ("flite", "festival", "text2wave")


def _parameters(number: str, tmp_path: Path, tiny_corpus, tiny_whisper_config) -> dict:
    """Papermill parameters that keep notebook ``number`` small and its outputs in tmp_path."""
    params = {"FIGURES_DIR": str(tmp_path / "figures")}
    corpus = str(tiny_corpus[0].parent)
    if number in ("04", "05", "07", "08"):  # an untrained model that can spell every name
        names = [d.name for d in load_drugs()]
        spoken = [r.phones for r in tiny_corpus[1]]  # British voices say əʊ
        vocab = Vocabulary.build([*pronunciations(names).values(), *spoken])
        load_model("tiny-test", vocab).save(tmp_path / "model")
    if number == "01":
        params.update(CORPUS_DIR=str(tmp_path / "corpus"), MAX_NAMES=4)
    if number == "03":  # a tiny Whisper CTC model from scratch, no real speech, 3 steps a run
        params.update(ENCODERS=["whisper-tiny-test"], CORPUS_DIR=corpus, STEPS=3, ALL_STEPS=2,
                      TRAIN_CLIPS=16, DEV_CLIPS=6, CONTROL_CLIPS=6, BASELINE_STEPS=0, SHIPPED="",
                      REAL_MANIFEST=str(tmp_path / "no-shared-data" / "manifest.jsonl"),
                      SHARED_DIR=str(tmp_path / "no-shared-data"),
                      RUNS_DIR=str(tmp_path / "runs"))  # fmt: skip
    if number == "04":
        params.update(MODEL=str(tmp_path / "model"), CORPUS_DIR=corpus, MAX_CLIPS=8, SNRS=[10],
                      PIPER_NAMES=2, PIPER_CORPUS_DIR=str(tmp_path / "piper"),
                      FSDD_CLIPS=20)  # fmt: skip
    if number == "05":  # the synthetic control only (TIMIT_DIR names a missing folder)
        params.update(MODEL=str(tmp_path / "model"), CORPUS_DIR=corpus, MAX_CLIPS=8,
                      TEXTGRID_DIR=str(tmp_path / "textgrids"), FRAME_STEPS=3,
                      TIMIT_DIR=str(tmp_path / "no-shared-data"))  # fmt: skip
    if number == "06":
        load_model("tiny-test", Vocabulary.build(r.phones for r in tiny_corpus[1])).save(
            tmp_path / "model"
        )
        params.update(MODEL=str(tmp_path / "model"), CORPUS_DIR=corpus,
                      TRAIN_CLIPS=12, TEST_CLIPS=6, MAX_ITER=10,
                      SHARED_DIR=str(tmp_path / "no-shared-data"),
                      CACHE_DIR=str(tmp_path / "hidden-states"))  # fmt: skip
    if number == "07":  # 3 names from every installed engine, no noise; a Whisper CTC model
        # (fine-tuned from the frozen-feature cache, as phonex-en is)
        load_model("whisper-tiny-test", vocab).save(tmp_path / "whisper-model")
        params.update(MODEL=str(tmp_path / "whisper-model"), CACHE_DIR=str(tmp_path / "features"),
                      CORPUS_DIR=str(tmp_path / "engines"),
                      VOCODED_DIR=str(tmp_path / "vocoded"), RUNS_DIR=str(tmp_path / "runs"),
                      MAX_NAMES=3, DESCRIBE_NAMES=2, SNRS=[None], GRIFFIN_LIM_ITERATIONS=4,
                      TRAIN_STEPS=3, ACOUSTIC_STEPS=3, DRUG_CORPUS_DIR=corpus)  # fmt: skip
    if number == "08":  # tiny Whisper folders instead of tiny.en and base; no shared data
        from transformers import WhisperForConditionalGeneration

        WhisperForConditionalGeneration(tiny_whisper_config).save_pretrained(tmp_path / "whisper")
        load_model("whisper-tiny-test", english_vocabulary()).save(tmp_path / "model")
        params.update(MODEL=str(tmp_path / "model"), ENCODERS=str(tmp_path / "whisper"),
                      CORPUS_DIR=corpus, CACHE_DIR=str(tmp_path / "hidden-states"),
                      SHARED_DIR=str(tmp_path / "no-shared-data"), MAX_ITER=5)  # fmt: skip
    return params


def _run(number: str, tmp_path: Path, params: dict) -> tuple[str, set[str]]:
    """Run notebook ``number``; what it printed, and the names of the figures it wrote."""
    (executed,) = run_notebooks([number], quick=True, out_dir=tmp_path, parameters=params)
    figures = Path(params["FIGURES_DIR"])
    return printed_text(executed), {p.name for p in figures.glob(f"{number}-*.png")}


def _number(pattern: str, printed: str) -> float:
    found = re.search(pattern, printed)
    assert found, f"the notebook did not print {pattern!r}; it printed:\n{printed}"
    return float(found.group(1))


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_runs_headless_in_quick_mode(path, tmp_path, tiny_corpus, tiny_whisper_config):
    number = path.name[:2]
    params = _parameters(number, tmp_path, tiny_corpus, tiny_whisper_config)
    printed, written = _run(number, tmp_path, params)
    assert written, f"{path.name} saved no figure"
    if number == "01":  # every name from every voice of the quick grid, each clean + augmented
        clips = _number(r"(\d+) clips of 4 names", printed)
        assert clips == 4 * len(load_voice_grid("quick").voices) * 2
    if number == "02":  # the noise is scaled to the clip's power: the SNR asked for is the SNR
        assert _number(r"measured SNR within ([\d.]+) dB", printed) < 0.1
    if number == "03":  # N blocks trained: more parameters as N grows, the cache for N >= 0
        assert "SKIPPING real speech" in printed
        trained = re.findall(
            r"whisper-tiny-test (N=\d|all)[^:]*: ([\d,]+) of ([\d,]+) parameters", printed
        )
        assert [t[0] for t in trained] == ["N=0", "N=1", "N=2", "all"]
        counts = [int(t[1].replace(",", "")) for t in trained]
        total = int(trained[0][2].replace(",", ""))
        assert counts[0] < counts[1] < counts[2] <= counts[3] <= total
        assert printed.count("cache ") >= 3 and "no cache (every block trains)" in printed
        assert {"03-freezing.png", "03-learning-curves.png"} <= written
    if number == "05":
        assert "TIMIT skipped" in printed and "05-boundary-errors.png" in written
    if number == "06":
        assert "06-layer-curves-synthetic.png" in written
    if number == "08":  # SHARED_DIR names a folder that does not exist
        assert "SKIPPING the TIMIT probes" in printed
        assert "SKIPPING the speechocean762 probes" in printed
        assert "08-window-parity.png" in written


@pytest.fixture
def newcomer_machine(tmp_path, monkeypatch):
    """PATH without flite and festival (a folder of links to every other program on PATH), for
    this process and the notebook kernels it starts, as on a machine where no root installed them.
    Yields a function that also hides Python packages (``import piper`` then fails)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for program in sorted(os.listdir(folder)):
            source, link = os.path.join(folder, program), bin_dir / program
            hidden = program.startswith(HIDDEN_PROGRAMS)
            if hidden or os.path.lexists(link) or not os.access(source, os.X_OK):
                continue
            link.symlink_to(source)
    monkeypatch.setenv("PATH", str(bin_dir))
    shadow = tmp_path / "hidden-packages"
    shadow.mkdir()

    def hide_packages(*names: str) -> None:
        for name in names:
            (shadow / f"{name}.py").write_text(f"raise ImportError('{name} hidden by the test')\n")
        paths = [str(shadow), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(dict.fromkeys(paths)))

    return hide_packages


def test_notebook_04_without_piper_or_shared_data(tmp_path, tiny_corpus, newcomer_machine):
    newcomer_machine("piper")
    params = _parameters("04", tmp_path, tiny_corpus, None)
    params.update(FSDD_DIR=str(tmp_path / "no-shared-data" / "fsdd"), MAX_CLIPS=4)
    printed, written = _run("04", tmp_path, params)
    assert "skipped the piper section: install the extra" in printed
    assert "skipped the FSDD section" in printed and "no-shared-data" in printed
    assert {"04-accuracy-vs-snr.png", "04-confidence.png", "04-baselines.png"} <= written
    assert not (tmp_path / "piper").exists()


def test_notebook_07_with_espeak_and_piper_only(tmp_path, tiny_corpus, newcomer_machine):
    newcomer_machine()
    params = _parameters("07", tmp_path, tiny_corpus, None)
    params.update(MAX_NAMES=2)
    printed, written = _run("07", tmp_path, params)
    for engine in ("flite", "festival"):
        assert re.search(rf"skipped {engine} \(absent\): {engine} is not installed", printed)
    engines, _ = usable_engines(["espeak", "piper", "flite", "festival"])
    assert engines in (["espeak"], ["espeak", "piper"])
    voices = [v for v in load_voice_grid("engines").voices if v.engine in engines]
    assert _number(r"(\d+) clips: 2 names", printed) == 2 * len(voices)
    assert "skipped 'espeak-ng + piper': no unheard engine left to test on" in printed or (
        engines == ["espeak"] and "skipped the unheard-engine experiment" in printed
    )
    expected = {"07-mels.png", "07-prosody.png", "07-round-trip.png", "07-acoustic-model.png"}
    assert expected <= written
    assert ("07-unheard-engines.png" in written) == ("piper" in engines)
