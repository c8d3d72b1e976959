"""The environments phonex runs in: conda's environment.yml and the venv's Jupyter kernel."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from phonex.config import PROJ_ROOT

# conda-forge names of PyPI packages where they differ
CONDA_NAMES = {"pytorch": "torch", "pysoundfile": "soundfile", "soxr-python": "soxr"}
# what environment.yml carries beyond pyproject.toml's dependencies, and why
CONDA_EXTRAS = {
    "python": "the interpreter, one version inside requires-python",
    "pip": "to install phonex itself (pip install -e . --no-deps)",
    "torchaudio": "conda-forge's build matches its CPU torch; on PyPI an extra (CUDA wheels)",
    "espeak-ng": "the C library; PyPI installs get the espeakng-loader copy instead",
    "pytest": "to run the tests; on PyPI in the dev extra",
}
KERNEL = "phonex"
KERNEL_INSTALL = (f"-m ipykernel install --sys-prefix --name {KERNEL} "
                  '--display-name "phonex (.venv)"')  # fmt: skip


def _pyproject() -> dict:
    return tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text())


def _conda_requirements() -> dict[str, SpecifierSet]:
    """environment.yml's packages (conda and pip sections) by PyPI name, with their versions."""
    env = yaml.safe_load((PROJ_ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        for entry in dep["pip"] if isinstance(dep, dict) else [dep]:
            # conda writes one "=" for an exact version, pip "=="
            name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", entry).groups()
            spec = re.sub(r"^=(?!=)", "==", spec)
            out[CONDA_NAMES.get(name.lower(), name.lower())] = SpecifierSet(spec)
    return out


def _pypi_requirements(requirements: list[str]) -> dict[str, SpecifierSet]:
    return {(r := Requirement(text)).name.lower(): r.specifier for text in requirements}


def test_environment_yml_agrees_with_pyproject_name_by_name_and_version_by_version():
    conda, project = _conda_requirements(), _pyproject()["project"]
    wanted = _pypi_requirements(project["dependencies"])
    extras = project["optional-dependencies"]
    assert {name: conda[name] for name in wanted if name in conda} == wanted
    assert set(conda) - set(wanted) == set(CONDA_EXTRAS), "document every extra package"
    assert conda["torchaudio"] == _pypi_requirements(extras["torchaudio"])["torchaudio"]
    assert conda["pytest"] == _pypi_requirements(extras["dev"])["pytest"]
    python = next(iter(conda["python"])).version
    assert python in SpecifierSet(project["requires-python"]), python


def _kernel_spec():
    """The venv's "phonex" kernel spec, registered as ``make lab`` registers it when absent
    (``--sys-prefix``: into this venv, so a fresh ``make test`` has it too)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        subprocess.run([sys.executable, *shlex.split(KERNEL_INSTALL)], check=True,
                       capture_output=True)  # fmt: skip
        return KernelSpecManager().get_kernel_spec(KERNEL)


def test_make_lab_registers_the_venv_kernel():
    recipe = (PROJ_ROOT / "Makefile").read_text().split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert f"$(BIN)/python {KERNEL_INSTALL}" in recipe
    assert recipe.index("ipykernel install") < recipe.index("jupyter lab notebooks/")
    spec = _kernel_spec()
    assert spec.display_name == "phonex (.venv)" and spec.language == "python"
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()


@pytest.mark.timeout(300)
def test_phonex_imports_inside_the_kernel():
    from jupyter_client.manager import start_new_kernel

    _kernel_spec()
    manager, client = start_new_kernel(kernel_name=KERNEL, startup_timeout=180)
    try:
        outputs = []
        reply = client.execute_interactive(
            "import phonex, sys; print(phonex.__file__); print(sys.prefix)",
            timeout=180,
            output_hook=lambda msg: outputs.append(msg["content"].get("text", "")),
        )
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    module, prefix = "".join(outputs).split()
    assert Path(module).resolve() == (PROJ_ROOT / "phonex" / "__init__.py").resolve()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()
