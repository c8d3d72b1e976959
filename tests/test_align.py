import itertools
import json
import math

import numpy as np
import pytest
import torch

import phonex.models
from phonex.align import (
    WILDCARD,
    TokenSpan,
    align,
    extend_spans,
    to_tiers,
    token_spans,
    transcript_tokens,
    transcript_words,
    windowed_emissions,
    with_wildcard,
    word_spans,
)
from phonex.cli import main
from phonex.config import MODELS_DIR
from phonex.intervals import AlignmentError, Interval, read_alignment
from phonex.lexicon import pronunciations
from phonex.metrics import boundary_accuracy, boundary_errors
from phonex.models import load_model
from phonex.tts import Voice, synthesize
from phonex.viterbi import _torchaudio_forced_align, forced_align, viterbi, viterbi_batch


def collapse(path, blank=0):
    ids = [k for k, _ in itertools.groupby(path)]
    return [i for i in ids if i != blank]


def brute_force_best(log_probs, targets, blank=0):
    """The best-scoring frame path that collapses to ``targets``, by trying every path."""
    frames, classes = log_probs.shape
    best, best_path = -np.inf, None
    for path in itertools.product(range(classes), repeat=frames):
        if collapse(path, blank) == list(targets):
            score = float(log_probs[torch.arange(frames), torch.tensor(path)].sum())
            if score > best:
                best, best_path = score, list(path)
    return best, best_path


@pytest.mark.parametrize("seed", range(12))
def test_viterbi_finds_the_brute_force_best_path_and_both_aligners_agree(seed):
    gen = torch.Generator().manual_seed(seed)
    frames = 4 + seed % 3
    targets = [[1, 2], [2, 2], [3], [1, 3, 1]][seed % 4]
    log_probs = torch.log_softmax(2 * torch.randn(frames, 4, generator=gen), -1)
    best, best_path = brute_force_best(log_probs, targets)
    path, scores = viterbi(log_probs, targets)
    assert path.tolist() == best_path
    assert float(scores.sum()) == pytest.approx(best, abs=1e-5)
    batch_path, batch_scores = viterbi_batch(
        log_probs[None], torch.tensor([targets]), torch.tensor([frames]),
        torch.tensor([len(targets)]),
    )  # fmt: skip
    assert batch_path[0].tolist() == best_path
    torch.testing.assert_close(batch_scores[0], scores)


def test_batched_viterbi_handles_ragged_clips_like_one_at_a_time():
    gen = torch.Generator().manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(3, 30, 6, generator=gen), -1)
    targets = [[1, 2, 2, 3], [5], [4, 1, 4, 1, 4, 1]]
    lengths = torch.tensor([30, 12, 20])
    padded = torch.tensor([t + [0] * (6 - len(t)) for t in targets])
    paths, _ = viterbi_batch(log_probs, padded, lengths, torch.tensor([len(t) for t in targets]))
    for b in range(3):
        alone, _ = viterbi(log_probs[b, : lengths[b]], targets[b])
        assert paths[b, : lengths[b]].tolist() == alone.tolist()
        assert (paths[b, lengths[b] :] == 0).all()


def test_ties_are_broken_as_torchaudio_does():
    # flat emissions: every path ties. torchaudio prefers staying to moving, and the last token
    # to the final blank, so the path reaches the last token as early as it can and stays there
    path, _ = viterbi(torch.zeros(5, 3), [1, 2])
    assert path.tolist() == [1, 2, 2, 2, 2]
    batch_path, _ = viterbi_batch(torch.zeros(1, 5, 3), torch.tensor([[1, 2]]),
                                  torch.tensor([5]), torch.tensor([2]))  # fmt: skip
    assert batch_path[0].tolist() == path.tolist()


@pytest.mark.skipif(_torchaudio_forced_align() is None, reason="torchaudio does not import here")
def test_same_paths_as_torchaudio():
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        log_probs = torch.log_softmax(3 * torch.randn(40, 8, generator=gen), -1)
        targets = torch.randint(1, 8, (9,), generator=gen).tolist()
        ours, _ = forced_align(log_probs, targets, backend="numba")
        theirs, _ = forced_align(log_probs, targets, backend="torchaudio")
        assert ours.tolist() == theirs.tolist()


