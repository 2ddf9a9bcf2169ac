"""Tiny TR2M models with random weights, for tests, benchmarks and trying the tools offline.

They are built from transformers configs (no download), saved with `save_pretrained`, and then
loaded back through the same code path as real models: a model folder whose tr2m.json points at
encoder folders inside it. Their depth is meaningless; their shapes, types and plumbing are real.

    from tr2m_cli.testing import make_tiny_model_folder
    folder = make_tiny_model_folder("/tmp/tiny")   # then: tr2m convert … --model /tmp/tiny
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .model.config import HeadConfig

TINY_IMAGE_CHANNELS = 32
TINY_TEXT_CHANNELS = 16


def tiny_head_config(image_channels: int = TINY_IMAGE_CHANNELS, text_channels: int = TINY_TEXT_CHANNELS) -> HeadConfig:
    return HeadConfig(
        image_channels=image_channels,
        text_channels=text_channels,
        attention_heads=2,
        mlp_channels=4 * image_channels,
        projection_channels=24,
        trunk_channels=16,
        head_channels=8,
        head_hidden_channels=8,
    )


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes that byte-level BPE vocabularies use (GPT-2/CLIP)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def write_clip_vocab(folder: str | Path) -> tuple[Path, Path]:
    """A minimal CLIP BPE vocabulary: start/end tokens and every byte, plain and word-final; no
    merges, so every character is one token (enough to exercise truncation at 77)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in _byte_symbols():
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(symbol + "</w>", len(vocab))
    vocab_path, merges_path = folder / "vocab.json", folder / "merges.txt"
    vocab_path.write_text(json.dumps(vocab), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n", encoding="utf-8")
    return vocab_path, merges_path


def _quiet():
    from .weights.hub import quiet_transformers

    return quiet_transformers()


def tiny_dinov2_config(hidden: int = TINY_IMAGE_CHANNELS, layers: int = 2, image_size: int = 56, **extra):
    """`image_size` sets the stored position grid: 56 → 4×4; 518 → 37×37, as the real models."""
    from transformers import Dinov2Config

    return Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=image_size,
        patch_size=14,
        **extra,
    )


def save_tiny_image_encoder(
    folder: str | Path, seed: int = 0, hidden: int = TINY_IMAGE_CHANNELS, image_size: int = 56
) -> Path:
    import torch
    from transformers import Dinov2Model

    torch.manual_seed(seed)
    with _quiet():
        Dinov2Model(tiny_dinov2_config(hidden, image_size=image_size)).save_pretrained(folder)
    return Path(folder)


def save_tiny_text_encoder(
    folder: str | Path, seed: int = 0, projection_dim: int = TINY_TEXT_CHANNELS, full_clip: bool = True
) -> Path:
    """A CLIP with its tokenizer. `full_clip` saves text and vision towers together, as the
    real openai/clip-vit-large-patch14 repository is laid out."""
    import tempfile

    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    folder = Path(folder)
    with tempfile.TemporaryDirectory() as scratch:
        vocab, merges = write_clip_vocab(scratch)
        tokenizer = CLIPTokenizer(vocab=str(vocab), merges=str(merges))
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    with _quiet():
        if full_clip:
            vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14)
            model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim))
        else:
            model = CLIPTextModelWithProjection(CLIPTextConfig(**text, projection_dim=projection_dim))
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def save_tiny_depth_model(folder: str | Path, seed: int = 0, image_size: int = 56) -> Path:
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    backbone = tiny_dinov2_config(
        32, layers=4, image_size=image_size, out_indices=[1, 2, 3, 4], reshape_hidden_states=False
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        patch_size=14,
    )
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config).eval()
    with torch.no_grad():
        # transformers' small random init makes the final ReLU's input ~1e-6, so D_r would be a
        # constant. Kaiming convs plus a calibrated last layer give a varied D_r in about [0, 3]
        # with a few zeros, as a trained model's relative inverse depth has.
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        seen = {}
        hook = model.head.conv3.register_forward_hook(lambda m, i, o: seen.setdefault("z", o))
        model(pixel_values=torch.randn(2, 3, 112, 140, generator=torch.Generator().manual_seed(seed)))
        hook.remove()
        z, last = seen["z"], model.head.conv3
        last.weight.div_(2 * z.std())
        last.bias.sub_(z.mean()).div_(2 * z.std()).add_(1.5)
    with _quiet():
        model.save_pretrained(folder)
    return Path(folder)


def save_tiny_encoders(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    folder = Path(folder)
    return {
        "image": save_tiny_image_encoder(folder / "dinov2", seed),
        "text": save_tiny_text_encoder(folder / "clip", seed),
        "relative_depth": save_tiny_depth_model(folder / "depth_anything", seed),
    }


def make_tiny_model_folder(folder: str | Path, seed: int = 0, name: str = "tiny-random") -> Path:
    """A complete, self-contained model folder with tiny random encoders inside it."""
    import torch

    from .model.head import ScaleShiftHead
    from .weights.folder import save_model_folder

    folder = Path(folder)
    encoders = save_tiny_encoders(folder / "encoders", seed)
    torch.manual_seed(seed)
    head = ScaleShiftHead(tiny_head_config())
    with torch.no_grad():
        # The reference init gives logits of ±50, i.e. maps of 1e-24..1e19; damp the last layers
        # so an untrained tiny model answers in a plausible range (A ≈ 0.3, B ≈ 0.1: 1–10 m).
        for output, level in ((head.scale_head, 0.3), (head.shift_head, 0.1)):
            output.conv3.weight.mul_(0.02)
            output.conv3.bias.fill_(math.log(level / output.coefficient))
    return save_model_folder(
        head,
        folder,
        image_encoder=encoders["image"],
        text_encoder=encoders["text"],
        depth_model=encoders["relative_depth"],
        name=name,
        provenance={"note": "random weights for tests; depth values are meaningless"},
        overwrite=True,
    )


def build_full_size_random_model(device: str = "cpu", precision: str = "fp32"):
    """TR2M at the released sizes (DINOv2 ViT-L/14, CLIP ViT-L/14 text, Depth Anything small, the
    18.96 M-parameter head) with random weights, built from configs: for benchmarks, which need
    real sizes and no download. Its depth is meaningless."""
    import tempfile

    import torch
    from transformers import (
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        Dinov2Model,
    )

    from .model.config import HeadConfig, ModelSpec
    from .model.encoders import ImageEncoder, RelativeDepthModel, TextEncoder
    from .model.head import ScaleShiftHead
    from .model.tr2m import TR2M
    from .runtime import resolve_device, resolve_precision

    torch.manual_seed(0)
    with _quiet(), tempfile.TemporaryDirectory() as scratch:
        vocab, merges = write_clip_vocab(scratch)
        tokenizer = CLIPTokenizer(vocab=str(vocab), merges=str(merges))  # byte-level: every id < 49408
        image = Dinov2Model(
            Dinov2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, image_size=518, patch_size=14)
        )
        text = CLIPTextModelWithProjection(
            CLIPTextConfig(
                vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12, max_position_embeddings=77, projection_dim=768,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        )
        depth = DepthAnythingForDepthEstimation(DepthAnythingConfig())  # the depth-anything-small layout
    model = TR2M(
        ImageEncoder(image), TextEncoder(text, tokenizer), RelativeDepthModel(depth), ScaleShiftHead(HeadConfig()),
        ModelSpec(name="full-size-random"),
    )  # fmt: skip
    target = resolve_device(device)
    return model.eval().to(target).set_precision(resolve_precision(precision, target))
