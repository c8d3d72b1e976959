import json

import numpy as np
import pytest
import soundfile as sf
import torch

from phonex.cli import main
from phonex.corpus import read_manifest
from phonex.lexicon import pronunciations
from phonex.models import emissions, load_model
from phonex.phonemes import Vocabulary
from phonex.recognize import (
    ClipError,
    Recognizer,
    evaluate_recognition,
    min_samples,
    noisy,
    phone_agreement,
    transcribe,
)
from phonex.tts import Voice, synthesize

WORDS = ["Zyrtec", "Zantac", "Xanax", "Novolog", "insulin glargine"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An untrained tiny-test model whose vocabulary spells every word of WORDS."""
    vocab = Vocabulary.build(pronunciations(WORDS).values())
    folder = tmp_path_factory.mktemp("model") / "tiny"
    load_model("tiny-test", vocab).save(folder)
    return folder


def spelled(recognizer, word, frames_per_token=3, sure=8.0):
    """Emissions in which the model clearly 'hears' ``word``: token, token, blank, ... ."""
    vocab = recognizer.loaded.vocab
    ids = vocab.encode(recognizer.pronunciations[word][0])
    path = [vocab.blank_id] * 3
    for token in ids:
        path += [token] * (frames_per_token - 1) + [vocab.blank_id]
    logits = torch.zeros(len(path) + 3, len(vocab))
    logits[torch.arange(len(path)), torch.tensor(path)] = sure
    logits[len(path) :, vocab.blank_id] = sure
    return torch.log_softmax(logits, -1)


def test_clear_emissions_are_recognised_and_silence_is_low_confidence(model_dir):
    recognizer = Recognizer(model_dir, WORDS + ["zyrtec"])  # repeats collapse (case-sensitive)
    assert len(recognizer.words) == 6
    heard = [spelled(recognizer, w) for w in ("Xanax", "insulin glargine")]
    blank = torch.log_softmax(torch.zeros(40, len(recognizer.loaded.vocab)).index_fill_(
        1, torch.tensor([recognizer.loaded.vocab.blank_id]), 8.0), -1)  # fmt: skip
    xanax, insulin, silence = recognizer.rank(heard + [blank], ["x", "i", "s"], top=3)
    assert xanax.word == "Xanax" and insulin.word == "insulin glargine"
    assert len(xanax.candidates) == 3 and xanax.candidates[0].score > xanax.candidates[1].score
    assert not xanax.low_confidence and xanax.agreement == 1.0
    assert silence.phones == "" and silence.agreement == 0.0 and silence.low_confidence


def test_agreement_is_how_much_of_the_best_word_was_heard():
    assert phone_agreement("k ɛ p ɹ ə", "k ɛ p | ɹ ə") == 1.0
    assert phone_agreement("p", "k ɛ p ɹ ə") == pytest.approx(0.2)
    assert phone_agreement("", "k ɛ p ɹ ə") == 0.0


def test_unpronounceable_lexicon_word_is_named_and_skipped_or_refused(model_dir):
    with pytest.warns(UserWarning, match=r"'\?!': phonemizes to nothing"):
        recognizer = Recognizer(model_dir, ["Zyrtec", "?!"])
    assert recognizer.words == ["Zyrtec"]
    with pytest.raises(ValueError, match=r"'\?!'"):
        Recognizer(model_dir, ["Zyrtec", "?!"], on_error="raise")
    long = "Zyrtec " * 20
    with pytest.warns(UserWarning, match=r"\(140 characters\): longer than 100 characters"):
        assert Recognizer(model_dir, ["Zyrtec", long]).words == ["Zyrtec"]
    with pytest.raises(ValueError, match="empty"):
        Recognizer(model_dir, [])


def test_words_too_long_for_a_clip_score_null_and_rank_last(model_dir):
    recognizer = Recognizer(model_dir, WORDS)
    _, frames = recognizer.lexicon.shortest()
    log_probs = spelled(recognizer, "Xanax")[: frames + 2]  # room for the short names only
    (result,) = recognizer.rank([log_probs], ["clip"], top=len(WORDS))
    record = json.loads(json.dumps(result.to_json(), allow_nan=False))
    scores = [c["score"] for c in record["candidates"]]
    cut = scores.index(None)
    assert all(isinstance(s, float) for s in scores[:cut]) and scores[cut:] == [None] * (
        len(scores) - cut
    )
    unfit = [c["word"] for c in record["candidates"][cut:]]
    assert "insulin glargine" in unfit and unfit == [w for w in WORDS if w in unfit]
    with pytest.raises(ClipError, match=r"short\.wav: too short: 2 model frames"):
        recognizer.rank([log_probs, log_probs[:2]], ["ok.wav", "short.wav"])


def test_clips_too_short_are_refused_by_name_and_never_see_padding(model_dir):
    recognizer = Recognizer(model_dir, WORDS)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (16000, 100, 800)]
    names, kept, refused = recognizer.scorable(["long.wav", "tiny.wav", "short.wav"], waves)
    assert names == ["long.wav"] and kept[0] is waves[0] and len(refused) == 2
    assert refused[0].startswith("tiny.wav: too short: 0.006 s")
    assert refused[1].startswith("short.wav: too short: 0.050 s")
    with pytest.raises(ClipError, match=r"tiny\.wav: too short.*short\.wav: too short"):
        recognizer.recognize(waves, ["long.wav", "tiny.wav", "short.wav"])
    with pytest.raises(ClipError, match=r"tiny\.wav: too short: 0\.006 s.*receptive field"):
        recognizer.emissions(waves[:2], ["long.wav", "tiny.wav"])
    with pytest.raises(ClipError, match=r"^1: too short: 0\.006 s.*field \(0\.025 s, one frame\)"):
        transcribe(recognizer.loaded, waves[:2])
    assert min_samples(recognizer.loaded) == 400  # wav2vec2's receptive field: 25 ms


def test_emissions_match_one_clip_at_a_time_whatever_the_batch(model_dir):
    loaded = load_model(str(model_dir))
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (16000, 4000, 9000)]
    batched = emissions(loaded, waves, batch_size=3)
    for wave, got in zip(waves, batched):
        (alone,) = emissions(loaded, [wave], batch_size=1)
        assert got.shape == alone.shape and got.shape[0] == (len(wave) - 400) // 320 + 1
        torch.testing.assert_close(got, alone, atol=1e-4, rtol=1e-4)
        assert torch.allclose(got.exp().sum(-1), torch.ones(len(got)))


def write_clips(folder):
    speech = synthesize("Zyrtec", Voice("espeak", "en-us"))
    stereo_44k = folder / "stereo_44k.wav"
    wave_44k = np.interp(np.arange(0, len(speech.wave), 16000 / 44100),
                         np.arange(len(speech.wave)), speech.wave)  # fmt: skip
    sf.write(stereo_44k, np.stack([wave_44k, 0.5 * wave_44k], 1), 44100)
    mono_8k = folder / "mono_8k.flac"
    sf.write(mono_8k, speech.wave[::2], 8000)
    silent = folder / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    return [stereo_44k, mono_8k, silent, corrupt]


def test_cli_recognize_and_transcribe_json_contract(model_dir, tmp_path, capsys):
    clips = write_clips(tmp_path)
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("# drugs\nZyrtec\nZantac  # H2 blocker\n\nzantac\ninsulin glargine\n")
    with pytest.warns(UserWarning, match="repeated entries dropped"):
        status = main(["recognize", "--model", str(model_dir), "--lexicon", str(lexicon),
                       "--top", "2", "--json", *map(str, clips)])  # fmt: skip
    out, err = capsys.readouterr()
    assert status == 1 and "corrupt.wav" in err  # named, skipped, the others still recognised
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(c) for c in clips[:3]]
    for record in records:
        assert len(record["candidates"]) == 2
        assert {c["word"] for c in record["candidates"]} <= {
            "Zyrtec",
            "Zantac",
            "insulin glargine",
        }
        assert record["candidates"][0]["score"] >= record["candidates"][1]["score"]
        assert isinstance(record["low_confidence"], bool)  # meaning tested on clear emissions

    assert main(["transcribe", "--model", str(model_dir), "--json", *map(str, clips[:2])]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    vocab = load_model(str(model_dir)).vocab
    assert [r["path"] for r in records] == [str(c) for c in clips[:2]]
    assert all(set(r["phones"].split()) <= set(vocab.tokens) for r in records)

    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert (
        main(["recognize", "--model", str(model_dir), "--lexicon", str(empty), str(clips[0])]) == 2
    )
    assert "no entries" in capsys.readouterr().err


def test_evaluate_recognition_scores_every_clip_under_every_condition(tiny_corpus, tmp_path):
    manifest, rows = tiny_corpus
    test_rows = [
        r for r in read_manifest(manifest) if r.split == "test" and r.augmentation == "none"
    ]
    words = sorted({r.text for r in rows})
    recognizer = Recognizer(load_model("tiny-test", Vocabulary.build(r.phones for r in rows)),
                            words)  # fmt: skip
    table = evaluate_recognition(recognizer, test_rows, snrs=[None, 10], progress=False)
    assert len(table) == 2 * len(test_rows)
    assert table.condition.value_counts().to_dict() == {
        "clean": len(test_rows),
        "10 dB": len(test_rows),
    }
    assert table["rank"].between(0, 5).all() and table.words.map(len).eq(min(5, len(words))).all()
    assert set(table.truth) <= set(words)
    assert (table.fuzzy_rank >= 0).all()
    # the noise really is at the requested SNR, and the same for the same clip
    wave = np.sin(np.arange(8000) / 5).astype(np.float32)
    once = noisy(wave, 10, "pink", "clip", 16000)
    assert np.array_equal(once, noisy(wave, 10, "pink", "clip", 16000))
    assert 10 * np.log10(np.sum(wave**2) / np.sum((once - wave) ** 2)) == pytest.approx(
        10, abs=1e-3
    )


def test_transcribe_returns_one_token_string_per_wave(model_dir):
    loaded = load_model(str(model_dir))
    out = transcribe(loaded, [np.zeros(8000, np.float32), np.ones(16000, np.float32)])
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_speech2text_text_then_fuzzy_match_recognises_a_memorised_clip(tmp_path):
    """A tiny Speech2Text trained to say "zyrtec" for one clip, loaded as a checkpoint would be."""
    import sentencepiece as spm
    from transformers import (
        Speech2TextConfig,
        Speech2TextFeatureExtractor,
        Speech2TextForConditionalGeneration,
        Speech2TextProcessor,
        Speech2TextTokenizer,
    )

    from phonex.decode import fuzzy_rank
    from phonex.models import load_seq2seq
    from phonex.recognize import transcribe_seq2seq

    (tmp_path / "text.txt").write_text("abilify\nzyrtec\nnovolog\n" * 5)
    spm.SentencePieceTrainer.train(
        input=str(tmp_path / "text.txt"), model_prefix=str(tmp_path / "spm"), vocab_size=20,
        model_type="char", bos_id=0, pad_id=1, eos_id=2, unk_id=3, minloglevel=2,
    )  # fmt: skip
    pieces = spm.SentencePieceProcessor(model_file=str(tmp_path / "spm.model"))
    vocab = {pieces.id_to_piece(i): i for i in range(pieces.get_piece_size())}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Speech2TextTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "spm.model"))
    processor = Speech2TextProcessor(
        Speech2TextFeatureExtractor(feature_size=16, num_mel_bins=16), tokenizer
    )
    config = Speech2TextConfig(
        d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, conv_channels=16,
        vocab_size=len(vocab), input_feat_per_channel=16, max_source_positions=200,
        max_target_positions=20, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Speech2TextForConditionalGeneration(config)
    wave = synthesize("Zyrtec", Voice("espeak", "en-us")).wave
    inputs = processor(wave, sampling_rate=16000, return_tensors="pt")
    labels = torch.tensor([tokenizer("zyrtec").input_ids])
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(tmp_path / "s2t")
    processor.save_pretrained(tmp_path / "s2t")

    (text,) = transcribe_seq2seq(*load_seq2seq(str(tmp_path / "s2t")), [wave])
    (ranked,) = fuzzy_rank([text], {w: [w] for w in WORDS}, tokens=False)
    assert ranked[0].word == "Zyrtec", text
