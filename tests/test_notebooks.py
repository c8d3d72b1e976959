"""Every numbered notebook runs top to bottom in quick mode (papermill), writing its figures."""

import pytest

from phonex.runner import notebook_paths, run_notebooks


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_runs_headless_in_quick_mode(path, tmp_path):
    figures = tmp_path / "figures"
    params = {"FIGURES_DIR": str(figures)}
    if path.name.startswith("01"):
        params["CORPUS_DIR"] = str(tmp_path / "corpus")
    if path.name.startswith("03"):  # a short run on 4 names, away from models/drugs-tiny
        params.update(CORPUS_DIR=str(tmp_path / "corpus"), RUN_DIR=str(tmp_path / "run"),
                      MAX_NAMES=4, MAX_STEPS=20)  # fmt: skip
    (executed,) = run_notebooks([path.name[:2]], quick=True, out_dir=tmp_path, parameters=params)
    assert executed.exists()
    written = sorted(p.name for p in figures.glob(f"{path.name[:2]}-*.png"))
    assert written, f"{path.name} saved no figure"
