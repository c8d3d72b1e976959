"""Run the numbered notebooks headless (papermill), and check that this machine can run them."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from phonex.config import DATA_DIR, PROJ_ROOT, SHARED_DATA_DIR

NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in reading order, or those whose name starts with one of ``names``."""
    paths = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in names)]
        if not paths:
            raise FileNotFoundError(f"no notebook in {NOTEBOOKS_DIR} starts with {names}")
    return paths


def run_notebooks(
    names: list[str] | None = None,
    quick: bool = True,
    out_dir: str | Path | None = None,
    parameters: dict | None = None,
    cell_timeout: int = 3600,
) -> list[Path]:
    """Execute notebooks top to bottom with papermill; executed copies go to ``out_dir``.

    Args:
        names: notebook name prefixes such as ``["01", "02"]``; None runs all.
        quick: the notebooks' ``QUICK`` parameter (small data, CPU, minutes).
        out_dir: where executed copies go (default ``data/executed``; never the sources).
        parameters: further papermill parameters for every notebook.
        cell_timeout: seconds any one cell may take (a full-mode training cell takes hours).

    Returns:
        Paths of the executed notebooks. Each notebook's wall time is printed as it finishes,
        and all of them (with the total) are written to ``out_dir/timings.json``.
    """
    import papermill

    out_dir = Path(out_dir) if out_dir else DATA_DIR / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    done, seconds = [], {}
    for path in notebook_paths(names):
        target = out_dir / path.name
        print(f"running {path.name} (quick={quick}) -> {target}", flush=True)
        start = time.perf_counter()
        papermill.execute_notebook(
            str(path),
            str(target),
            parameters={"QUICK": quick, **(parameters or {})},
            cwd=str(NOTEBOOKS_DIR),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=cell_timeout,
        )
        seconds[path.name] = round(time.perf_counter() - start, 1)
        print(f"done {path.name} in {seconds[path.name]:.0f} s", flush=True)
        done.append(target)
    total = sum(seconds.values())
    print(f"{len(done)} notebook(s) in {total:.0f} s ({total / 60:.1f} min)", flush=True)
    record = {"quick": quick, "seconds": seconds, "total_s": round(total, 1),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
    (out_dir / "timings.json").write_text(json.dumps(record, indent=1) + "\n")
    return done


def printed_text(executed: str | Path) -> str:
    """Everything an executed notebook's cells printed (stdout), in order: the lines a reader
    sees, for checks on what a run computed and said it skipped."""
    cells = json.loads(Path(executed).read_text())["cells"]
    return "".join(
        "".join(out.get("text", ""))
        for cell in cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    )


def doctor() -> list[str]:
    """One line per dependency that matters here: versions, espeak-ng, torchaudio, devices."""
    from phonex.espeak import find_espeak
    from phonex.tts import ENGINES

    lines = [f"python {platform.python_version()} on {platform.machine()}"]
    for package in ("torch", "transformers", "phonemizer", "librosa", "numpy"):
        lines.append(f"{package} {importlib.metadata.version(package)}")
    found = find_espeak()
    lines.append(f"espeak-ng: {found.library} ({found.source})")
    lines.append(f"torchaudio: {torchaudio_status()}")
    import torch

    lines.append(f"cuda: {torch.cuda.is_available()}; cpu threads: {torch.get_num_threads()}")
    for name, engine in ENGINES.items():
        ok, why = engine.available()
        lines.append(f"tts {name}: {'available' if ok else 'unavailable: ' + why}")
    shared = "present" if SHARED_DATA_DIR.is_dir() else "absent (optional)"
    lines.append(f"shared data (../shared/data): {shared}")
    return lines


def torchaudio_status() -> str:
    """Whether torchaudio imports (its PyPI wheels are CUDA builds that fail on a CPU torch)."""
    try:
        import torchaudio
    except Exception as err:  # noqa: BLE001 - any import failure means "not usable"
        return f"not usable ({type(err).__name__}); phonex works without it"
    return f"{torchaudio.__version__}"
