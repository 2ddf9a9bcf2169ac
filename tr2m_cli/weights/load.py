"""From a model name or folder (or an encoder's hub id or folder) to ready modules.

`model/` builds modules from loaded transformers models; this module finds and loads them, through
the hub rules of `weights.hub` (offline, local folders first, one-line failures).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import WeightsError
from ..model.config import PATCH_SIZE
from .hub import ensure_cached, from_pretrained, resolve_source

if TYPE_CHECKING:
    import torch

    from ..model.encoders import ImageEncoder, RelativeDepthModel, TextEncoder
    from ..model.tr2m import TR2M


def _check_type(role: str, source: str, config, allowed: tuple[str, ...]) -> None:
    if config.model_type not in allowed:
        raise WeightsError(
            f"{role} '{source}' is a {config.model_type!r} model; TR2M needs one of: {', '.join(allowed)}"
        )


def load_image_encoder(source: str | Path, base_dir: str | Path | None = None) -> "ImageEncoder":
    """DINOv2 (or DINOv2 with registers) from a hub id or a folder; `base_dir` resolves relative
    folders (a model folder)."""
    from transformers import AutoConfig, AutoModel

    from ..model.encoders import ImageEncoder

    source = resolve_source(source, base_dir)
    config = from_pretrained("image encoder", source, AutoConfig.from_pretrained)
    _check_type("image encoder", source, config, ("dinov2", "dinov2_with_registers"))
    if int(config.patch_size) != PATCH_SIZE:
        raise WeightsError(f"image encoder '{source}' uses {config.patch_size}-pixel patches; TR2M needs {PATCH_SIZE}")
    model = from_pretrained("image encoder", source, AutoModel.from_pretrained, config=config)
    return ImageEncoder(model)


def load_text_encoder(source: str | Path, base_dir: str | Path | None = None) -> "TextEncoder":
    """CLIP's text tower and tokenizer, from a full CLIP or a text-only checkpoint."""
    from transformers import AutoConfig, AutoTokenizer, CLIPTextModelWithProjection

    from ..model.encoders import TextEncoder

    source = resolve_source(source, base_dir)
    config = from_pretrained("text encoder", source, AutoConfig.from_pretrained)
    _check_type("text encoder", source, config, ("clip", "clip_text_model"))
    if config.model_type == "clip":
        # A full CLIP checkpoint (as openai/clip-vit-large-patch14 is): take its text tower, whose
        # projection width is recorded on the outer config.
        projection_dim = config.projection_dim
        config = config.text_config
        config.projection_dim = projection_dim
    model = from_pretrained("text encoder", source, CLIPTextModelWithProjection.from_pretrained, config=config)
    tokenizer = from_pretrained("text tokenizer", source, AutoTokenizer.from_pretrained)
    return TextEncoder(model, tokenizer)


def load_depth_model(source: str | Path, base_dir: str | Path | None = None) -> "RelativeDepthModel":
    """Depth Anything (any transformers depth-estimation model giving relative inverse depth)."""
    from transformers import AutoConfig, AutoModelForDepthEstimation

    from ..model.encoders import RelativeDepthModel

    source = resolve_source(source, base_dir)
    config = from_pretrained("relative depth model", source, AutoConfig.from_pretrained)
    model = from_pretrained(
        "relative depth model", source, AutoModelForDepthEstimation.from_pretrained, config=config
    )
    return RelativeDepthModel(model)


def load_model(
    model: str | Path = "tr2m-official",
    *,
    device: "str | torch.device" = "auto",
    precision: "str | torch.dtype" = "auto",
    image_encoder: str | Path | None = None,
    text_encoder: str | Path | None = None,
    depth_model: str | Path | None = None,
    download: bool = True,
    progress: bool = True,
) -> "TR2M":
    """Build TR2M from a registry name (downloaded on first use unless offline) or a model folder.

    The encoder arguments override the folder's own (a Hugging Face id or a local folder), e.g. to
    point at encoders copied to an offline machine. `device`: auto|cuda|cuda:N|mps|cpu;
    `precision`: auto|fp32|fp16|bf16 (auto is bf16/fp16 on CUDA, fp32 elsewhere; fp32 is what
    the authors evaluated with).
    """
    from ..model.checkpoint import load_head
    from ..model.tr2m import TR2M
    from ..runtime import resolve_device, resolve_precision
    from .folder import read_model_folder
    from .resolve import resolve_model

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
    if download:  # first use: fetch hub encoders with a progress bar before loading them
        for role, source in (
            ("image encoder", encoders.image),
            ("text encoder", encoders.text),
            ("relative depth model", encoders.relative_depth),
        ):
            ensure_cached(role, resolve_source(source, folder), progress=progress)
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
    from ..model.tr2m import TR2M
    from .download import sha256_of
    from .folder import read_model_folder

    if isinstance(model, TR2M):
        digest = getattr(model, "head_sha256", None)
        if digest is None:
            from ..model.checkpoint import head_sha256

            digest = head_sha256(model.head)
        return {"name": model.spec.name, "head_sha256": digest}
    spec = read_model_folder(model)
    return {"name": spec.name, "head_sha256": sha256_of(Path(model) / spec.head_weights)}
