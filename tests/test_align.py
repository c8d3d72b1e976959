import itertools
import json

import numpy as np
import pytest
import torch

from phonex.align import (
    _torchaudio_forced_align,
    align,
    forced_align,
    to_tiers,
    token_spans,
    viterbi,
    viterbi_batch,
    word_spans,
)
from phonex.cli import main
from phonex.intervals import AlignmentError, Interval, read_alignment
from phonex.lexicon import pronunciations
from phonex.metrics import boundary_accuracy, boundary_errors
from phonex.models import load_model
from phonex.phonemes import Vocabulary
from phonex.tts import Voice, synthesize


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


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    vocab = Vocabulary.build(pronunciations(["Novolog insulin", "Zyrtec"]).values())
    folder = tmp_path_factory.mktemp("align-model") / "tiny"
    load_model("tiny-test", vocab).save(folder)
    return folder


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


def test_align_refuses_bad_text_and_overlong_clips(model_dir):
    loaded = load_model(str(model_dir))
    wave = np.zeros(16000, np.float32)
    with pytest.raises(AlignmentError, match="not have"):
        align(loaded, wave, "xylophone jazz")
    with pytest.raises(AlignmentError, match="empty"):
        align(loaded, wave, "  ")
    with pytest.raises(AlignmentError, match="longer than max_seconds"):
        align(loaded, np.zeros(16000 * 3, np.float32), "Zyrtec", max_seconds=2)
    with pytest.raises(AlignmentError, match="do not fit"):
        align(loaded, np.zeros(800, np.float32), "Novolog insulin")
