"""Boundary calibration: offsets learned per context, applied in order, saved and reloaded."""

import json

import numpy as np
import pandas as pd
import pytest

from phonex.align import WordSpan, align
from phonex.boundaries import BoundaryCalibration, contexts, fit_calibration
from phonex.cli import main
from phonex.lexicon import pronunciations
from phonex.models import load_model
from phonex.phonemes import Vocabulary


def test_contexts_go_from_neighbour_classes_to_the_phone_alone():
    assert contexts(["t", "æ", "n"]) == [
        ["# t vowel", "# t *", "* t *"],
        ["stop æ nasal", "stop æ *", "* æ *"],
        ["vowel n #", "vowel n *", "* n *"],
    ]


def aligned(clips):
    """evaluate_alignment-like rows: each clip a list of (phone, reference onset, onset)."""
    return pd.DataFrame([
        {"id": f"c{i}", "speaker": "v", "phone": p, "ref_start": ref, "start": start}
        for i, clip in enumerate(clips) for p, ref, start in clip
    ])  # fmt: skip


def test_fit_learns_the_median_offset_of_each_context_and_backs_off():
    # æ after a stop fires 60 ms late, after a nasal 20 ms late; t fires 10 ms early
    clips = [[("t", 0.10, 0.11), ("æ", 0.20, 0.26)]] * 3 + [
        [("n", 0.0, 0.0), ("æ", 0.1, 0.12)]
    ] * 3
    calibration = fit_calibration(aligned(clips), min_count=3)
    assert calibration.offsets["# t vowel"] == pytest.approx(-0.01)
    assert calibration.shifts(["t", "æ"]) == pytest.approx([-0.01, -0.06])
    assert calibration.shifts(["n", "æ"]) == pytest.approx([0.0, -0.02])
    # æ between two stops was never seen: "stop æ *" (3 examples) is used
    assert calibration.shifts(["t", "æ", "t"]) == pytest.approx([-0.01, -0.06, -0.01])
    assert calibration.shifts(["ʒ"]) == [0.0]  # unseen phone: not moved
    sparse = fit_calibration(aligned(clips[:2] + clips[3:]), min_count=3)
    # "stop æ *" has 2 examples: back off to "* æ *", the median of 2 x -0.06 and 3 x -0.02
    assert sparse.shifts(["t", "æ"])[1] == pytest.approx(-0.02)
    assert calibration.meta == {"clips": 6, "phones": 12, "speakers": ["v"]}


def test_apply_moves_onsets_in_order_and_ends_follow_except_before_a_pause():
    calibration = BoundaryCalibration(
        offsets={"* a *": -0.06, "* b *": 0.0, "* c *": -0.5},
        counts={"* a *": 5, "* b *": 5, "* c *": 5},
    )
    words = [
        WordSpan("ab", 0.10, 0.30, [("a", 0.10, 0.20, 0.9), ("b", 0.20, 0.30, 0.8)]),
        WordSpan("c", 0.60, 0.70, [("c", 0.60, 0.70, 0.7)]),  # after a pause
    ]
    (ab, c) = calibration.apply(words)
    a, b = ab.phones
    assert a[1] == pytest.approx(0.04) and a[2] == pytest.approx(0.20) and b[1] == 0.20
    assert c.phones[0][1] == pytest.approx(0.22)  # 0.6 - 0.5, kept a frame after b's onset
    assert b[2] == pytest.approx(0.22)  # b, before the pause, ends by c's new onset
    assert c.phones[0][2] == 0.70 and (ab.start, ab.end) == pytest.approx((0.04, 0.22))
    assert [p[3] for p in ab.phones] == [0.9, 0.8]  # scores kept


def test_save_and_load_round_trip_and_a_bad_file_is_named(tmp_path):
    calibration = fit_calibration(aligned([[("t", 0.1, 0.12)]] * 3))
    path = calibration.save(tmp_path / "calibration.json")
    assert BoundaryCalibration.load(path) == calibration
    (tmp_path / "bad.json").write_text(json.dumps({"offsets": {}}))
    with pytest.raises(ValueError, match=r"bad.json: not a boundary calibration"):
        BoundaryCalibration.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no aligned phones"):
        fit_calibration(aligned([]).reindex(columns=["id", "speaker", "phone"]))