def test_more_tokens_than_frames_is_a_clear_error():
    with pytest.raises(AlignmentError, match=r"5 tokens \(1 repeated.*in 5 frames"):
        viterbi(torch.zeros(5, 4), [1, 2, 2, 3, 1])
    with pytest.raises(AlignmentError, match="no tokens"):
        viterbi(torch.zeros(5, 4), [])


def test_spans_and_words_from_a_path():
    path = torch.tensor([0, 1, 1, 0, 2, 3, 3, 0, 3, 0])
    scores = torch.log(torch.full((10,), 0.5))
    spans = token_spans(path, scores, ["a", "|", "b", "b"])
    assert [(s.token, s.start, s.end) for s in spans] == [
        ("a", 1, 3), ("|", 4, 5), ("b", 5, 7), ("b", 8, 9),
    ]  # fmt: skip
    assert spans[0].score == pytest.approx(0.5)
    words = word_spans(spans, ["A", "B"], seconds_per_frame=0.02)
    assert [(w.word, w.start, w.end) for w in words] == [("A", 0.02, 0.06), ("B", 0.1, 0.18)]
    tiers = to_tiers(words)
    assert [i.label for i in tiers["phones"]] == ["a", "b", "b"]


def test_extend_spans_ends_phones_at_the_next_phone_except_before_a_pause():
    spans = [TokenSpan(t, a, b, 0.5) for t, a, b in [
        ("a", 0, 1), ("b", 3, 4), ("|", 5, 6), ("c", 6, 7),  # a short gap between words
        ("|", 9, 10), ("d", 20, 21), ("e", 24, 25),  # a pause before d; e ends the clip
    ]]  # fmt: skip
    ends = [(s.token, s.end) for s in extend_spans(spans, frames=25, pause_frames=5)]
    assert ends == [("a", 3), ("b", 6), ("|", 6), ("c", 8), ("|", 10), ("d", 24), ("e", 25)]


def test_the_wildcard_scores_the_best_non_blank_class():
    log_probs = torch.log_softmax(torch.randn(6, 4), -1)
    extended = with_wildcard(log_probs, blank=0)
    assert extended.shape == (6, 5)
    torch.testing.assert_close(extended[:, 4], log_probs[:, 1:].amax(1))


def test_boundary_accuracy_counts_onsets_and_offsets_within_tolerance():
    ref = [Interval("a", 0.10, 0.20), Interval("b", 0.20, 0.30)]
    hyp = [Interval("a", 0.105, 0.24), Interval("b", 0.24, 0.30)]
    errors = boundary_errors(ref, hyp)
    assert sorted(np.round(errors, 3)) == [0.0, 0.005, 0.04, 0.04]
    result = boundary_accuracy(errors)
    assert result["within_10ms"] == 0.5 and result["within_50ms"] == 1.0
    assert result["mean_abs_error_s"] == pytest.approx(0.02125)
    with pytest.raises(ValueError, match="different phone sequences"):
        boundary_errors(ref, hyp[:1])


