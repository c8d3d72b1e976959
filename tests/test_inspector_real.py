"""The inspector against reference labels: espeak-ng's true times and TIMIT-style hand labels."""

import base64
import io
import re

import ipywidgets
import matplotlib
import numpy as np
import pytest
import soundfile as sf
import torch

from phonex.comparison import Reference, match_phones, summary
from phonex.config import SHARED_DATA_DIR
from phonex.corpus import utterance_from_audio
from phonex.intervals import Interval, write_textgrid
from phonex.lexicon import pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.tts import Voice, synthesize
from phonex.widgets import Inspector

matplotlib.use("Agg")

TIMIT_ROOT = SHARED_DATA_DIR / "timit-sample-dev"
TEXT = "Zyrtec"
TIMIT_LABELS = ["h#", "z", "ih", "ax", "tcl", "t", "eh", "kcl", "k", "h#"]  # hand-made, TIMIT-61


def _tier(*items):
    return [Interval(label, start, end) for label, start, end in items]


def test_same_phones_take_their_errors_phone_by_phone():
    reference = Reference(_tier(("n", 0.10, 0.20), ("oʊ", 0.20, 0.35)), [], "espeak", "ref")
    model = _tier(("n", 0.12, 0.21), ("|", 0.21, 0.21), ("oʊ", 0.21, 0.30))
    first, separator, second = match_phones(reference, model)
    assert separator is None and (first.label, second.label) == ("n", "oʊ")
    assert first.onset_error == pytest.approx(0.02) and first.offset_error == pytest.approx(0.01)
    assert second.onset_error == pytest.approx(0.01) and second.offset_error == pytest.approx(0.05)


def test_timit_labels_are_compared_as_protocol_units():
    # the closure and its release are one unit b; ``*`` (a word the model could not spell) and
    # the phone it hides are unpaired
    reference = Reference(_tier(("h#", 0.0, 0.1), ("bcl", 0.1, 0.15), ("b", 0.15, 0.2),
                                ("iy", 0.2, 0.4), ("s", 0.4, 0.5), ("h#", 0.5, 0.6)),
                          [], "timit", "x.phn")  # fmt: skip
    model = _tier(("b", 0.12, 0.2), ("iː", 0.21, 0.38), ("*", 0.38, 0.52))
    b, iy, wildcard = match_phones(reference, model)
    assert (b.label, b.start, b.end) == ("b", 0.1, 0.2) and wildcard is None
    assert b.onset_error == pytest.approx(0.02) and b.offset_error == pytest.approx(0.0)
    assert iy.label == "iy" and iy.onset_error == pytest.approx(0.01)
    assert iy.offset_error == pytest.approx(0.02)
    # sil|b, b|iy and iy|s (by the offset of iy); s|sil is not timed, the model has no s
    assert sorted(summary(reference, model).errors) == pytest.approx([0.01, 0.02, 0.02])


@pytest.fixture(scope="module")
def loaded():
    torch.manual_seed(0)
    return load_model("tiny-test", Vocabulary.build(pronunciations([TEXT]).values()))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspector-real")
    speech = synthesize(TEXT, Voice("espeak", "en-us"))
    sf.write(folder / "zyrtec.wav", speech.wave, speech.sample_rate)
    return folder, len(speech.wave) / speech.sample_rate


def _timit_row(folder, seconds):
    """The clip with hand-made TIMIT labels: .phn and .wrd in 16 kHz sample offsets."""
    edges = np.linspace(0, seconds, len(TIMIT_LABELS) + 1)
    offsets = np.round(edges * 16000).astype(int)
    lines = [f"{a} {b} {label}" for a, b, label in zip(offsets, offsets[1:], TIMIT_LABELS)]
    (folder / "zyrtec.phn").write_text("\n".join(lines) + "\n")
    (folder / "zyrtec.wrd").write_text(f"{offsets[1]} {offsets[-2]} zyrtec\n")
    row = utterance_from_audio("z0", folder / "zyrtec.wav", TEXT, "hand", phones=" ".join(
        TIMIT_LABELS), alignment=str(folder / "zyrtec.phn"))  # fmt: skip
    return row, offsets / 16000


def _played_samples(inspector) -> int:
    html = inspector.controls.audio.outputs[0]["data"]["text/html"]
    data = base64.b64decode(re.search(r'base64,([^"]+)"', html).group(1))
    return len(sf.read(io.BytesIO(data))[0])


