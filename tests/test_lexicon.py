"""The packaged drug lexicon and LASA pairs, user lexicon files, and cached pronunciations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from phonex import lexicon, phonemes
from phonex.lexicon import (
    LexiconError,
    load_drugs,
    load_lasa_pairs,
    pronunciations,
    read_lexicon_file,
)


@pytest.fixture(scope="module")
def drugs() -> list[lexicon.DrugName]:
    return load_drugs()


@pytest.fixture(scope="module")
def prons(drugs, tmp_path_factory) -> dict[str, str]:
    """Pronunciations of the whole packaged lexicon (computed once, in a private cache)."""
    return pronunciations([d.name for d in drugs], cache_dir=tmp_path_factory.mktemp("cache"))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- packaged data ----------------------------------------------------------------------------


def test_lexicon_size_and_mix(drugs):
    kinds = [d.kind for d in drugs]
    assert len(drugs) >= 300
    assert {"generic", "brand"} == set(kinds)
    # roughly 60% generic, 40% brand
    assert 0.5 <= kinds.count("generic") / len(drugs) <= 0.7


def test_lexicon_names_are_unique_and_pronounceable_text(drugs):
    folded = [d.name.casefold() for d in drugs]
    assert len(set(folded)) == len(folded)
    for d in drugs:
        assert re.fullmatch(r"[A-Za-z]+(?:[ -][A-Za-z]+)*", d.name), d.name
        if d.kind == "generic":
            assert d.name == d.name.lower() == d.generic
        else:
            assert d.name[0].isupper(), d.name


def test_every_brand_points_to_a_listed_generic(drugs):
    generics = {d.name for d in drugs if d.kind == "generic"}
    orphans = [d for d in drugs if d.kind == "brand" and d.generic not in generics]
    assert not orphans


def test_lasa_pairs_are_in_the_lexicon(drugs):
    pairs = load_lasa_pairs()
    names = {d.name for d in drugs}
    assert len(pairs) >= 30
    assert all(a in names and b in names for a, b in pairs)
    assert ("hydroxyzine", "hydralazine") in pairs


def test_every_name_has_a_pronunciation(drugs, prons):
    assert list(prons) == [d.name for d in drugs]
    for name, pron in prons.items():
        words = phonemes.from_string(pron)
        assert words and all(words), name
        assert pron == phonemes.to_string(words)
    # a multi-word name keeps its word boundary
    assert len(phonemes.from_string(prons["insulin glargine"])) == 2


def test_lasa_pairs_mostly_sound_different_to_espeak(prons):
    pairs = load_lasa_pairs()
    different = [a for a, b in pairs if prons[a] != prons[b]]
    assert len(different) >= 0.9 * len(pairs)


# --- CSV validation ---------------------------------------------------------------------------


def test_duplicate_name_names_both_lines(tmp_path):
    path = write(
        tmp_path / "d.csv",
        "name,kind,generic\nXanax,brand,alprazolam\nalprazolam,generic,alprazolam\n"
        "xanax,brand,alprazolam\n",
    )
    with pytest.raises(LexiconError, match=r"d\.csv:4: duplicate name 'xanax' \(lines 2 and 4\)"):
        load_drugs(path)


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("Xanax,brand,alprazolam\nZantac,trade,ranitidine\n", r"d\.csv:3: kind 'trade'"),
        (" ,generic, \n", r"d\.csv:2: empty name"),
        ("Xanax,brand\n", r"d\.csv:2: expected 3 fields"),
        ("xanax,generic,alprazolam\n", r"d\.csv:2: generic 'xanax' must list itself"),
    ],
)
def test_bad_rows_raise_with_the_line_number(tmp_path, body, pattern):
    path = write(tmp_path / "d.csv", "name,kind,generic\n" + body)
    with pytest.raises(LexiconError, match=pattern):
        load_drugs(path)


def test_bad_header_is_reported(tmp_path):
    path = write(tmp_path / "d.csv", "drug,type,generic\nXanax,brand,alprazolam\n")
    with pytest.raises(LexiconError, match=r"d\.csv: header"):
        load_drugs(path)


def test_lasa_pair_with_unknown_name_is_reported(tmp_path):
    path = write(
        tmp_path / "p.csv",
        "name_a,name_b,kind,source\nXanax,Zantac,sound-alike,ISMP\nXanax,Xanadu,both,ISMP\n",
    )
    with pytest.raises(LexiconError, match=r"p\.csv:3: 'Xanadu' is not in the drug lexicon"):
        load_lasa_pairs(path)


def test_lasa_pair_bad_kind_and_repeat(tmp_path):
    header = "name_a,name_b,kind,source\n"
    bad_kind = write(tmp_path / "k.csv", header + "Xanax,Zantac,rhymes,ISMP\n")
    with pytest.raises(LexiconError, match=r"k\.csv:2: kind"):
        load_lasa_pairs(bad_kind)
    repeat = write(tmp_path / "r.csv", header + "Xanax,Zantac,both,ISMP\nzantac,XANAX,both,x\n")
    with pytest.raises(LexiconError, match=r"r\.csv:3: pair"):
        load_lasa_pairs(repeat)


# --- user lexicon files -----------------------------------------------------------------------


def test_read_lexicon_file_comments_blanks_duplicates(tmp_path):
    path = write(
        tmp_path / "words.txt",
        "# my drugs\n\n  Xanax  \nclonidine # blood pressure\n\t\ninsulin glargine\nXANAX\n"
        "   # indented comment\nclonidine\n",
    )
    with pytest.warns(UserWarning, match=r"words\.txt.*'XANAX'.*'clonidine'"):
        entries = read_lexicon_file(path)
    assert entries == ["Xanax", "clonidine", "insulin glargine"]


def test_read_lexicon_file_without_duplicates_does_not_warn(tmp_path, recwarn):
    path = write(tmp_path / "words.txt", "Xanax\nZantac\n")
    assert read_lexicon_file(path) == ["Xanax", "Zantac"]
    assert not recwarn.list


def test_empty_lexicon_file_names_the_file(tmp_path):
    path = write(tmp_path / "empty_lexicon.txt", "# nothing here\n\n   \n")
    with pytest.raises(LexiconError, match=r"empty_lexicon\.txt"):
        read_lexicon_file(path)


# --- pronunciations and their cache -----------------------------------------------------------


def counting_phonemize(monkeypatch) -> list[list[str]]:
    """Replace phonex.phonemes.phonemize by a wrapper that records each call's texts."""
    calls: list[list[str]] = []
    real = phonemes.phonemize

    def wrapper(texts, language="en-us", stress=False):
        calls.append(list(texts))
        return real(texts, language, stress)

    monkeypatch.setattr(phonemes, "phonemize", wrapper)
    return calls


