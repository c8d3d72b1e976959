import pytest

from phonex.config import AudioConfig, Config, ConfigError


def test_yaml_and_json_round_trip(tmp_path):
    cfg = Config().override(["train.lr=0.0003", "data.engines=[espeak, piper]", "model.name=x"])
    for name in ("cfg.yaml", "cfg.json"):
        cfg.save(tmp_path / name)
        assert Config.load(tmp_path / name) == cfg
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.data.engines == ["espeak", "piper"]


def test_override_parses_types_and_ints_for_floats():
    cfg = Config().override(
        ["audio.fmax=7600", "train.max_steps=10", "model.freeze_feature_encoder=false"]
    )
    assert cfg.audio.fmax == 7600.0 and isinstance(cfg.audio.fmax, float)
    assert cfg.train.max_steps == 10
    assert cfg.model.freeze_feature_encoder is False


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.lrr=1", "train.lrr"),
        ("nosection.x=1", "nosection.x"),
        ("train.max_steps=ten", "train.max_steps"),
        ("train.max_steps=true", "train.max_steps"),
        ("data.engines=espeak", "data.engines"),
    ],
)
def test_unknown_key_or_wrong_type_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        Config().override([override])


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="section.key=value"):
        Config().override(["train.lr"])


def test_loading_a_file_with_an_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*learning_rate"):
        Config.load(path)


def test_tacotron2_settings():
    cfg = AudioConfig.tacotron2()
    assert (cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.win_length) == (22050, 1024, 256, 1024)
    assert (cfg.n_mels, cfg.fmin, cfg.fmax) == (80, 0.0, 8000.0)
