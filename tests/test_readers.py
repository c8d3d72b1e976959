"""Real-speech readers and training manifests: hand-made folders, then the shared data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from phonex.config import SHARED_DATA_DIR
from phonex.corpus import CorpusError, check_disjoint, read_manifest
from phonex.readers import read_speechbrain, read_transcribed_folder
from phonex.realspeech import (
    TRAINING_CORPORA,
    check_no_timit,
    corpus_rows,
    training_rows,
    write_training_manifest,
)


def _noise(path: Path, seconds: float = 0.3, rate: int = 16000, seed: int = 0) -> Path:
    """Seeded noise as a WAV file (different seeds give different bytes and checksums)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wave = np.random.default_rng(seed).normal(0, 0.05, int(seconds * rate)).astype(np.float32)
    sf.write(path, wave, rate)
    return path


def _sphinx_folder(root: Path) -> Path:
    """pocketsphinx's layout: a transcription file, a .txt transcript, timed .lab labels."""
    folder = root / "pocketsphinx-testdata"
    _noise(folder / "cards" / "001.wav", seed=1)
    _noise(folder / "cards" / "002.wav", seed=2)
    (folder / "cards" / "cards.transcription").write_text(
        "<s> ten of clubs  </s> (001)\n<s> five five </s> (002)\n"
    )
    _noise(folder / "books" / "b1.wav", seed=3)
    (folder / "books" / "b1.txt").write_text("he was not an ill disposed young man\n")
    (folder / "books" / "b1.lab").write_text("0.23\t0.23\tspeech\n6.76\t6.76\tsilence\n")
    _noise(folder / "books" / "b2.wav", seed=4)
    (folder / "books" / "b2.lab").write_text("0.1 0.5 speech\n")  # labels only: skipped
    _noise(folder / "untranscribed.wav", seed=5)
    return folder


def test_transcribed_folder_reads_sphinx_tables_and_text_and_skips_timed_labels(tmp_path):
    rows = {r.id: r for r in read_transcribed_folder(_sphinx_folder(tmp_path), "pocketsphinx")}
    assert sorted(rows) == ["001", "002", "b1"]
    assert rows["001"].text == "ten of clubs" and rows["002"].text == "five five"
    assert rows["b1"].text == "he was not an ill disposed young man"
    assert (rows["b1"].speaker, rows["001"].speaker, rows["b1"].source) == (
        "books", "cards", "pocketsphinx")  # fmt: skip


def test_transcribed_folder_reads_lab_beside_audio_and_drops_non_words(tmp_path):
    folder = tmp_path / "mfa-samples"
    _noise(folder / "wav" / "mfa_laughter.flac", seed=6)
    _noise(folder / "wav" / "no_transcript.wav", seed=7)
    (folder / "lab").mkdir()
    (folder / "lab" / "mfa_laughter.lab").write_text("[laughter] montreal <unk> aligner [cough]")
    (folder / "lab" / "orphan.lab").write_text("a transcript without audio")
    rows = read_transcribed_folder(folder, "mfa")
    assert [(r.id, r.text, r.speaker) for r in rows] == [("mfa_laughter", "montreal aligner",
                                                          "wav")]  # fmt: skip
    (folder / "cards.transcription").write_text("<s> no id here </s>\n")
    with pytest.raises(CorpusError, match=r"cards\.transcription: line 1"):
        read_transcribed_folder(folder, "mfa")


def _speechbrain_folder(root: Path) -> Path:
    folder = root / "speechbrain-samples"
    _noise(folder / "ASR" / "spk1_snt1.wav", seed=8)
    _noise(folder / "ASR" / "spk2_snt1.wav", seed=9)
    entry = {"wav": "{data_root}/spk1_snt1.wav", "wrd": "THE CHILD", "spk_id": "spk1"}
    other = {"wav": "{data_root}/spk2_snt1.wav", "wrd": "KEN PAIRS", "spk_id": "spk2"}
    (folder / "annotation").mkdir()
    (folder / "annotation" / "a.json").write_text(json.dumps({"spk1_snt1": entry}))
    both = {"spk1_snt1": entry, "spk2_snt1": other, "spk2_snt9": {"phn": "sil"}}
    (folder / "annotation" / "b.json").write_text(json.dumps(both))
    return folder


def test_speechbrain_reads_each_utterance_once(tmp_path):
    rows = read_speechbrain(_speechbrain_folder(tmp_path))
    assert [(r.id, r.text, r.speaker) for r in rows] == [
        ("spk1_snt1", "THE CHILD", "spk1"), ("spk2_snt1", "KEN PAIRS", "spk2")]  # fmt: skip
    (tmp_path / "speechbrain-samples" / "annotation" / "a.json").write_text("{oops")
    with pytest.raises(CorpusError, match=r"a\.json: malformed JSON"):
        read_speechbrain(tmp_path / "speechbrain-samples")


