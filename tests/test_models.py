import json

import huggingface_hub
import pytest
import torch
from transformers import (
    HubertConfig,
    HubertForCTC,
    Speech2TextConfig,
    Speech2TextForConditionalGeneration,
    WhisperForConditionalGeneration,
)

from phonex.model_folder import ModelFolderError
from phonex.models import REGISTRY, ModelError, count_parameters, freeze, load_model
from phonex.phonemes import Vocabulary

VOCAB = Vocabulary.build(["h ɛ l oʊ | w ɜː l d", "d ɹ ʌ ɡ"])


def test_registry_names_the_mission_checkpoints():
    assert REGISTRY["wav2vec2-base"] == "facebook/wav2vec2-base"
    assert REGISTRY["xlsr-53-espeak"] == "facebook/wav2vec2-xlsr-53-espeak-cv-ft"
    assert {"wav2vec2-base-960h", "wav2vec2-large-960h-lv60-self", "hubert-large-ls960-ft",
            "xlsr-53", "s2t-small"} <= set(REGISTRY)  # fmt: skip


def test_saved_model_is_one_directory_that_loads_back_identically(tmp_path):
    torch.manual_seed(0)
    built = load_model("tiny-test", VOCAB, language="en-gb")
    built.save(tmp_path / "m")
    loaded = load_model(str(tmp_path / "m"))
    assert loaded.vocab.tokens == VOCAB.tokens
    assert (loaded.units, loaded.language, loaded.sample_rate) == ("phones", "en-gb", 16000)
    wave = torch.randn(1, 8000)
    built.model.eval(), loaded.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(built.model(wave).logits, loaded.model(wave).logits)
    assert loaded.model.config.vocab_size == len(VOCAB)
    assert loaded.model.config.pad_token_id == VOCAB.blank_id == 0


def test_another_vocabulary_gets_a_new_head_and_keeps_the_encoder(tmp_path):
    load_model("tiny-test", VOCAB).save(tmp_path / "m")
    other = Vocabulary.build(["a b c d e f g h"])
    fresh = load_model(str(tmp_path / "m"), other)
    kept = load_model(str(tmp_path / "m"))
    assert fresh.model.lm_head.out_features == len(other) != kept.model.lm_head.out_features
    assert fresh.vocab is other
    for (name, a), (_, b) in zip(
        fresh.model.wav2vec2.named_parameters(), kept.model.wav2vec2.named_parameters()
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "vocab.json"])
def test_a_directory_missing_a_file_names_it(tmp_path, missing):
    load_model("tiny-test", VOCAB).save(tmp_path / "m")
    (tmp_path / "m" / missing).unlink()
    with pytest.raises(ModelError, match=missing.replace(".", r"\.")):
        load_model(str(tmp_path / "m"))


def test_unreachable_hub_id_says_to_pass_a_local_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="pass a local directory"):
        load_model("wav2vec2-base", VOCAB)
    with pytest.raises(ModelError, match="no such model"):
        load_model(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(ModelError, match="needs a vocabulary"):
        load_model("tiny")


def test_hubert_checkpoint_loads_and_freezes_by_layer(tmp_path):
    config = HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                          intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=8,
                          num_conv_pos_embedding_groups=4, vocab_size=len(VOCAB))  # fmt: skip
    HubertForCTC(config).save_pretrained(tmp_path / "h")
    VOCAB.save(tmp_path / "h" / "vocab.json")
    loaded = load_model(str(tmp_path / "h"))
    assert type(loaded.model).__name__ == "HubertForCTC"
    assert not loaded.feature_extractor.return_attention_mask  # group-norm convs: no mask
    count = freeze(loaded.model, trainable_layers=1)
    last = loaded.model.hubert.encoder.layers[-1]
    expected = sum(p.numel() for p in [*last.parameters(), *loaded.model.lm_head.parameters()])
    assert count.trainable == expected


def test_sequence_to_sequence_checkpoint_is_refused_by_the_ctc_loader(tmp_path):
    config = Speech2TextConfig(d_model=16, encoder_layers=1, decoder_layers=1,
                               encoder_attention_heads=2, decoder_attention_heads=2,
                               encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=20)  # fmt: skip
    Speech2TextForConditionalGeneration(config).save_pretrained(tmp_path / "s2t")
    (tmp_path / "s2t" / "vocab.json").write_text(json.dumps({"<pad>": 0, "a": 1}))
    with pytest.raises(ModelError, match="sequence-to-sequence"):
        load_model(str(tmp_path / "s2t"))


def test_freezing_counts_transformer_layers_not_tensors():
    loaded = load_model("tiny-test", VOCAB)
    model = loaded.model
    total = count_parameters(model).total
    conv = sum(p.numel() for p in model.wav2vec2.feature_extractor.parameters())
    head = sum(p.numel() for p in model.lm_head.parameters())
    layers = model.wav2vec2.encoder.layers
    last = sum(p.numel() for p in layers[-1].parameters())
    final_norm = sum(p.numel() for p in model.wav2vec2.encoder.layer_norm.parameters())

    assert freeze(model, -1, feature_encoder=False).trainable == total
    assert freeze(model, -1, feature_encoder=True).trainable == total - conv
    assert freeze(model, 0).trainable == head
    assert freeze(model, 1).trainable == head + last + final_norm
    everything_but_conv_and_front = freeze(model, len(layers)).trainable
    assert everything_but_conv_and_front == head + final_norm + sum(
        p.numel() for p in layers.parameters()
    )
    assert all(not p.requires_grad for p in model.wav2vec2.feature_extractor.parameters())
    with pytest.raises(ModelError, match="has 2 layers"):
        freeze(model, 3)


def test_a_vocabulary_that_does_not_fit_the_head_is_refused_unless_a_new_head_replaces_it(
    tmp_path,
):
    load_model("tiny-test", VOCAB).save(tmp_path / "m")
    vocab_file = tmp_path / "m" / "vocab.json"
    index = json.loads(vocab_file.read_text())
    vocab_file.write_text(json.dumps({**index, "extra": len(index)}))
    with pytest.raises(ModelFolderError) as refused:
        load_model(str(tmp_path / "m"))
    assert refused.value.path == vocab_file
    assert f"{len(VOCAB) + 1} tokens, but the CTC head" in str(refused.value)
    assert f"has {len(VOCAB)} outputs" in str(refused.value)
    other = Vocabulary.build(["a b c"])  # the folder's head and vocabulary are both replaced
    assert load_model(str(tmp_path / "m"), other).model.lm_head.out_features == len(other)


def test_a_truncated_whisper_checkpoint_is_named(tmp_path, tiny_whisper_config):
    WhisperForConditionalGeneration(tiny_whisper_config).save_pretrained(tmp_path / "w")
    weights = tmp_path / "w" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFolderError, match="model.safetensors: truncated: ") as refused:
        load_model(str(tmp_path / "w"), VOCAB)
    assert refused.value.path == weights
