"""Corpus integrity under bad conditions: two builds at once, crashes, changed files, signals."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phonex.cli import main
from phonex.config import DataConfig
from phonex.corpus import read_alignment, read_manifest
from phonex.data import SpeechDataset
from phonex.integrity import IntegrityError, audio_problem, corpus_lock, verify_manifest
from phonex.phonemes import Vocabulary
from phonex.synth import build_corpus

TWO_NAMES = DataConfig(size="quick", max_names=2, augmentations_per_clip=0)


def _snapshot(manifest: Path) -> dict[str, tuple]:
    """id -> (checksum, duration, phone times) of every clip, from the files on disk."""
    out = {}
    for row in read_manifest(manifest):
        phones = read_alignment(row.alignment)["phones"] if row.alignment else []
        out[row.id] = (row.checksum, row.duration, [(p.label, p.start, p.end) for p in phones])
    return out


def test_a_second_build_into_a_locked_folder_fails_at_once_naming_folder_and_holder(
    tmp_path, capsys
):
    code = "import sys\nfrom phonex.integrity import corpus_lock\nwith corpus_lock(sys.argv[1]):\n"
    code += "    print('locked', flush=True)\n    sys.stdin.read()\n"
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["synth", "--out", str(tmp_path), "--workers", "1", "data.max_names=2"]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path) in err and f"pid {holder.pid}" in err
        assert not (tmp_path / "audio").exists()  # refused before writing anything
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    with corpus_lock(tmp_path):  # the kernel released the holder's lock when it ended
        pass


def test_a_truncated_clip_is_named_by_verify_and_regenerated_on_rerun(tmp_path):
    manifest = build_corpus(tmp_path, TWO_NAMES)
    before = _snapshot(manifest)
    clip = Path(read_manifest(manifest)[3].audio)
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # as a crash mid-write
    assert audio_problem(clip).startswith("truncated")
    with pytest.raises(IntegrityError, match=f"{clip}: truncated"):
        verify_manifest(manifest)
    assert _snapshot(build_corpus(tmp_path, TWO_NAMES)) == before  # the same bytes again
    verify_manifest(manifest)


def test_a_changed_clip_is_named_by_verify_and_by_the_training_data_and_rewritten(
    tmp_path, capsys
):
    manifest = build_corpus(tmp_path, TWO_NAMES)
    rows = read_manifest(manifest)
    clip = Path(rows[5].audio)
    data = bytearray(clip.read_bytes())
    data[-200:] = bytes(200)  # same size, still a whole WAV: as another build's clip
    clip.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"{clip}: checksum [0-9a-f]+ but the manifest"):
        verify_manifest(manifest)
    assert main(["verify", str(manifest)]) == 2
    assert str(clip) in capsys.readouterr().err
    vocab = Vocabulary.build(r.phones for r in rows)
    with pytest.raises(IntegrityError, match=str(clip)):
        SpeechDataset(rows, vocab)
    build_corpus(tmp_path, TWO_NAMES)
    assert main(["verify", str(manifest)]) == 0
    assert [r.checksum for r in read_manifest(manifest)] == [r.checksum for r in rows]


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (workers and their espeak-ng helpers)."""
    try:
        import psutil
    except ImportError:
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, todo = set(), [pid]
        while todo:
            kids = {p for p, parent in parents.items() if parent == todo.pop()}
            todo += kids - found
            found |= kids
        return found
    return {p.pid for p in psutil.Process(pid).children(recursive=True)}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped running


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_workers_leaves_whole_files_and_a_rerun_completes(tmp_path, signum):
    command = [sys.executable, "-m", "phonex.cli", "synth", "--out", str(tmp_path),
               "--workers", "2", "data.max_names=4", "data.augmentations_per_clip=1"]  # fmt: skip
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children: set[int] = set()
    while run.poll() is None and not list(tmp_path.glob("audio/*/*.wav")):
        children |= _children(run.pid)
        time.sleep(0.02)
    children |= _children(run.pid)
    assert run.poll() is None, "the build ended before the first clip appeared"
    assert len(children) >= 2  # the pool's workers at least
    run.send_signal(signum)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 128 + signum
    lines = [line for line in err.splitlines() if line.startswith("phonex")]
    assert lines == [lines[0]] and signal.Signals(signum).name in lines[0]
    assert "Traceback" not in err
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if _alive(p)], "processes of the build outlived it"
    assert all(audio_problem(p) == "" for p in tmp_path.glob("audio/*/*.wav"))
    assert main(["synth", "--out", str(tmp_path), "--workers", "2", "data.max_names=4",
                 "data.augmentations_per_clip=1"]) == 0  # fmt: skip
    assert len(verify_manifest(tmp_path / "manifest.jsonl")) == 72
    assert not list(tmp_path.rglob("*.tmp"))  # killed writers' temporaries were removed


def test_the_corpus_is_the_same_for_any_worker_count_and_after_a_resume(tmp_path):
    cfg = DataConfig(size="quick", max_names=2, augmentations_per_clip=1)
    one = _snapshot(build_corpus(tmp_path / "one", cfg, workers=1))
    two = build_corpus(tmp_path / "two", cfg, workers=2)
    assert _snapshot(two) == one
    for clip in sorted((tmp_path / "two" / "audio").rglob("*.wav"))[::3]:
        clip.unlink()  # as if the build had been stopped before writing these
    two.unlink()
    assert _snapshot(build_corpus(tmp_path / "two", cfg, workers=2)) == one
    assert _snapshot(build_corpus(tmp_path / "two", cfg, workers=1)) == one  # nothing to do


def test_wav_checks_name_truncated_foreign_and_missing_files(tmp_path):
    import numpy as np
    import soundfile as sf

    from phonex.corpus import utterance_from_audio, write_manifest

    whole = tmp_path / "whole.wav"
    sf.write(whole, np.zeros(1600, np.float32), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:-100])
    text = tmp_path / "text.wav"
    text.write_text("not audio")
    assert audio_problem(whole) == "" and audio_problem(tmp_path / "none.wav") == "missing"
    problem = audio_problem(cut)
    assert problem.startswith("truncated") and f"{whole.stat().st_size} bytes" in problem
    assert f"file has {cut.stat().st_size}" in problem
    assert audio_problem(text) == "not a RIFF/WAVE file"
    manifest = write_manifest([utterance_from_audio("a", whole, "a", "s")], tmp_path / "m.jsonl")
    whole.unlink()
    with pytest.raises(IntegrityError, match=f"{whole}: missing"):
        verify_manifest(manifest)