def test_inspector_against_hand_labels(loaded, clip):
    row, times = _timit_row(*clip)
    inspector = Inspector(loaded, [row])
    assert inspector.reference.labels == "timit" and not inspector.reference_error
    # the TIMIT labels are not the model's phones: the text was phonemized and aligned
    assert [p[0] for p in inspector.phones] == pronunciations([TEXT])[TEXT].split()
    z = inspector.matches[0]
    assert z.label == "z" and (z.start, z.end) == pytest.approx((times[1], times[2]))
    assert z.onset_error == pytest.approx(abs(inspector.phones[0][1] - times[1]))
    assert z.offset_error == pytest.approx(abs(inspector.phones[0][2] - times[2]))
    box = inspector.widget()
    assert isinstance(box.children[-1], ipywidgets.VBox)
    assert "boundaries within 20 ms" in inspector.controls.status.value
    assert "hand labels" in inspector.figure().axes[1].get_title()


def test_table_rows_play_phones_words_and_reference_spans(loaded, clip):
    row, times = _timit_row(*clip)
    inspector = Inspector(loaded, [row])
    inspector.widget()
    words, header, *phones = inspector.controls.table.children
    assert len(phones) == len(inspector.phones) and "onset error" in header.children[2].value
    assert "z" in phones[0].children[2].value and " ms" in phones[0].children[2].value
    phones[1].children[0].click()  # the model's second phone
    assert inspector.span == 1 and _played_samples(inspector) == len(inspector.segment(1))
    phones[0].children[1].click()  # the reference span of z
    assert _played_samples(inspector) == pytest.approx((times[2] - times[1]) * 16000, abs=2)
    words.children[0].click()
    assert words.children[0].description == "▶ Zyrtec"
    assert _played_samples(inspector) == pytest.approx(
        (inspector.words[0].end - inspector.words[0].start) * 16000, abs=2
    )
    phones[1].children[0].click()  # chosen already: played again
    assert inspector.span == 1 and _played_samples(inspector) == len(inspector.segment(1))


def test_inspector_against_espeak_true_times(loaded, clip):
    folder, seconds = clip
    phones = pronunciations([TEXT])[TEXT].split()
    edges = np.linspace(0.05, seconds - 0.05, len(phones) + 1)
    tiers = {"phones": [Interval(p, a, b) for p, a, b in zip(phones, edges, edges[1:])],
             "words": [Interval(TEXT, edges[0], edges[-1])]}  # fmt: skip
    grid = write_textgrid(folder / "zyrtec.TextGrid", tiers, seconds)
    row = utterance_from_audio("z1", folder / "zyrtec.wav", TEXT, "espeak:en-us",
                               phones=" ".join(phones), alignment=str(grid))  # fmt: skip
    inspector = Inspector(loaded, [row])
    assert inspector.reference.labels == "espeak"
    for (phone, start, end, _), match, a, b in zip(inspector.phones, inspector.matches, edges,
                                                   edges[1:]):  # fmt: skip
        assert match.label == phone and match.onset_error == pytest.approx(abs(start - a))
        assert match.offset_error == pytest.approx(abs(end - b))
    assert "true times" in inspector.figure().axes[1].get_title()


def test_an_unreadable_reference_is_named_and_the_rest_still_shown(loaded, clip):
    folder, _ = clip
    (folder / "broken.phn").write_text("0 100 h#\nnot a line\n")
    row = utterance_from_audio("z2", folder / "zyrtec.wav", TEXT, "espeak:en-us",
                               phones=pronunciations([TEXT])[TEXT],
                               alignment=str(folder / "broken.phn"))  # fmt: skip
    inspector = Inspector(loaded, [row])
    assert inspector.reference is None and "broken.phn: line 2" in inspector.reference_error
    assert [w.word for w in inspector.words] == [TEXT]
    inspector.widget()
    assert "broken.phn" in inspector.controls.status.value
    assert "image/png" in inspector.controls.plot.outputs[0]["data"]


@pytest.mark.skipif(not TIMIT_ROOT.is_dir(), reason=f"{TIMIT_ROOT} is absent")
def test_inspector_on_a_timit_utterance():
    from phonex.timit import read_timit_reference

    row, labels = read_timit_reference(TIMIT_ROOT)[0]
    torch.manual_seed(0)
    vocab = Vocabulary.build(pronunciations([row.text]).values())
    inspector = Inspector(load_model("tiny-test", vocab), [row])
    assert inspector.reference.phones == labels.phones and not inspector.error
    assert inspector.reference.words == labels.words
    paired = [m for m in inspector.matches if m is not None]
    assert len(paired) >= len(inspector.phones) // 2
    assert all(m.onset_error is None or 0 <= m.onset_error < row.duration for m in paired)
    assert inspector.boundaries.reference_boundaries > 20