def test_pronunciations_are_batched_and_cached(tmp_path, monkeypatch):
    calls = counting_phonemize(monkeypatch)
    names = ["hydroxyzine", "hydralazine", "insulin glargine"]
    first = pronunciations(names, cache_dir=tmp_path)
    assert calls == [names]  # one batched call
    assert first["hydroxyzine"] != first["hydralazine"]
    assert " | " in first["insulin glargine"]
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    assert json.loads(files[0].read_text(encoding="utf-8"))["pronunciations"] == first

    assert pronunciations(names, cache_dir=tmp_path) == first
    assert len(calls) == 1  # served from the cache

    pronunciations(names, language="en-gb", cache_dir=tmp_path)
    pronunciations(names[:2], cache_dir=tmp_path)
    assert len(calls) == 3  # other language or names: other cache files


def test_damaged_cache_is_recomputed(tmp_path, monkeypatch):
    first = pronunciations(["Xanax"], cache_dir=tmp_path)
    (cache,) = tmp_path.glob("*.json")
    cache.write_text("{not json", encoding="utf-8")
    calls = counting_phonemize(monkeypatch)
    assert pronunciations(["Xanax"], cache_dir=tmp_path) == first
    assert len(calls) == 1


def test_name_that_phonemizes_to_nothing(tmp_path):
    names = ["Xanax", "?!", "Zantac"]
    with pytest.raises(LexiconError, match=r"'\?!': phonemizes to nothing"):
        pronunciations(names, cache_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"\?!"):
        kept = pronunciations(names, cache_dir=tmp_path, on_error="skip")
    assert list(kept) == ["Xanax", "Zantac"]
    with pytest.raises(ValueError, match="on_error"):
        pronunciations(names, cache_dir=tmp_path, on_error="ignore")