def test_align_and_the_command_line_apply_a_calibration(tmp_path, capsys):
    import soundfile as sf

    vocab = Vocabulary.build(pronunciations(["Zyrtec"]).values())
    load_model("tiny-test", vocab).save(tmp_path / "model")
    loaded = load_model(str(tmp_path / "model"))
    wave = np.random.default_rng(0).normal(scale=0.1, size=16000).astype(np.float32)
    plain = align(loaded, wave, "Zyrtec")
    phones = [p for p, *_ in plain[0].phones]
    late = BoundaryCalibration({f"* {p} *": 0.5 for p in phones}, {f"* {p} *": 9 for p in phones})
    moved = align(loaded, wave, "Zyrtec", calibration=late)
    starts = [p[1] for p in moved[0].phones]
    expected = [plain[0].phones[0][1] + 0.5]
    for _, start, *_ in plain[0].phones[1:]:
        expected.append(max(start + 0.5, expected[-1] + 0.02))
    assert starts == pytest.approx(expected)
    sf.write(tmp_path / "clip.wav", wave, 16000)
    late.save(tmp_path / "calibration.json")
    args = ["align", "--model", str(tmp_path / "model"), "--audio", str(tmp_path / "clip.wav"),
            "--text", "Zyrtec", "--json"]  # fmt: skip
    assert main([*args, "--calibration", str(tmp_path / "calibration.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["start"] for p in out["words"][0]["phones"]] == pytest.approx(starts, abs=1e-4)
    with pytest.raises(SystemExit) as refused:  # argparse checks the file before any work
        main([*args, "--calibration", str(tmp_path / "missing.json")])
    assert refused.value.code == 2
    assert "missing.json" in capsys.readouterr().err


def test_ends_before_a_pause_learn_their_own_offset_and_unpaired_phones_give_context_only():
    # each clip "a b", a pause, "c": b and c end 30 ms before the reference; the middle phone
    # of the second clip type is unconfirmed by the reference (NaN) and is not fitted
    rows = []
    for i in range(3):
        for phone, ref, start, ref_end, end in (("a", 0.10, 0.12, 0.20, 0.22),
                                                 ("b", 0.20, 0.22, 0.27, 0.30),
                                                 ("c", 0.50, 0.52, 0.57, 0.60)):  # fmt: skip
            rows.append({"id": f"c{i}", "speaker": "v", "phone": phone, "ref_start": ref,
                         "start": start, "ref_end": ref_end, "end": end})  # fmt: skip
    rows.append({"id": "u", "speaker": "w", "phone": "a", "ref_start": float("nan"),
                 "start": 0.1, "ref_end": float("nan"), "end": 0.2})  # fmt: skip
    calibration = fit_calibration(pd.DataFrame(rows), min_count=3)
    assert calibration.end_shift("b") == pytest.approx(-0.03)
    assert calibration.end_shift("a") == pytest.approx(-0.03)  # never before a pause: "end *"
    assert calibration.counts["* a *"] == 3 and calibration.meta["speakers"] == ["v"]
    words = [WordSpan("ab", 0.12, 0.30, [("a", 0.12, 0.22, 0.9), ("b", 0.22, 0.30, 0.8)],
                      (1.5, -0.5)),
             WordSpan("c", 0.52, 0.60, [("c", 0.52, 0.60, 0.7)], (2.0,))]  # fmt: skip
    ab, c = calibration.apply(words)
    assert [p[1:3] for p in ab.phones] == [pytest.approx((0.10, 0.20)),
                                           pytest.approx((0.20, 0.27))]  # fmt: skip
    assert c.phones[0][1:3] == pytest.approx((0.50, 0.57))
    assert (ab.gop, c.gop) == ((1.5, -0.5), (2.0,))  # confidence kept
