"""One call from a model name or folder to a ready TR2M on the chosen device."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..runtime import resolve_device, resolve_precision
from .checkpoint import load_head
from .encoders import load_depth_model, load_image_encoder, load_text_encoder
from .tr2m import TR2M


def load_model(
    model: str | Path = "tr2m-official",
    *,
    device: str | torch.device = "auto",
    precision: str | torch.dtype = "auto",
    image_encoder: str | Path | None = None,
    text_encoder: str | Path | None = None,
    depth_model: str | Path | None = None,
    download: bool = True,
    progress: bool = True,
) -> TR2M:
    """Build TR2M from a registry name (downloaded on first use unless offline) or a model folder.

    The encoder arguments override the folder's own (a Hugging Face id or a local folder), e.g. to
    point at encoders copied to an offline machine. `device`: auto|cuda|cuda:N|mps|cpu;
    `precision`: auto|fp32|fp16|bf16 (auto is bf16/fp16 on CUDA, fp32 elsewhere).
    """
    from ..weights.folder import read_model_folder
    from ..weights.resolve import resolve_model

    folder = resolve_model(model, download=download, progress=progress)
    spec = read_model_folder(folder)
    encoders = replace(
        spec.encoders,
        **{
            key: str(value)
            for key, value in (("image", image_encoder), ("text", text_encoder), ("relative_depth", depth_model))
            if value is not None
        },
    )
    spec = replace(spec, encoders=encoders)
    target = resolve_device(device)
    dtype = resolve_precision(precision, target)
    head = load_head(folder / spec.head_weights, spec.head)
    tr2m = TR2M(
        image_encoder=load_image_encoder(encoders.image, base_dir=folder),
        text_encoder=load_text_encoder(encoders.text, base_dir=folder),
        depth_model=load_depth_model(encoders.relative_depth, base_dir=folder),
        head=head,
        spec=spec,
    )
    # Which weights made an output: recorded in every manifest record and TIFF (jobs.fingerprint).
    tr2m.model_folder = Path(folder)
    tr2m.head_sha256 = model_identity(folder)["head_sha256"]
    tr2m.eval()
    return tr2m.to(target).set_precision(dtype)


def model_identity(model) -> dict:
    """{"name", "head_sha256"} of a model folder (without loading it) or of a loaded TR2M: what a
    manifest record says made an output. A TR2M not loaded from a folder gets the sha256 of its
    head as `save_head` would write it."""
    from ..weights.download import sha256_of
    from ..weights.folder import read_model_folder

    if isinstance(model, TR2M):
        digest = getattr(model, "head_sha256", None)
        if digest is None:
            from .checkpoint import head_sha256

            digest = head_sha256(model.head)
        return {"name": model.spec.name, "head_sha256": digest}
    spec = read_model_folder(model)
    return {"name": spec.name, "head_sha256": sha256_of(Path(model) / spec.head_weights)}
