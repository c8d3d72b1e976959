"""Layer-wise probing: how much phone identity can a linear classifier read from each layer?

The pipeline, one function each:

1. :func:`extract_hidden_states`: every layer's hidden states for a list of clips, written to
   disk as raw float16 arrays (one per layer) and opened memory-mapped, so a second run and a
   probe of one layer read only what they need.
2. :func:`frame_labels`: the phone under each frame's centre, from a reference alignment
   (espeak-ng's own times for synthetic clips, TextGrid or TIMIT files) or a forced alignment.
3. :func:`probe_layers`: a linear probe per layer, trained on some voices and tested on others,
   beside a majority-class baseline and a *control task*, with bootstrap confidence intervals.

The control task follows Hewitt and Liang (2019): labels that are a fixed but meaningless
function of the input, so a probe can only learn them by memorising. They map each word type to
a random label; here the phone itself is the property probed, so mapping phone types would only
rename the classes. The memorisable identity one level up is the phone in context (left
neighbour, phone, right neighbour): each such triphone type gets a random phone label drawn from
the training label distribution. *Selectivity* is phone accuracy minus control accuracy: high
when the layer makes phones linearly readable without giving the probe room to memorise.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from phonex.intervals import Interval

NO_LABEL = ""  # frames outside every phone (silence, or past the last phone)


# --- hidden states --------------------------------------------------------------------------


@dataclass
class HiddenStates:
    """Hidden states of every layer for a list of clips, concatenated along time.

    Attributes:
        layers: one memory-mapped ``[frames, dim]`` float16 array per layer;
            layer 0 is the transformer's input (the projected CNN features or filterbank
            features after subsampling), layer k the output of block k.
        offsets: clip ``i`` owns frames ``offsets[i]:offsets[i + 1]``.
        ids: the clips' ids, in order.
        frame_seconds: the frame shift (20 ms for wav2vec2, 40 ms for Speech2Text).
    """

    layers: list[np.ndarray]
    offsets: np.ndarray
    ids: list[str]
    frame_seconds: float

    def frames(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def clip(self, i: int, layer: int) -> np.ndarray:
        return self.layers[layer][self.offsets[i] : self.offsets[i + 1]]


def encoder_of(model) -> tuple[torch.nn.Module, str, float]:
    """The part of a model whose layers are probed, its input kind and its frame shift.

    wav2vec2, HuBERT, XLSR (``*ForCTC``, or their bare models) and Whisper's CTC encoder
    (:mod:`phonex.whisper_ctc`) take waveforms; Speech2Text's encoder takes filterbank features
    (10 ms) subsampled by its stride-2 convolutions.

    Raises:
        ValueError: a model that cannot return hidden states.
    """
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):  # Speech2Text
        stride = 2 ** getattr(config, "num_conv_layers", 2)
        return model.get_encoder(), "input_features", 0.01 * stride
    if hasattr(config, "inputs_to_logits_ratio") and hasattr(config, "num_hidden_layers"):
        return model, "input_values", config.inputs_to_logits_ratio / 16000
    raise ValueError(
        f"{type(model).__name__} has no hidden states phonex can probe: expected a wav2vec2-style "
        "model (wav2vec2, HuBERT, XLSR) or an encoder-decoder with get_encoder() (Speech2Text)"
    )


@torch.no_grad()
def clip_hidden_states(
    model, wave: np.ndarray, processor=None, normalize: bool | None = None
) -> list[torch.Tensor]:
    """Every layer's ``[frames, dim]`` hidden states for one 16 kHz waveform (one pass).

    ``normalize``: zero mean and unit variance first, as wav2vec2 takes it; ``None``: unless
    the model computes its own features from the raw waveform (Whisper's CTC encoder).
    """
    from phonex.data import normalize_wave
    from phonex.whisper_ctc import MODEL_TYPE as WHISPER_CTC

    encoder, kind, _ = encoder_of(model)
    device = next(model.parameters()).device
    if kind == "input_features":
        if processor is None:
            raise ValueError("a Speech2Text encoder needs its processor (see load_seq2seq)")
        inputs = processor(wave, sampling_rate=16000, return_tensors="pt")
        inputs = {"input_features": inputs["input_features"].to(device)}
    else:  # one clip per pass: no padding, so no attention mask question
        if normalize is None:
            normalize = getattr(model.config, "model_type", "") != WHISPER_CTC
        wave = normalize_wave(wave) if normalize else np.asarray(wave, dtype=np.float32)
        inputs = {"input_values": torch.from_numpy(wave)[None].to(device)}
    was_training = model.training
    model.eval()
    outputs = encoder(**inputs, output_hidden_states=True)
    model.train(was_training)
    if not outputs.hidden_states:
        raise ValueError(f"{type(model).__name__} returned no hidden states")
    return [h[0].float().cpu() for h in outputs.hidden_states]


def fingerprint(model, rows) -> str:
    """A cache key: the model's weights and the clips (ids and audio checksums)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for row in rows:
        digest.update(f"{row.id}\t{row.checksum}\n".encode())
    return digest.hexdigest()[:16]


def extract_hidden_states(
    model, rows, cache_dir: str | Path | None = None, processor=None, progress: bool = True
) -> HiddenStates:
    """Hidden states of every layer for ``rows`` (manifest rows), cached on disk.

    Args:
        model: a :class:`phonex.models.LoadedModel`, a transformers model with hidden states,
            or a Speech2Text model with its ``processor``.
        rows: utterances (``.id``, ``.audio``, ``.checksum``).
        cache_dir: where to keep ``<fingerprint>/layer-XX.f16`` and ``meta.json`` (default:
            ``data/interim/hidden-states``); a second call with the same weights and clips only
            opens them.
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    from phonex.audio import load_audio
    from phonex.config import INTERIM_DIR

    if not rows:
        raise ValueError("no clips to extract hidden states from")
    normalize = getattr(getattr(model, "feature_extractor", None), "do_normalize", None)
    model = getattr(model, "model", model)  # a LoadedModel
    _, _, frame_seconds = encoder_of(model)
    folder = Path(cache_dir or INTERIM_DIR / "hidden-states") / fingerprint(model, rows)
    if (folder / "meta.json").is_file():
        return _open_cache(folder)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files, offsets = [], [0]
    try:
        for row in tqdm(rows, desc="hidden states", disable=not progress):
            wave = load_audio(row.audio, 16000)
            states = clip_hidden_states(model, wave, processor, normalize)
            if not files:
                files = [open(tmp / f"layer-{k:02d}.f16", "wb") for k in range(len(states))]  # noqa: SIM115
            for f, h in zip(files, states):
                f.write(h.numpy().astype(np.float16).tobytes())
            offsets.append(offsets[-1] + states[0].shape[0])
    finally:
        for f in files:
            f.close()
    meta = {"ids": [row.id for row in rows], "offsets": offsets, "dim": int(states[0].shape[1]),
            "layers": len(files), "frame_seconds": frame_seconds}  # fmt: skip
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # complete or absent: a killed run leaves only a .partial folder
    return _open_cache(folder)


def _open_cache(folder: Path) -> HiddenStates:
    meta = json.loads((folder / "meta.json").read_text())
    shape = (meta["offsets"][-1], meta["dim"])
    layers = [np.memmap(folder / f"layer-{k:02d}.f16", np.float16, "r", shape=shape)
              for k in range(meta["layers"])]  # fmt: skip
    return HiddenStates(layers, np.array(meta["offsets"]), meta["ids"], meta["frame_seconds"])


# --- frame labels ---------------------------------------------------------------------------


@dataclass
class FrameLabels:
    """Per frame of a :class:`HiddenStates`: the phone, and the triphone type of the control task."""

    phones: np.ndarray  # str; NO_LABEL outside every phone
    contexts: np.ndarray  # "left-phone+right" of the phone segment under the frame
    clips: np.ndarray  # the clip index of each frame (for bootstrap over clips)


def frame_labels(intervals: Sequence[Interval], frames: int, frame_seconds: float):
    """The phone under each frame's centre, and its triphone context (``NO_LABEL`` outside)."""
    phones = np.full(frames, NO_LABEL, dtype=object)
    contexts = np.full(frames, NO_LABEL, dtype=object)
    centres = (np.arange(frames) + 0.5) * frame_seconds
    labels = [i.label for i in intervals]
    for k, interval in enumerate(intervals):
        inside = (centres >= interval.start) & (centres < interval.end)
        left = labels[k - 1] if k > 0 else "#"
        right = labels[k + 1] if k + 1 < len(labels) else "#"
        phones[inside], contexts[inside] = interval.label, f"{left}-{interval.label}+{right}"
    return phones, contexts


def reference_phones(row, loaded=None) -> list[Interval]:
    """A clip's phone intervals: its reference alignment, or a forced alignment by ``loaded``."""
    from phonex.intervals import read_alignment

    if row.alignment:
        return read_alignment(row.alignment)["phones"]
    if loaded is None:
        raise ValueError(f"{row.id}: no reference alignment; pass a model to force-align it")
    from phonex.align import align, to_tiers
    from phonex.audio import load_audio

    wave = load_audio(row.audio, loaded.sample_rate)
    return to_tiers(align(loaded, wave, row.text, tokens=row.phones or None))["phones"]


def label_frames(states: HiddenStates, rows, loaded=None) -> FrameLabels:
    """:class:`FrameLabels` for every frame of ``states`` (rows in the same order)."""
    phones, contexts, clips = [], [], []
    for i, row in enumerate(rows):
        p, c = frame_labels(reference_phones(row, loaded), states.frames(i), states.frame_seconds)
        phones.append(p), contexts.append(c), clips.append(np.full(len(p), i))
    return FrameLabels(np.concatenate(phones), np.concatenate(contexts), np.concatenate(clips))


def control_task(train: FrameLabels, test: FrameLabels, seed: int = 0) -> dict[str, str]:
    """Each triphone type -> a random phone label, drawn from the training label distribution."""
    rng = np.random.default_rng(seed)
    known = train.phones != NO_LABEL
    labels, counts = np.unique(train.phones[known], return_counts=True)
    types = sorted(set(train.contexts[known]) | set(test.contexts[test.phones != NO_LABEL]))
    drawn = rng.choice(labels, size=len(types), p=counts / counts.sum())
    return dict(zip(types, drawn))


# --- probes ---------------------------------------------------------------------------------


def fit_linear_probe(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, max_iter: int = 100, l2: float = 1e-4,
    seed: int = 0,
) -> torch.nn.Module:  # fmt: skip
    """Multinomial logistic regression on standardised input, fitted full-batch with L-BFGS.

    Full-batch L-BFGS converges in ~100 steps on tens of thousands of frames, far faster on a
    CPU than minibatch epochs, and it has no learning rate to tune.
    """
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-5
    linear = torch.nn.Linear(x.shape[1], n_classes)
    inputs = (x - mean) / std
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=max_iter,
                                  line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        optimizer.zero_grad()
        loss = (
            torch.nn.functional.cross_entropy(linear(inputs), y)
            + l2 * linear.weight.square().sum()
        )
        loss.backward()
        return loss

    optimizer.step(closure)
    return torch.nn.Sequential(_Standardize(mean, std), linear).eval()


class _Standardize(torch.nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def bootstrap_ci(correct: np.ndarray, clips: np.ndarray, n: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Confidence interval of frame accuracy, resampling whole clips (frames of a clip are not
    independent)."""
    ids, clip_of = np.unique(clips, return_inverse=True)
    hits = np.bincount(clip_of, weights=correct.astype(float), minlength=len(ids))
    sizes = np.bincount(clip_of, minlength=len(ids))
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(n, len(ids)))
    accuracy = hits[draws].sum(1) / sizes[draws].sum(1)
    tail = (1 - level) / 2
    return float(np.quantile(accuracy, tail)), float(np.quantile(accuracy, 1 - tail))


@dataclass
class ProbeResults:
    """Per layer and task, accuracy with its interval; the phone predictions of every layer."""

    table: pd.DataFrame  # layer, task, accuracy, ci_low, ci_high, majority, selectivity...
    truth: np.ndarray  # test phone per labelled frame
    predictions: dict[int, np.ndarray]  # layer -> predicted phone per labelled frame
    hits: dict[tuple[int, str], np.ndarray]  # (layer, task) -> right or wrong per labelled frame
    clips: np.ndarray  # the clip of each labelled test frame (pools folds, resamples clips)

    @property
    def best_layer(self) -> int:
        phone = self.table[self.table.task == "phone"]
        return int(phone.loc[phone.accuracy.idxmax(), "layer"])


def probe_layers(
    train: HiddenStates, train_labels: FrameLabels, test: HiddenStates, test_labels: FrameLabels,
    layers: Sequence[int] | None = None, max_iter: int = 100, max_train_frames: int | None = None,
    seed: int = 0, progress: bool = True,
) -> ProbeResults:  # fmt: skip
    """Train and test a linear probe per layer, for phones and for the control task.

    Args:
        train, test: hidden states of disjoint voices or speakers (the caller splits them).
        train_labels, test_labels: from :func:`label_frames`; unlabelled frames are left out, and
            test phones never seen in training count as errors.
        layers: which layers (default: all).
        max_iter: L-BFGS steps per probe.
        max_train_frames: a random subset of training frames, for speed (default: all).
    """
    from tqdm.auto import tqdm

    control = control_task(train_labels, test_labels, seed)
    keep_train = np.flatnonzero(train_labels.phones != NO_LABEL)
    if max_train_frames and len(keep_train) > max_train_frames:
        rng = np.random.default_rng(seed)
        keep_train = np.sort(rng.choice(keep_train, max_train_frames, replace=False))
    keep_test = np.flatnonzero(test_labels.phones != NO_LABEL)
    if not len(keep_train) or not len(keep_test):
        raise ValueError("no labelled frames to probe: check the alignments of the clips")
    classes = sorted(set(train_labels.phones[keep_train]))
    index = {label: i for i, label in enumerate(classes)}
    truth = test_labels.phones[keep_test]
    targets = {
        "phone": (train_labels.phones[keep_train], truth),
        "control": ([control[c] for c in train_labels.contexts[keep_train]],
                    np.array([control[c] for c in test_labels.contexts[keep_test]])),
    }  # fmt: skip
    clips = test_labels.clips[keep_test]
    rows, predictions, hits = [], {}, {}
    layers = range(len(train.layers)) if layers is None else layers
    for layer in tqdm(layers, desc="probing layers", disable=not progress):
        x_train = torch.from_numpy(np.asarray(train.layers[layer][keep_train], np.float32))
        x_test = torch.from_numpy(np.asarray(test.layers[layer][keep_test], np.float32))
        for task, (y_train, y_test) in targets.items():
            y = torch.tensor([index[label] for label in y_train])
            probe = fit_linear_probe(x_train, y, len(classes), max_iter=max_iter, seed=seed)
            with torch.no_grad():
                predicted = np.array(classes, dtype=object)[probe(x_test).argmax(1).numpy()]
            correct = predicted == y_test
            hits[(layer, task)] = correct
            low, high = bootstrap_ci(correct, clips, seed=seed)
            values, counts = np.unique(y_train, return_counts=True)
            majority = float(np.mean(y_test == values[counts.argmax()]))
            rows.append({"layer": layer, "task": task, "accuracy": float(correct.mean()),
                         "ci_low": low, "ci_high": high, "majority": majority,
                         "train_frames": len(keep_train), "test_frames": len(keep_test)})  # fmt: skip
            if task == "phone":
                predictions[layer] = predicted
    table = pd.DataFrame(rows)
    phone = table[table.task == "phone"].set_index("layer").accuracy
    control_accuracy = table[table.task == "control"].set_index("layer").accuracy
    table["selectivity"] = table.layer.map(phone - control_accuracy)
    return ProbeResults(table, truth, predictions, hits, clips)


def accuracy_by_class(results: ProbeResults, layer: int) -> pd.DataFrame:
    """Phone accuracy at one layer per broad class (vowel, stop, fricative, nasal, ...), of
    espeak-ng phones or TIMIT-39 labels."""
    from phonex.phonesets import PHONE_CLASSES, broad_class

    frame = pd.DataFrame(
        {"phone": results.truth, "correct": results.predictions[layer] == results.truth}
    )
    frame["class"] = frame.phone.map(
        lambda phone: PHONE_CLASSES.get(phone) or broad_class(phone, unknown="other")
    )
    return frame.groupby("class").agg(frames=("correct", "size"), accuracy=("correct", "mean"))