def _timit_folder(root: Path) -> Path:
    """A two-utterance TIMIT-style folder (one speaker) with .phn/.wrd/.txt."""
    speaker = root / "timit-sample-dev" / "dr1-fabc0"
    _noise(speaker / "sa1.wav", 0.5, seed=10)
    (speaker / "sa1.phn").write_text("0 1600 h#\n1600 4000 sh\n4000 6400 iy\n6400 8000 h#\n")
    (speaker / "sa1.wrd").write_text("1600 6400 she\n")
    (speaker / "sa1.txt").write_text("0 8000 She.\n")
    _noise(speaker / "sx2.wav", 0.5, seed=11)
    (speaker / "sx2.phn").write_text("0 1600 h#\n1600 2400 bcl\n2400 3200 b\n3200 8000 iy\n")
    (speaker / "sx2.wrd").write_text("1600 8000 bee\n")
    (speaker / "sx2.txt").write_text("0 8000 Bee.\n")
    return root / "timit-sample-dev"


def test_training_rows_report_absent_corpora_and_split_held_out_speakers(tmp_path):
    _sphinx_folder(tmp_path)
    _timit_folder(tmp_path)
    fsdd = tmp_path / "fsdd" / "recordings"
    for k, speaker in enumerate(("ann", "bob", "cat", "dan", "eve")):
        _noise(fsdd / f"{k}_{speaker}_0.wav", 0.2, 8000, seed=20 + k)
    rows, report = training_rows(tmp_path)
    assert report["pocketsphinx-testdata"] == "3 rows" and report["fsdd"] == "5 rows"
    assert report["ljspeech-32"].startswith("absent: ") and set(report) == set(TRAINING_CORPORA)
    assert all(r.phones for r in rows) and not any(r.source == "timit" for r in rows)
    splits = {r.speaker: r.split for r in rows if r.source == "fsdd"}
    assert sorted(splits.values()).count("train") == 3 and {"dev", "test"} < set(splits.values())
    check_disjoint(rows)
    (tmp_path / "fsdd" / "recordings" / "zero.wav").write_bytes(b"")
    rows, report = training_rows(tmp_path)  # a broken corpus is reported, the others kept
    assert report["fsdd"].startswith("error: ") and "zero.wav" in report["fsdd"]
    assert len(rows) == 3


def test_timit_is_refused_by_name_source_path_and_checksum(tmp_path):
    timit = _timit_folder(tmp_path)
    with pytest.raises(CorpusError, match="never trained on"):
        training_rows(tmp_path, corpora=["timit-sample-dev", "fsdd"])
    timit_rows = corpus_rows("timit-sample-dev", tmp_path)
    assert [r.phones for r in timit_rows] == ["h# sh iy h#", "h# bcl b iy"]
    with pytest.raises(CorpusError, match="source is TIMIT"):
        check_no_timit(timit_rows)
    # a renamed copy of a TIMIT recording, read as an ordinary transcribed corpus
    copy = tmp_path / "pocketsphinx-testdata" / "copied"
    copy.mkdir(parents=True)
    shutil.copy(timit / "dr1-fabc0" / "sa1.wav", copy / "x.wav")
    (copy / "x.txt").write_text("she")
    with pytest.raises(CorpusError, match=r"'x'.*audio is a TIMIT recording"):
        training_rows(tmp_path, corpora=["pocketsphinx-testdata"])
    check_no_timit(read_transcribed_folder(copy))  # without the TIMIT folder: not recognised


def test_training_manifest_round_trips(tmp_path):
    _sphinx_folder(tmp_path)
    path, report = write_training_manifest(tmp_path / "out" / "real.jsonl", tmp_path)
    rows = read_manifest(path)
    assert len(rows) == 3 and report["pocketsphinx-testdata"] == "3 rows"
    with pytest.raises(CorpusError, match="no real training speech"):
        write_training_manifest(tmp_path / "none.jsonl", tmp_path / "empty")
    with pytest.raises(CorpusError, match="unknown corpus"):
        corpus_rows("librispeech", tmp_path)


# --- the shared data (skipped when ../shared/data is absent) -----------------------------------


def _shared(name: str) -> Path:
    folder = SHARED_DATA_DIR / name
    if not folder.is_dir():
        pytest.skip(f"shared corpus not present: {folder}")
    return folder


def test_real_pocketsphinx_and_mfa_transcripts():
    sphinx = {r.id: r for r in read_transcribed_folder(_shared("pocketsphinx-testdata"))}
    assert len(sphinx) == 10 and sphinx["004"].text == "five five"
    assert sphinx["sense_and_sensibility_01_austen_64kb-0880"].text.startswith("he was not")
    mfa = {r.id: r for r in read_transcribed_folder(_shared("mfa-samples"))}
    assert mfa["mfa_laughter"].text == "montreal forced aligner"
    assert mfa["common_voice_en_22058266"].sample_rate == 48000
    assert "cold_corpus_24bit" not in mfa  # no transcript


def test_real_speechbrain_samples():
    rows = read_speechbrain(_shared("speechbrain-samples"))
    assert len(rows) == 10 and {r.speaker for r in rows} == {"spk1", "spk2"}


def test_real_training_rows_hold_no_timit():
    for name in (*TRAINING_CORPORA, "timit-sample-dev"):
        _shared(name)
    rows, report = training_rows(SHARED_DATA_DIR)
    assert not any(v.startswith(("absent", "error")) for v in report.values()), report
    assert {r.source for r in rows} == {"speechocean762", "ljspeech", "fsdd", "pocketsphinx",
                                        "mfa"}  # fmt: skip
    check_disjoint([r for r in rows if r.source == "fsdd"])
    assert len({r.speaker for r in rows if r.source == "fsdd" and r.split == "train"}) == 4
