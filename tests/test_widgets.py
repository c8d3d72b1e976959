import dataclasses

import ipywidgets
import matplotlib
import numpy as np
import pytest
import soundfile as sf
import torch

from phonex.corpus import utterance_from_audio
from phonex.lexicon import pronunciations
from phonex.models import emissions, load_model
from phonex.phonemes import Vocabulary
from phonex.tts import Voice, synthesize
from phonex.widgets import Inspector, clip_outputs, inspect

matplotlib.use("Agg")

TEXTS = ["Novolog insulin", "Zyrtec"]


@pytest.fixture(scope="module")
def loaded():
    torch.manual_seed(0)
    return load_model("tiny-test", Vocabulary.build(pronunciations(TEXTS).values()))


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Two espeak-ng clips with reference phones, and one whose phones the model lacks."""
    folder = tmp_path_factory.mktemp("widget-clips")
    phones = pronunciations(TEXTS)
    out = []
    for i, text in enumerate([*TEXTS, "Zyrtec"]):
        speech = synthesize(text, Voice("espeak", "en-us"))
        sf.write(folder / f"{i}.wav", speech.wave, speech.sample_rate)
        ref = "θ ʌ" if i == 2 else phones[text]  # not in the vocabulary: alignment fails
        out.append(utterance_from_audio(f"u{i}", folder / f"{i}.wav", text, "espeak:en-us",
                                        phones=ref))  # fmt: skip
    return out


@pytest.fixture
def inspector(loaded, rows):
    return Inspector(loaded, rows)


def test_state_of_the_first_utterance(inspector, loaded):
    assert inspector.index == 0 and inspector.layer == inspector.num_layers == 2
    assert [w.word for w in inspector.words] == ["Novolog", "insulin"] and not inspector.error
    (expected,) = emissions(loaded, [inspector.wave])
    torch.testing.assert_close(inspector.log_probs, expected)  # fed as emissions() feeds it
    assert inspector.hidden.shape == (len(expected), loaded.model.config.hidden_size)


def test_widget_builds_with_its_controls(inspector, rows):
    box = inspector.widget()
    c = inspector.controls
    assert isinstance(box, ipywidgets.VBox) and inspector.widget() is box
    assert [type(w) for w in box.children] == [
        ipywidgets.HBox, ipywidgets.HTML, ipywidgets.Output, ipywidgets.Dropdown,
        ipywidgets.Output, ipywidgets.VBox,
    ]  # fmt: skip
    assert c.utterance.options[0] == ("u0 · Novolog insulin", 0) and len(c.utterance.options) == 3
    assert (c.layer.min, c.layer.max, c.layer.value) == (0, 2, 2)
    assert len(c.span.options) == 1 + len(inspector.phones) and c.span.value == -1
    assert "image/png" in c.plot.outputs[0]["data"]
    assert "audio" in c.audio.outputs[0]["data"]["text/html"]


def test_choosing_an_utterance_updates_the_state(inspector):
    inspector.widget()
    c = inspector.controls
    c.utterance.value = 1
    assert inspector.index == 1 and [w.word for w in inspector.words] == ["Zyrtec"]
    assert len(c.span.options) == 1 + len(inspector.phones) and c.span.value == -1


def test_a_failed_alignment_is_reported_and_the_rest_still_shown(inspector):
    inspector.widget()
    c = inspector.controls
    c.utterance.value = 2
    assert inspector.words == [] and "does not have" in inspector.error
    assert "alignment failed" in c.status.value and c.span.options == (("whole clip", -1),)
    assert "image/png" in c.plot.outputs[0]["data"] and inspector.hidden.size


def test_choosing_a_layer_changes_the_hidden_states(inspector):
    inspector.widget()
    top = inspector.hidden.copy()
    inspector.controls.layer.value = 0
    assert inspector.layer == 0 and inspector.hidden.shape == top.shape
    assert not np.allclose(inspector.hidden, top)
    with pytest.raises(ValueError, match=r"layers 0\.\.2"):
        inspector.select_layer(3)


def test_choosing_a_span_plays_that_segment(inspector, loaded):
    inspector.widget()
    c = inspector.controls
    whole = c.audio.outputs[0]["data"]["text/html"]
    c.span.value = 2
    assert inspector.span == 2 and c.audio.outputs[0]["data"]["text/html"] != whole
    _, start, end, _ = inspector.phones[2]
    frame = loaded.sample_rate * inspector.seconds_per_frame
    expected = (end - start) * loaded.sample_rate
    assert abs(len(inspector.segment(2)) - expected) <= 1 and len(inspector.segment(2)) >= frame
    c.span.value = -1
    assert inspector.span is None


def test_figure_has_four_rows_on_one_time_axis(inspector):
    inspector.span = 1
    fig = inspector.figure()
    rows = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(rows) == 4
    assert all(ax.get_xlim() == rows[0].get_xlim() for ax in rows)
    assert rows[0].get_xlim()[1] == pytest.approx(len(inspector.wave) / 16000)
    assert len({round(ax.get_position().width, 6) for ax in rows}) == 1
    assert "layer 2" in rows[3].get_title()


def test_inspect_returns_the_box(loaded, rows):
    assert isinstance(inspect(loaded, rows[1:2], layer=1), ipywidgets.VBox)


def test_clear_errors(loaded, rows):
    with pytest.raises(ValueError, match="rows is empty"):
        Inspector(loaded, [])
    with pytest.raises(IndexError, match="there are 3 rows"):
        Inspector(loaded, rows, index=3)

    class NoHiddenStates(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **inputs):
            return dataclasses.replace(self.inner(**inputs), hidden_states=None)

    silent = dataclasses.replace(loaded, model=NoHiddenStates(loaded.model), source="mute")
    with pytest.raises(ValueError, match=r"NoHiddenStates \(mute\) returned no hidden states"):
        clip_outputs(silent, np.zeros(16000, np.float32))
