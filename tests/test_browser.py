"""The inspector in a real JupyterLab, driven in Debian's chromium through Playwright.

JupyterLab runs from this interpreter on a free localhost port with a token, in the test's tmp
folder, on a notebook the test writes: a tiny random model, three espeak-ng clips with their
true phone times, and the inspector cell. Playwright's own browser downloads do not work on the
project's machines, so the system chromium is launched by path.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf
import torch

from phonex.corpus import utterance_from_audio, write_manifest
from phonex.intervals import write_textgrid
from phonex.lexicon import pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.tts import Voice, synthesize

TEXTS = ["Zyrtec", "Novolog insulin", "Lipitor"]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT_MS = 180_000  # the kernel imports torch and transformers on a busy 2-core machine
NOTEBOOK_CELLS = [
    (
        "from phonex.corpus import read_manifest\n"
        "from phonex.models import load_model\n"
        "from phonex.widgets import inspect\n"
        "loaded = load_model('model')\n"
        "rows = read_manifest('manifest.jsonl')"
    ),
    "inspect(loaded, rows)",
]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def browser_tools():
    """Playwright's sync API and the system chromium's path; skips when either is missing."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="no Playwright (pip install -e '.[dev]' installs it)"
    )
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    return sync_api, path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_project(folder: Path) -> Path:
    """The model, the clips with espeak-ng's true times, the manifest and the notebook."""
    torch.manual_seed(0)
    load_model("tiny-test", Vocabulary.build(pronunciations(TEXTS).values())).save(
        folder / "model"
    )
    phones, rows = pronunciations(TEXTS), []
    for i, text in enumerate(TEXTS):
        speech = synthesize(text, Voice("espeak", "en-us"))
        sf.write(folder / f"{i}.wav", speech.wave, speech.sample_rate)
        grid = write_textgrid(folder / f"{i}.TextGrid", {"phones": speech.phones,
                              "words": speech.words}, len(speech.wave) / speech.sample_rate)  # fmt: skip
        rows.append(utterance_from_audio(f"u{i}", folder / f"{i}.wav", text, "espeak:en-us",
                                         phones=phones[text], alignment=str(grid)))  # fmt: skip
    write_manifest(rows, folder / "manifest.jsonl")
    cells = [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
              "execution_count": None} for source in NOTEBOOK_CELLS]  # fmt: skip
    notebook = {
        "cells": cells,
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    }
    path = folder / "inspect.ipynb"
    path.write_text(json.dumps(notebook))
    return path


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on the tmp folder: ``(base url, token)``; stopped afterwards, with
    its kernels (its own process group), even when the test fails."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}  # fmt: skip
    # readonly extension manager: the default one asks PyPI
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={tmp_path}", "--LabApp.extension_manager=readonly",
               f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"]  # fmt: skip
    if os.geteuid() == 0:  # CI runs as root
        command.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 (closed below, after the server)
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(server, f"{base}/api/status?token={token}", tmp_path / "lab.log")
        yield base, token
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """End the server's process group (the server and the kernels it started)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:  # the group has already gone
            pass
        try:
            server.wait(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue


def _wait_for_server(server: subprocess.Popen, url: str, log: Path, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"JupyterLab did not answer {url} in {seconds} s:\n{log.read_text()[-3000:]}")


def _run_notebook(page, url: str, timeout_error: type[Exception]) -> None:
    """Open the notebook, wait until its kernel is idle, and run all cells from the menu; a run
    asked for before the kernel connected is dropped, so ask again until the first cell runs."""
    page.goto(url, timeout=WAIT_MS)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=WAIT_MS)
    status = page.locator(".jp-StatusBar-Widget", has_text="| Idle")
    status.first.wait_for(timeout=WAIT_MS)
    prompt = page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first
    for _ in range(10):
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function("el => /[*0-9]/.test(el.textContent)", arg=prompt.element_handle(),
                                   timeout=10_000)  # fmt: skip
            return
        except timeout_error:
            page.keyboard.press("Escape")  # close the menu if it is still open
    pytest.fail("the notebook's cells never started running")


def _plot_src(page) -> str:
    return page.locator(".phonex-plot img").first.get_attribute("src")


def _changed(page, read, before: str, what: str) -> str:
    """Wait until ``read(page)`` differs from ``before``; the new value."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        now = read(page)
        if now != before:
            return now
        page.wait_for_timeout(250)
    pytest.fail(f"the {what} did not change")


def _table_text(page) -> str:
    return page.locator(".phonex-phones").inner_text()


def _audio_src(page) -> str:
    sources = page.locator(".phonex-audio audio source")
    return sources.first.get_attribute("src") if sources.count() else ""


def test_inspector_renders_and_responds_in_jupyterlab(browser_tools, lab, tmp_path):
    sync_api, chromium = browser_tools
    _write_project(tmp_path)
    base, token = lab
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            _run_notebook(
                page, f"{base}/lab/tree/inspect.ipynb?token={token}", sync_api.TimeoutError
            )
            page.wait_for_selector(".phonex-plot img", timeout=WAIT_MS)
            page.wait_for_selector(".phonex-play-phone", timeout=WAIT_MS)
            _drive_the_inspector(page)
            page.screenshot(path=tmp_path / "inspector.png")
        except Exception:
            page.screenshot(path=tmp_path / "failure.png")  # what the page showed, to debug
            raise
        finally:
            browser.close()
    assert (tmp_path / "inspector.png").stat().st_size > 10_000


def _drive_the_inspector(page) -> None:
    plot, table = _plot_src(page), _table_text(page)
    assert "u0" in page.locator(".phonex-status").inner_text() and "onset error" in table
    utterance = page.locator(".widget-dropdown", has_text="utterance").locator("select")
    utterance.select_option(index=1)
    plot = _changed(page, _plot_src, plot, "plot after choosing utterance 1")
    page.locator(".phonex-phones", has_text="insulin").wait_for(timeout=WAIT_MS)
    assert _table_text(page) != table and "▶ Novolog" in _table_text(page)
    readout = page.locator(".widget-hslider", has_text="layer").locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0")
    page.keyboard.press("Enter")
    _changed(page, _plot_src, plot, "plot after choosing layer 0")
    assert readout.inner_text().strip() == "0"
    before = _audio_src(page)
    page.locator(".phonex-play-phone").nth(1).click()
    after = _changed(page, _audio_src, before, "player after clicking a phone")
    assert after.startswith("data:audio/wav;base64,") and len(after) < len(before)
