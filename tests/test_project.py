"""The project's own files: dependencies agree, notebooks are committed clean and parameterised."""

import json
import re

import tomllib
import yaml

from phonex.config import PROJ_ROOT
from phonex.runner import notebook_paths

# conda-forge names of PyPI packages where they differ
CONDA_NAMES = {"pytorch": "torch", "pysoundfile": "soundfile", "soxr-python": "soxr"}
CONDA_ONLY = {"python", "pip", "espeak-ng", "torchaudio", "pytest"}  # system lib, extras, tools


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_carries_the_same_direct_dependencies_as_pyproject():
    pyproject = tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text())
    wanted = {_name(r) for r in pyproject["project"]["dependencies"]}
    env = yaml.safe_load((PROJ_ROOT / "environment.yml").read_text())
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_name(r) for r in dep["pip"]}
        else:
            conda.add(CONDA_NAMES.get(_name(dep), _name(dep)))
    have = (conda - CONDA_ONLY) | pip
    assert have == wanted, f"missing in environment.yml: {wanted - have}; extra: {have - wanted}"
    assert "torchaudio" in conda  # conda users get torchaudio (PyPI users: an extra)
    assert "torchaudio" in {
        _name(r) for r in pyproject["project"]["optional-dependencies"]["torchaudio"]
    }


def test_torch_is_pinned_by_the_constraints_file():
    pins = (PROJ_ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", pins, flags=re.MULTILINE)
    assert "constraints.txt" in (PROJ_ROOT / "Makefile").read_text()


def test_notebooks_are_committed_without_outputs_and_with_one_parameters_cell():
    paths = notebook_paths()
    assert [p.name[:2] for p in paths] == [f"{i:02d}" for i in range(1, len(paths) + 1)]
    for path in paths:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        assert "QUICK = True" in "".join(tagged[0]["source"]), path.name
        first = "".join(nb["cells"][0]["source"])
        assert first.startswith("# ") and "**Question:**" in first, path.name
