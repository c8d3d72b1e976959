import pytest

from phonex.config import AudioConfig, Config, ConfigError, TrainConfig


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


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.max_steps=-5", "'train.max_steps' is -5: expected at least 1"),
        ("train.batch_size=0", "'train.batch_size' is 0: expected at least 1"),
        ("train.grad_accum=0", "'train.grad_accum' is 0"),
        ("train.log_every=0", "'train.log_every' is 0"),
        ("train.keep_checkpoints=0", "'train.keep_checkpoints' is 0"),
        ("train.lr=0", "'train.lr' is 0.0: expected above 0"),
        ("train.lr=.inf", "'train.lr' is inf"),
        ("train.warmup_steps=-1", "'train.warmup_steps' is -1"),
        ("train.schedule=cosine_forever", "'train.schedule' is 'cosine_forever': expected one of"),
        ("train.mixed_precision=fp8", "'train.mixed_precision' is 'fp8'"),
        ("model.dropout=1.5", "'model.dropout' is 1.5"),
        ("model.units=words", "'model.units' is 'words'"),
        ("audio.hop_length=0", "'audio.hop_length' is 0"),
        ("audio.win_length=800", "'audio.win_length' is 800: expected 1 to n_fft"),
        ("data.dev_fraction=1", "'data.dev_fraction' is 1.0"),
    ],
)
def test_a_value_out_of_range_names_key_and_value(override, message):
    with pytest.raises(ConfigError) as err:
        Config().override([override])
    assert message in str(err.value)


def test_sections_built_in_code_are_checked_too():
    with pytest.raises(ConfigError, match="'train.checkpoint_every' is 0"):
        TrainConfig(checkpoint_every=0)
    with pytest.raises(ConfigError, match="'train.max_steps' must be int"):
        TrainConfig(max_steps="10")
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


def test_a_settings_file_out_of_range_names_file_key_and_value(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  max_steps: 0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: setting 'train\.max_steps' is 0"):
        Config.load(path)
