"""One generic path for every transformers image-to-text model: processor + model + `generate`.

    from tr2m_cli.caption import caption_images, load_captioner
    captions = caption_images(["a.jpg", "b.png"])                 # the default captioner
    captioner = load_captioner("llava-v1.6-mistral-7b", device="cuda")
    captions = captioner.caption(photos, batch_size=8)

Decoding is greedy unless a registry entry asks for beams: the same photo and model give the same
caption on every run. Each caption is one clean line (see `clean.py`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..errors import WeightsError
from ..model.preprocess import ImageLike, load_image_any, to_float_tensor
from ..runtime import resolve_device, resolve_precision
from ..weights.hub import from_pretrained, quiet_transformers
from .clean import clean_caption
from .length import ClipTokenCounter
from .prompts import PromptPlan, chat_text, plan_prompt
from .registry import DEFAULT_CAPTIONER
from .resolve import CaptionerSpec, download_advice, resolve_captioner


def to_pil(image: ImageLike):
    """Any image tr2m accepts (path, PIL, HxWx3 array, [3, H, W] tensor) → an RGB PIL image."""
    from PIL import Image

    loaded = load_image_any(image)
    if isinstance(loaded, np.ndarray) and loaded.dtype == np.uint8 and loaded.ndim == 3 and loaded.shape[2] == 3:
        return Image.fromarray(loaded)
    tensor = to_float_tensor(loaded)
    return Image.fromarray((tensor.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy())


def _image_text_to_text_types() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)


class Captioner:
    """A loaded captioning model with its processor and prompt; reuse it across calls."""

    def __init__(self, spec: CaptionerSpec, processor, model, plan: PromptPlan) -> None:
        self.spec = spec
        self.processor = processor
        self.model = model
        self.plan = plan
        self.decoder_only = not bool(getattr(model.config, "is_encoder_decoder", False))
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None and self.decoder_only:
            # Batched generation appends after the last position: prompts must be padded on the left.
            tokenizer.padding_side = "left"
        self._text = chat_text(processor, plan.prompt) if plan.style == "chat" else plan.prompt

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def source_label(self) -> str:
        """What manifests record as the caption's source: "generated: <captioner>"."""
        return self.spec.source_label

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _inputs(self, images: list) -> dict:
        if self.plan.style == "none":
            batch = self.processor(images=images, return_tensors="pt")
        else:
            batch = self.processor(images=images, text=[self._text] * len(images), return_tensors="pt", padding=True)
        device, dtype = self.device, self.dtype
        return {
            key: (value.to(device=device, dtype=dtype) if value.is_floating_point() else value.to(device))
            if isinstance(value, torch.Tensor)
            else value
            for key, value in batch.items()
        }

    def _decode(self, generated: torch.Tensor, input_ids: torch.Tensor | None) -> list[str]:
        if input_ids is not None and self.decoder_only and generated.shape[1] >= input_ids.shape[1]:
            # Decoder-only models return the prompt before the answer.
            if torch.equal(generated[:, : input_ids.shape[1]], input_ids):
                generated = generated[:, input_ids.shape[1] :]
        decode = getattr(self.processor, "batch_decode", None) or self.processor.tokenizer.batch_decode
        return decode(generated, skip_special_tokens=True)

    @torch.inference_mode()
    def raw_captions(self, images: Sequence[ImageLike], max_new_tokens: int | None = None) -> list[str]:
        """The decoded text of one batch, before cleaning (for inspecting a model's habits)."""
        pictures = [to_pil(image) for image in images]
        if not pictures:
            return []
        inputs = self._inputs(pictures)
        with quiet_transformers(), warnings.catch_warnings():
            # Generation configs that set a temperature warn when sampling is off; we mean it off.
            warnings.simplefilter("ignore", UserWarning)
            generated = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens or self.spec.max_new_tokens,
                do_sample=False,
                num_beams=self.spec.num_beams,
            )
        return self._decode(generated, inputs.get("input_ids"))

    def caption_batch(self, images: Sequence[ImageLike], max_new_tokens: int | None = None) -> list[str]:
        """Captions for images run together in one `generate` call. A caption may be "" when
        the model produced nothing usable."""
        return [clean_caption(text, self.plan.prompt) for text in self.raw_captions(images, max_new_tokens)]

    def caption(
        self,
        images: Sequence[ImageLike],
        *,
        batch_size: int = 4,
        max_new_tokens: int | None = None,
        progress: bool = False,
    ) -> list[str]:
        """Captions for any number of images, `batch_size` at a time, in order."""
        from tqdm import tqdm

        images = list(images)
        captions: list[str] = []
        with tqdm(total=len(images), unit="caption", disable=not progress, dynamic_ncols=True) as bar:
            for batch in _chunks(images, batch_size):
                captions.extend(self.caption_batch(batch, max_new_tokens))
                bar.update(len(batch))
        return captions


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def load_captioner(
    captioner: str | Path | CaptionerSpec = DEFAULT_CAPTIONER,
    *,
    device: str | torch.device = "auto",
    precision: str | torch.dtype = "auto",
    prompt: str | None = None,
    prompt_style: str | None = None,
) -> Captioner:
    """Load a captioner: a registry name, a Hugging Face id or a folder with processor and model.

    `prompt`/`prompt_style` override the registry's or the model type's defaults (see
    `prompts.py`); `device` and `precision` as for `load_model`.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    spec = captioner if isinstance(captioner, CaptionerSpec) else resolve_captioner(captioner)
    device = resolve_device(device)
    dtype = resolve_precision(precision, device)
    advice = download_advice(spec)
    config = from_pretrained("captioner", spec.model, AutoConfig.from_pretrained, advice=advice)
    if config.model_type not in _image_text_to_text_types():
        raise WeightsError(
            f"captioner '{spec.name}' is a '{config.model_type}' model; captions need an image-to-text model "
            f"that transformers' AutoModelForImageTextToText loads (BLIP, Florence-2, LLaVA-NeXT, SmolVLM, …)"
        )
    processor = from_pretrained("captioner processor", spec.model, AutoProcessor.from_pretrained, advice=advice)
    model = from_pretrained(
        "captioner", spec.model, AutoModelForImageTextToText.from_pretrained, config=config, dtype=dtype, advice=advice
    )
    model.to(device).eval()
    plan = plan_prompt(
        config.model_type,
        has_chat_template=bool(getattr(processor, "chat_template", None)),
        style=prompt_style or spec.prompt_style,
        prompt=prompt if prompt is not None else spec.prompt,
    )
    if plan.style == "chat" and not getattr(processor, "chat_template", None):
        raise WeightsError(f"captioner '{spec.name}': prompt style 'chat' needs a processor with a chat template")
    return Captioner(spec, processor, model, plan)


def caption_images(
    images: Sequence[ImageLike],
    captioner: str | Path | Captioner = DEFAULT_CAPTIONER,
    *,
    device: str | torch.device = "auto",
    precision: str | torch.dtype = "auto",
    batch_size: int = 4,
    max_new_tokens: int | None = None,
    progress: bool = False,
    token_counter: Callable[[Sequence[str]], list[int]] | None = None,
) -> list[str]:
    """Captions for images (paths, PIL images, HxWx3 arrays), one clean line each, in order.

    Captions longer than CLIP's 77 tokens (TR2M would read only their start) are reported as
    warnings naming the image. They are counted with `token_counter` (e.g. a loaded model's
    `model.text_encoder.token_counts`), else CLIP's tokenizer from the Hugging Face cache, else
    estimated.
    """
    if not isinstance(captioner, Captioner):
        captioner = load_captioner(captioner, device=device, precision=precision)
    images = list(images)
    captions = captioner.caption(images, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress)
    for index, (image, count) in enumerate(zip(images, (ClipTokenCounter(token_counter) if token_counter else ClipTokenCounter.from_cache())(captions))):
        if count.truncated:
            label = str(image) if isinstance(image, (str, Path)) else f"image {index}"
            warnings.warn(f"{label}: caption is {count.describe()}", stacklevel=2)
    return captions