def test_lexicon_file_with_a_byte_order_mark_reads_clean(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("Xanax\nZantac\n".encode("utf-8-sig"))
    assert read_lexicon_file(path) == ["Xanax", "Zantac"]


def test_lexicon_file_that_is_not_utf8_or_a_folder_is_named(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Xanax\nZantac\nCafé\n".encode("latin-1"))
    with pytest.raises(LexiconError, match=r"latin1\.txt:3: not UTF-8 text \(byte 0xe9\)"):
        read_lexicon_file(latin1)
    with pytest.raises(LexiconError, match=f"{re.escape(str(tmp_path))}: is a folder"):
        read_lexicon_file(tmp_path)
    with pytest.raises(LexiconError, match=r"missing\.txt: cannot read"):
        read_lexicon_file(tmp_path / "missing.txt")


def test_long_repeated_entries_are_cut_short_in_the_warning(tmp_path):
    long = "x" * 200_000
    path = write(tmp_path / "long.txt", f"Xanax\n{long}\n{long}\n")
    with pytest.warns(UserWarning) as caught:
        assert read_lexicon_file(path) == ["Xanax", long]
    (message,) = [str(w.message) for w in caught]
    assert "(200000 characters)" in message and len(message) < 300


def test_names_espeak_ng_would_misread_are_refused_by_name(tmp_path):
    names = ["Xanax", "阿司匹林", "Zyrtec®", "Ибупрофен"]
    prons, problems = lexicon.pronounce(names, cache_dir=tmp_path)
    assert list(prons) == ["Xanax"]
    assert "CJK UNIFIED IDEOGRAPH" in problems["阿司匹林"] and "Latin" in problems["阿司匹林"]
    assert "REGISTERED SIGN" in problems["Zyrtec®"]
    assert "CYRILLIC" in problems["Ибупрофен"]
    assert "CYRILLIC" not in str(lexicon.pronounce(["Ибупрофен"], "ru", tmp_path)[1])
    with pytest.raises(LexiconError, match="'阿司匹林': letters outside the Latin script"):
        pronunciations(names, cache_dir=tmp_path)


def test_a_cache_missing_names_is_recomputed(tmp_path, monkeypatch):
    names = ["Xanax", "Zantac", "Zyrtec"]
    first = pronunciations(names, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("*.json")
    cached = json.loads(cache.read_text(encoding="utf-8"))
    del cached["pronunciations"]["Zantac"]
    cache.write_text(json.dumps(cached), encoding="utf-8")
    calls = counting_phonemize(monkeypatch)
    assert pronunciations(names, cache_dir=tmp_path) == first
    assert calls == [names]
    assert "Zantac" in json.loads(cache.read_text(encoding="utf-8"))["pronunciations"]


def test_an_unwritable_cache_warns_and_goes_on(tmp_path):
    blocker = write(tmp_path / "not-a-folder", "")
    with pytest.warns(UserWarning, match=r"cannot write the pronunciation cache .*not-a-folder"):
        prons = pronunciations(["Xanax"], cache_dir=blocker / "lexicon")
    assert prons["Xanax"].split()
