"""The generic path (processor + model + generate) on three families built tiny: BLIP (image
alone), Florence-2 (task token), LLaVA-NeXT (chat template)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.caption import caption_images, load_captioner
from tr2m_cli.caption.prompts import CAPTION_INSTRUCTION
from tr2m_cli.errors import InputError, WeightsError

FAMILIES = ("blip", "florence2", "llava_next")


def is_clean_line(caption: str) -> bool:
    return caption == " ".join(caption.split()) and "<" not in caption and "[" not in caption


def test_prompt_style_follows_the_model_type(tiny_captioners):
    plans = {family: (c.plan.style, c.plan.prompt) for family, c in tiny_captioners.items()}
    assert plans == {
        "blip": ("none", ""),
        "florence2": ("text", "<CAPTION>"),
        "llava_next": ("chat", CAPTION_INSTRUCTION),
    }
    # The chat prompt went through the processor's chat template.
    chat = tiny_captioners["llava_next"]._text
    assert chat.startswith("USER: <image>\n") and CAPTION_INSTRUCTION in chat and chat.endswith("ASSISTANT:")


@pytest.mark.parametrize("family", FAMILIES)
def test_captions_are_clean_lines_and_deterministic(family, tiny_captioners, tiny_captioner_dirs, photos):
    captioner = tiny_captioners[family]
    captions = captioner.caption(photos, batch_size=3, max_new_tokens=16)
    assert len(captions) == len(photos)
    assert all(caption and is_clean_line(caption) for caption in captions)
    # Greedy decoding: the same photos give the same captions, again and after a fresh load,
    # and batching does not change them.
    assert captioner.caption(photos, batch_size=3, max_new_tokens=16) == captions
    assert captioner.caption(photos, batch_size=1, max_new_tokens=16) == captions
    reloaded = load_captioner(tiny_captioner_dirs[family], device="cpu")
    assert reloaded.caption(photos, batch_size=2, max_new_tokens=16) == captions


def test_decoder_only_answers_come_without_the_prompt(tiny_captioners, photos):
    raw = tiny_captioners["llava_next"].raw_captions(photos[:2], max_new_tokens=8)
    assert all("USER" not in text and "Describe" not in text for text in raw)
    assert all(0 < len(text) <= 8 for text in raw)  # one character per token in the tiny vocabulary


def test_max_new_tokens_bounds_the_caption(tiny_captioners, photos):
    captioner = tiny_captioners["florence2"]
    short = captioner.raw_captions(photos[:1], max_new_tokens=3)[0]
    longer = captioner.raw_captions(photos[:1], max_new_tokens=12)[0]
    assert 0 < len(short) <= 3 < len(longer)  # one character per token in the tiny vocabulary
    assert longer.startswith(short)


def test_every_image_form_gives_the_same_caption(tmp_path, tiny_captioners, photos):
    captioner = tiny_captioners["llava_next"]
    photo = photos[1]
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    forms = [path, str(path), Image.fromarray(photo), photo, photo.astype(np.float32) / 255, photo.astype(np.uint16) * 257]
    captions = captioner.caption(forms, batch_size=len(forms), max_new_tokens=10)
    assert len(set(captions)) == 1


def test_caption_images_api(tmp_path, tiny_captioner_dirs, photos):
    paths = []
    for index, photo in enumerate(photos):
        paths.append(tmp_path / f"p{index}.jpg")
        Image.fromarray(photo).save(paths[-1], quality=95)
    captions = caption_images(paths, tiny_captioner_dirs["florence2"], device="cpu", batch_size=2, max_new_tokens=10)
    assert len(captions) == 3 and all(is_clean_line(c) and c for c in captions)

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="broken.jpg: not an image"):
        caption_images([paths[0], broken], tiny_captioner_dirs["florence2"], device="cpu")


def test_long_captions_are_reported(tmp_path, tiny_captioners, photos):
    path = tmp_path / "long.png"
    Image.fromarray(photos[0]).save(path)
    with pytest.warns(UserWarning, match=r"long.png: caption is 90 CLIP tokens; the text encoder reads the first 77"):
        caption_images([path], tiny_captioners["blip"], token_counter=lambda captions: [90] * len(captions))


def test_half_precision_runs(tiny_captioner_dirs, photos):
    import torch

    captioner = load_captioner(tiny_captioner_dirs["blip"], device="cpu", precision="bf16")
    assert captioner.dtype == torch.bfloat16
    assert captioner.caption(photos[:2], max_new_tokens=6)[0]


def test_prompt_overrides_and_a_chat_style_without_a_template(tiny_captioner_dirs, photos):
    captioner = load_captioner(tiny_captioner_dirs["llava_next"], device="cpu", prompt="Name the room.")
    assert captioner.plan.prompt == "Name the room." and "Name the room." in captioner._text
    with pytest.raises(WeightsError, match="prompt style 'chat' needs a processor with a chat template"):
        load_captioner(tiny_captioner_dirs["blip"], device="cpu", prompt_style="chat")
