"""Aligning a corpus: folder, Kaldi and manifest layouts in, TextGrids out, resumable."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

import phonex.align
from phonex.align import WordSpan, align, to_tiers
from phonex.align_corpus import (
    PROGRESS_NAME,
    AlignOptions,
    align_corpus,
    corpus_items,
    textgrid_tiers,
)
from phonex.audio import load_audio
from phonex.cli import main
from phonex.corpus import CorpusError, utterance_from_audio, write_manifest
from phonex.intervals import read_alignment
from phonex.models import load_model
from phonex.tts import Voice, synthesize

TEXTS = {
    "anna/one": "Novolog insulin",
    "anna/two": "Zyrtec",
    "ben/three": "insulin Zyrtec",
    "ben/deep/four": "Novolog",
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """espeak-ng speaking each text, at two rates (the aligner resamples)."""
    folder = tmp_path_factory.mktemp("clips")
    out = {}
    for n, (uid, text) in enumerate(TEXTS.items()):
        speech = synthesize(text, Voice("espeak", "en-us"))
        wave = np.interp(np.arange(0, len(speech.wave), 0.5), np.arange(len(speech.wave)),
                         speech.wave) if n % 2 else speech.wave  # fmt: skip
        path = folder / f"{n}.wav"
        sf.write(path, wave, speech.sample_rate * (2 if n % 2 else 1))
        out[uid] = path
    return out


def make_folder(root, clips, ids=TEXTS):
    """An MFA-style corpus: ``speaker/utt.wav`` with ``speaker/utt.lab`` (or ``.txt``)."""
    for n, uid in enumerate(ids):
        audio = root / f"{uid}.wav"
        audio.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clips[uid], audio)
        audio.with_suffix(".lab" if n % 2 else ".txt").write_text(TEXTS[uid] + "\n")
    return root


def intervals(grid):
    tiers = read_alignment(grid)
    return {name: [(i.label, round(i.start, 6), round(i.end, 6)) for i in tiers[name]
                   if i.label] for name in ("words", "phones")}  # fmt: skip


def test_a_folder_gives_one_textgrid_per_clip_in_its_tree_as_clip_by_clip(
    model_dir, clips, tmp_path
):
    corpus, out = make_folder(tmp_path / "corpus", clips), tmp_path / "out"
    assert main(["align", "--model", str(model_dir), "--corpus", str(corpus), "--out", str(out),
                 "--batch-size", "3"]) == 0  # fmt: skip
    grids = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.TextGrid"))
    assert grids == sorted(f"{uid}.TextGrid" for uid in TEXTS)
    summary = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert [r["id"] for r in summary] == sorted(TEXTS)
    assert {r["status"] for r in summary} == {"ok"} and not (out / PROGRESS_NAME).exists()
    loaded = load_model(str(model_dir))
    for row in summary:
        wave = load_audio(row["audio"], loaded.sample_rate)
        words = align(loaded, wave, TEXTS[row["id"]])
        alone = {name: [(i.label, round(i.start, 6), round(i.end, 6)) for i in tier]
                 for name, tier in to_tiers(words).items()}  # fmt: skip
        assert intervals(out / row["textgrid"]) == alone
        scores = [p[3] for w in words for p in w.phones]
        assert row["confidence"] == pytest.approx(np.mean(scores), abs=1e-3)
        assert row["words"] == len(TEXTS[row["id"]].split())
        gops = [g for w in words for g in w.gop]  # each phone's, in a tier beside the phones
        grid = read_alignment(out / row["textgrid"])
        assert [float(i.label) for i in grid["confidence"]] == pytest.approx(gops, abs=0.006)
        assert [(i.start, i.end) for i in grid["confidence"]] == [
            (i.start, i.end) for i in grid["phones"]]  # fmt: skip
        assert row["lowest_gop"]["gop"] == pytest.approx(min(gops), abs=1e-3)


def test_kaldi_folder_and_manifest_give_the_folders_alignments(model_dir, clips, tmp_path):
    loaded = load_model(str(model_dir))
    corpus = make_folder(tmp_path / "corpus", clips)
    reference = align_corpus(loaded, corpus, tmp_path / "folder-out", progress=False)
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    ids = {uid: uid.replace("/", "-") for uid in TEXTS}
    (kaldi / "wav.scp").write_text("".join(f"{ids[u]} {corpus / u}.wav\n" for u in TEXTS))
    (kaldi / "text").write_text("".join(f"{ids[u]} {t}\n" for u, t in TEXTS.items()))
    rows = [utterance_from_audio(uid, corpus / f"{uid}.wav", text, "s", source="test")
            for uid, text in TEXTS.items()]  # fmt: skip
    manifest = write_manifest(rows, corpus / "manifest.jsonl")
    for source, name in ((kaldi, "kaldi-out"), (manifest, "manifest-out")):
        summary = align_corpus(loaded, source, tmp_path / name, batch_size=2, progress=False)
        assert [r["status"] for r in summary] == ["ok"] * len(TEXTS)
        by_id = {r["id"].replace("-", "/"): r for r in summary}
        for ref in reference:
            assert intervals(tmp_path / name / by_id[ref["id"]]["textgrid"]) == intervals(
                tmp_path / "folder-out" / ref["textgrid"]
            )
    assert (tmp_path / "manifest-out" / "anna" / "one.TextGrid").is_file()  # mirrors the tree


def test_bad_files_fail_by_name_and_the_rest_is_aligned(model_dir, clips, tmp_path, capsys):
    corpus, out = make_folder(tmp_path / "corpus", clips), tmp_path / "out"
    (corpus / "anna" / "one.txt").unlink()  # no transcript
    (corpus / "ben" / "broken.wav").write_bytes(b"not a wav file at all" * 40)
    (corpus / "ben" / "broken.lab").write_text("Zyrtec")
    shutil.copy(clips["anna/two"], corpus / "ben" / "strange.wav")
    (corpus / "ben" / "strange.txt").write_text("Zyrtec xylophone")  # a word it cannot spell
    status = main(["align", "--model", str(model_dir), "--corpus", str(corpus), "--out",
                   str(out)])  # fmt: skip
    assert status == 1
    rows = {r["id"]: r for r in map(json.loads, (out / "summary.jsonl").read_text().splitlines())}
    assert rows["anna/one"]["status"] == "failed" and "no transcript" in rows["anna/one"]["reason"]
    assert str(corpus / "anna" / "one.wav") in rows["anna/one"]["reason"]
    broken = rows["ben/broken"]
    assert broken["status"] == "failed" and str(corpus / "ben" / "broken.wav") in broken["reason"]
    strange = rows["ben/strange"]
    assert strange["status"] == "failed" and "xylophone" in strange["reason"]
    assert strange["confidence"] is None
    assert {
        u: rows[u]["status"] for u in ("anna/two", "ben/three", "ben/deep/four")
    } == dict.fromkeys(("anna/two", "ben/three", "ben/deep/four"), "ok")
    assert not (out / "ben" / "broken.TextGrid").exists()
    err = capsys.readouterr().err
    assert all(f"failed: {corpus / 'ben' / name}" in err for name in ("broken.wav", "strange.wav"))


def test_a_killed_run_resumes_without_redoing_the_done_part(model_dir, clips, tmp_path,
                                                            monkeypatch):  # fmt: skip
    corpus, out = make_folder(tmp_path / "corpus", clips), tmp_path / "out"
    real_align, calls = phonex.align.align, []

    def killed_on_the_third(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_align(*args, **kwargs)

    monkeypatch.setattr(phonex.align, "align", killed_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        align_corpus(str(model_dir), corpus, out, batch_size=1, progress=False)
    done = sorted(out.rglob("*.TextGrid"))
    assert len(done) == 2 and not (out / "summary.jsonl").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no half-written file
    mtimes = {p: p.stat().st_mtime_ns for p in done}
    calls.clear()

    def counted(*args, **kwargs):
        calls.append(args[2])
        return real_align(*args, **kwargs)

    monkeypatch.setattr(phonex.align, "align", counted)
    summary = align_corpus(str(model_dir), corpus, out, progress=False)
    assert sorted(calls) == sorted(TEXTS[r["id"]] for r in summary if r["status"] == "ok")
    assert len(calls) == len(TEXTS) - 2
    skipped = [r for r in summary if r["status"] == "skipped"]
    assert sorted(out / r["textgrid"] for r in skipped) == done
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    assert all(r["confidence"] is not None for r in skipped)  # kept from the killed run's log
    assert len(list(out.rglob("*.TextGrid"))) == len(TEXTS)
    calls.clear()
    again = align_corpus(str(model_dir), corpus, out, progress=False, options=AlignOptions())
    assert calls == [] and {r["status"] for r in again} == {"skipped"}


def test_a_corpus_that_is_not_there_or_has_no_audio_is_named(tmp_path):
    with pytest.raises(CorpusError, match="no such manifest or folder"):
        corpus_items(tmp_path / "absent")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CorpusError, match="no audio files"):
        corpus_items(tmp_path)


def test_textgrid_tiers_end_by_the_clip_where_the_last_frame_reaches_past_it():
    words = [WordSpan("take", 0.1, 0.5, [("t", 0.1, 0.2, 0.9), ("eɪ", 0.2, 0.5, 0.8)]),
             WordSpan("it", 0.6, 2.74, [("ɪ", 0.6, 1.0, 0.7), ("t", 1.0, 2.74, 0.6)])]  # fmt: skip
    tiers = textgrid_tiers(words, 2.7328)
    assert [(i.label, i.end) for i in tiers["words"]] == [("take", 0.5), ("it", 2.7328)]
    assert [i.end for i in tiers["phones"]] == [0.2, 0.5, 1.0, 2.7328]
    assert to_tiers(words)["phones"][-1].end == 2.74  # what the model's frames say