def test_align_a_clip_gives_ordered_times_and_a_textgrid_praat_reads(model_dir, tmp_path, capsys):
    speech = synthesize("Novolog insulin", Voice("espeak", "en-us"))
    clip = tmp_path / "clip.wav"
    import soundfile as sf

    sf.write(clip, speech.wave, speech.sample_rate)
    grid = tmp_path / "clip.TextGrid"
    assert main(["align", "--model", str(model_dir), "--audio", str(clip),
                 "--text", "Novolog insulin", "--json", "--textgrid", str(grid)]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert [w["word"] for w in out["words"]] == ["Novolog", "insulin"]
    times = [t for w in out["words"] for p in w["phones"] for t in (p["start"], p["end"])]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= speech.duration + 0.02
    phones = [p["phone"] for w in out["words"] for p in w["phones"]]
    assert " ".join(phones) == pronunciations(["Novolog insulin"])["Novolog insulin"].replace(
        " | ", " "
    )
    tiers = read_alignment(grid)
    assert [i.label for i in tiers["phones"]] == phones
    assert all(0 <= p["score"] <= 1 for w in out["words"] for p in w["phones"])


def test_align_refuses_bad_text_silence_and_overlong_clips(model_dir):
    loaded = load_model(str(model_dir))
    noise = np.random.default_rng(0).normal(scale=0.05, size=16000 * 3).astype(np.float32)
    with pytest.raises(AlignmentError, match="not have"):
        align(loaded, noise, "xylophone jazz")
    with pytest.raises(AlignmentError, match="empty"):
        align(loaded, noise, "  ")
    with pytest.raises(AlignmentError, match="longer than max_seconds"):
        align(loaded, noise, "Zyrtec", max_seconds=2)
    with pytest.raises(AlignmentError, match="do not fit"):
        align(loaded, noise[:800], "Novolog insulin")
    with pytest.raises(AlignmentError, match=r"0\.006 s, shorter than the model's receptive"):
        align(loaded, noise[:100], "Zyrtec")
    for silent in (np.zeros(16000, np.float32), noise * 1e-4):
        with pytest.raises(AlignmentError, match="silent"):
            align(loaded, silent, "Zyrtec")
    assert align(loaded, noise, "Zyrtec")[0].word == "Zyrtec"


def test_word_labels_are_the_users_words_whatever_espeak_ng_makes_of_them(model_dir):
    assert transcript_words('take 2 tablets, 3x daily! — "Zyrtec"') == [
        "take", "2", "tablets", "3x", "daily", "Zyrtec"
    ]  # fmt: skip
    loaded = load_model(str(model_dir))
    words, tokens = transcript_tokens(loaded, "Zyrtec, 3x (37)")
    groups = tokens.split(" | ")
    assert words == ["Zyrtec", "3x", "37"] and len(groups) == 3
    three_x = pronunciations(["three ex"])["three ex"].replace(" | ", " ")
    assert groups[1] == three_x  # espeak-ng's two words for "3x" are one word's phones
    with pytest.raises(AlignmentError, match="nothing to align"):
        transcript_tokens(loaded, " — ... ")


def peaky(vocab, tokens):
    """Log-probs where frame t emits ``tokens[t]`` (None: the blank) with probability 0.9."""
    log_probs = torch.full((len(tokens), len(vocab)), math.log(0.1 / (len(vocab) - 1)))
    for t, token in enumerate(tokens):
        log_probs[t, vocab.blank_id if token is None else vocab.index[token]] = math.log(0.9)
    return log_probs


@pytest.mark.parametrize("text", ["Zyrtec xylophone Zyrtec", "Zyrtec 中文 Zyrtec"])
def test_a_wildcard_word_takes_the_frames_between_its_neighbours(model_dir, monkeypatch, text):
    # "xylophone" has phones the model lacks; espeak-ng cannot read "中文" in English
    loaded = load_model(str(model_dir))
    zyrtec = pronunciations(["Zyrtec"])["Zyrtec"].split()
    unknown = ["n", "ɑː", None, "s", "l", "ɪ"]  # any phones, a blank among them
    log_probs = peaky(loaded.vocab, [*zyrtec, "|", *unknown, "|", *zyrtec, None, None])
    monkeypatch.setattr("phonex.models.emissions", lambda loaded, waves, **_: [log_probs])
    wave = np.full(16000, 0.1, np.float32)  # any audible clip: the emissions are given
    words = align(loaded, wave, text, unknown="wildcard", blanks="keep")
    frame = loaded.model.config.inputs_to_logits_ratio / loaded.sample_rate
    assert [w.word for w in words] == text.split()
    assert [p[0] for p in words[0].phones] == [p[0] for p in words[2].phones] == zyrtec
    ((label, start, end, score),) = words[1].phones
    first = len(zyrtec) + 1
    assert label == WILDCARD and (start, end) == (first * frame, (first + 6) * frame)
    assert 0 < score < 1


def test_align_flags_a_wildcard_word_on_the_command_line(model_dir, tmp_path, capsys):
    import soundfile as sf

    speech = synthesize("Zyrtec xylophone", Voice("espeak", "en-us"))
    clip = tmp_path / "clip.wav"
    sf.write(clip, speech.wave, speech.sample_rate)
    command = ["align", "--model", str(model_dir), "--audio", str(clip),
               "--text", "Zyrtec xylophone", "--json"]  # fmt: skip
    assert main(command) == 2  # the default: a word the model cannot spell is an error
    assert "does not have: aɪ" in capsys.readouterr().err
    assert main([*command, "--unknown", "wildcard", "--blanks", "keep"]) == 0
    words = json.loads(capsys.readouterr().out)["words"]
    assert [w["word"] for w in words] == ["Zyrtec", "xylophone"]
    assert [p["phone"] for p in words[1]["phones"]] == [WILDCARD]
    assert words[0]["end"] <= words[1]["start"]


def test_windowed_emissions_keep_every_frame_in_place_far_from_window_edges(
    model_dir, monkeypatch
):
    loaded = load_model(str(model_dir))
    hop, output_frames = (loaded.model.config.inputs_to_logits_ratio,
                          loaded.model._get_feat_extract_output_lengths)  # fmt: skip

    def fake_emissions(loaded, waves, **_):
        # per frame: the sample where it starts (waves hold sample numbers), and its distance
        # to the nearer edge of its window
        out = []
        for wave in waves:
            n = int(output_frames(torch.tensor(len(wave))))
            edge = torch.minimum(torch.arange(n), n - 1 - torch.arange(n))
            out.append(torch.stack([torch.from_numpy(wave[::hop][:n]), edge.double()], 1))
        return out

    monkeypatch.setattr("phonex.models.emissions", fake_emissions)
    wave = np.arange(16000 * 5 + 123, dtype=np.float64)
    stitched = windowed_emissions(loaded, wave, window_seconds=1.0)
    frames = int(output_frames(torch.tensor(len(wave))))
    assert stitched[:, 0].tolist() == [hop * f for f in range(frames)]
    # a 1 s window overlaps the next by 0.5 s (25 frames), cut in the middle: every frame is at
    # least 11 frames from an edge of its window, except near the clip's own ends
    clip_edge = torch.minimum(torch.arange(frames), frames - 1 - torch.arange(frames))
    assert (stitched[:, 1] >= torch.clamp(clip_edge, max=11)).all()


def test_windows_lift_the_length_limit(model_dir):
    loaded = load_model(str(model_dir))
    speech = synthesize("Novolog insulin Zyrtec", Voice("espeak", "en-us"))
    wave = np.r_[speech.wave, np.zeros(16000)].astype(np.float32)
    with pytest.raises(AlignmentError, match="longer than max_seconds"):
        align(loaded, wave, "Novolog insulin Zyrtec", max_seconds=1.0)
    words = align(loaded, wave, "Novolog insulin Zyrtec", max_seconds=1.0, window_seconds=1.0)
    assert [w.word for w in words] == ["Novolog", "insulin", "Zyrtec"]
    times = [t for w in words for p in w.phones for t in (p[1], p[2])]
    assert times == sorted(times) and times[-1] <= len(wave) / loaded.sample_rate
    # a clip no longer than the window is one window: the one-pass alignment
    assert align(loaded, wave, "Novolog insulin Zyrtec", window_seconds=60.0) == align(
        loaded, wave, "Novolog insulin Zyrtec"
    )


def test_precomputed_emissions_give_the_same_alignment_without_running_the_model(
    model_dir, monkeypatch
):
    loaded = load_model(str(model_dir))
    wave = synthesize("Zyrtec", Voice("espeak", "en-us")).wave
    expected = align(loaded, wave, "Zyrtec")
    (log_probs,) = phonex.models.emissions(loaded, [wave])

    def no_model_pass(*args, **kwargs):
        raise AssertionError("the model ran although its emissions were given")

    monkeypatch.setattr(phonex.models, "emissions", no_model_pass)
    assert align(loaded, wave, "Zyrtec", log_probs=log_probs) == expected


TRAINED = MODELS_DIR / "bench-drugs-tiny" / "best"


@pytest.mark.slow
@pytest.mark.skipif(not TRAINED.is_dir(), reason=f"no trained model at {TRAINED}")
def test_windowed_alignment_of_a_trained_model_matches_one_pass():
    # a random model's emissions are flat, so its forced path moves with any change to them;
    # a trained model's spikes do not
    loaded = load_model(str(TRAINED))
    text = "Abilify insulin aspart Zyrtec"
    speech = synthesize(text, Voice("espeak", "en-us"))
    wave = np.r_[np.zeros(8000), speech.wave, np.zeros(8000)].astype(np.float32)
    assert len(wave) / loaded.sample_rate > 2.5
    whole = align(loaded, wave, text, blanks="keep")
    windowed = align(loaded, wave, text, window_seconds=1.0, blanks="keep")
    frame = loaded.model.config.inputs_to_logits_ratio / loaded.sample_rate
    pairs = [(p, q) for a, b in zip(whole, windowed, strict=True)
             for p, q in zip(a.phones, b.phones, strict=True)]  # fmt: skip
    assert all(p[0] == q[0] for p, q in pairs)
    assert max(abs(p[i] - q[i]) for p, q in pairs for i in (1, 2)) <= frame + 1e-9
