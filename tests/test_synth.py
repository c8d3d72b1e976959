import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from phonex.audio import load_audio
from phonex.cli import main
from phonex.config import DataConfig
from phonex.corpus import check_disjoint, read_alignment, read_manifest, write_manifest
from phonex.synth import build_corpus, plan, render, select_names
from phonex.tts import get_engine, load_voice_grid

SMALL = DataConfig(size="quick", max_names=4, augmentations_per_clip=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return out, read_manifest(build_corpus(out, SMALL))


def test_corpus_has_every_name_voice_and_copy_with_disjoint_voice_splits(corpus):
    _, rows = corpus
    grid = load_voice_grid("quick")
    assert len(rows) == 4 * len(grid.voices) * 2
    assert {r.split for r in rows} == {"train", "dev", "test"}
    check_disjoint(rows, "speaker")
    assert {r.speaker for r in rows if r.split == "test"} == set(grid.test_speakers)
    assert sum(r.augmentation == "none" for r in rows) == len(rows) // 2
    for row in rows[:6]:
        wave = load_audio(row.audio, 16000)
        assert row.sample_rate == 16000 and abs(len(wave) / 16000 - row.duration) < 1e-3
        assert row.phones and row.alignment


def test_textgrid_phones_are_the_label_and_scale_with_speed(corpus):
    _, rows = corpus
    by_id = {r.id: r for r in rows}
    for row in rows:
        if row.augmentation == "none":
            continue
        clean = by_id[row.id.rsplit(".", 1)[0]]
        tiers = read_alignment(row.alignment)
        labels = [p.label for p in tiers["phones"]]
        assert labels == [p for p in row.phones.split() if p != "|"]
        assert row.phones == clean.phones
        # the reference times stretch with the clip (speed/tempo) and stay inside it
        ratio = row.duration / clean.duration
        clean_end = read_alignment(clean.alignment)["phones"][-1].end
        assert tiers["phones"][-1].end == pytest.approx(clean_end * ratio, rel=0.03, abs=0.01)
        assert tiers["phones"][-1].end <= row.duration + 1e-6


def test_rerun_after_interruption_resumes_and_keeps_finished_files(tmp_path):
    cfg = DataConfig(size="quick", max_names=2, augmentations_per_clip=1)
    first = read_manifest(build_corpus(tmp_path, cfg))
    kept, lost = sorted((tmp_path / "audio").rglob("*.wav"))[:2]
    mtime = kept.stat().st_mtime_ns
    lost.unlink()  # as if the run had been killed before writing this clip
    (tmp_path / "manifest.jsonl").unlink()
    second = read_manifest(build_corpus(tmp_path, cfg))
    assert kept.stat().st_mtime_ns == mtime  # finished clip not rewritten
    assert lost.exists()
    assert [(r.id, r.phones) for r in second] == [(r.id, r.phones) for r in first]
    # each clip is spoken by a fresh fork of espeak-ng: the lost one comes back byte for byte
    assert [r.checksum for r in second] == [r.checksum for r in first]


def test_augmentations_are_seeded_and_order_independent():
    grid = load_voice_grid("quick")
    names = select_names(5, seed=1)
    assert names == select_names(5, seed=1) and names != select_names(5, seed=2)
    a = {(j.text, j.voice.id): j.augmentations for j in plan(names, grid, 2, seed=0)}
    b = {(j.text, j.voice.id): j.augmentations for j in plan(names[::-1], grid, 2, seed=0)}
    assert a == b
    assert len({spec for specs in a.values() for spec in specs}) > 10


def test_render_writes_nothing_partial_for_an_unspeakable_voice(tmp_path):
    job = plan(["aspirin"], load_voice_grid("quick"), 1, seed=0)[0]
    bad = type(job)(job.text, type(job.voice)("espeak", "xx-none"), job.augmentations)
    with pytest.raises(ValueError, match="no voice 'xx-none'"):
        render(bad, tmp_path, 16000)
    assert not list(tmp_path.rglob("*.wav"))


def test_cli_synth_builds_a_corpus_and_reports_bad_overrides(tmp_path, capsys):
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path),
                "--workers",
                "2",
                "data.max_names=2",
                "data.augmentations_per_clip=0",
            ]
        )
        == 0
    )
    rows = read_manifest(tmp_path / "manifest.jsonl")
    assert len(rows) == 2 * len(load_voice_grid("quick").voices)
    assert main(["synth", "--out", str(tmp_path), "data.max_nmes=2"]) == 2
    assert "data.max_nmes" in capsys.readouterr().err


def test_phonex_synth_help_works_as_a_command():
    result = subprocess.run(
        [sys.executable, "-m", "phonex.cli", "synth", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "interrupted" in result.stdout


def test_a_corpus_of_an_unheard_engine_alone_is_all_test(tmp_path):
    if not get_engine("piper").available()[0]:
        pytest.skip("piper extra not installed")
    cfg = DataConfig(size="full", engines=["piper"], max_names=2, augmentations_per_clip=0)
    rows = read_manifest(build_corpus(tmp_path / "piper", cfg))
    assert len(rows) == 2 and {r.split for r in rows} == {"test"}
    assert {r.engine for r in rows} == {"piper"} and all(r.phones for r in rows)


def test_a_rerun_rewrites_a_copy_whose_spec_differs_from_the_old_manifest(tmp_path):
    cfg = DataConfig(size="quick", max_names=2, augmentations_per_clip=1)
    manifest = build_corpus(tmp_path, cfg)
    rows = read_manifest(manifest)
    changed, kept = [Path(r.audio) for r in rows if r.augmentation != "none"][:2]
    stale = [dataclasses.replace(r, augmentation="gain=3.0") if r.audio == str(changed) else r
             for r in rows]  # fmt: skip
    write_manifest(stale, manifest)  # as if an earlier build had used another seed
    times = {p: p.stat().st_mtime_ns for p in (changed, kept)}
    assert read_manifest(build_corpus(tmp_path, cfg)) == rows
    assert changed.stat().st_mtime_ns != times[changed] and kept.stat().st_mtime_ns == times[kept]
