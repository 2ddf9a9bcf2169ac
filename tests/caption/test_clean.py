"""Raw decoded text as models really return it → one clean line."""

from __future__ import annotations

import pytest

from tr2m_cli.caption.clean import clean_caption
from tr2m_cli.caption.prompts import CAPTION_INSTRUCTION


@pytest.mark.parametrize(
    ("raw", "prompt", "expected"),
    [
        # LLaVA v1.6 Vicuna decoded without slicing: the whole chat comes back.
        (f"USER: \n{CAPTION_INSTRUCTION} ASSISTANT: A computer lab with multiple desks and chairs.", CAPTION_INSTRUCTION,
         "A computer lab with multiple desks and chairs."),
        # LLaVA v1.6 Mistral's layout.
        (f"[INST] <image>\n{CAPTION_INSTRUCTION} [/INST] A desk with two monitors.", CAPTION_INSTRUCTION,
         "A desk with two monitors."),
        # The instruction echoed with no chat markers.
        (f"{CAPTION_INSTRUCTION} A street with parked cars.", CAPTION_INSTRUCTION, "A street with parked cars."),
        # BLIP continues its prefix; the prefix is not part of the scene description. BLIP writes
        # lower case and no full stop; captions become sentences like the paper's.
        ("a photography of a living room with a couch", "a photography of", "A living room with a couch."),
        ("a computer lab with many desks and chairs", "", "A computer lab with many desks and chairs."),
        # Special tokens that skip_special_tokens leaves in, Florence-2 location tokens.
        ("</s><s>A street<loc_12><loc_40> with cars.</s><pad><pad>", "<CAPTION>", "A street with cars."),
        ("<|im_start|>assistant\nA bedroom with a bed.<|im_end|><|endoftext|>", "", "A bedroom with a bed."),
        # Newlines, tabs and runs of spaces.
        ("A kitchen\n\nwith   a\ttable\r\nand chairs.", "", "A kitchen with a table and chairs."),
        # Quotes around the whole answer, a leading colon.
        ('  "A lab with desks."  ', "", "A lab with desks."),
        (": A park with trees.", "", "A park with trees."),
        # A second sentence cut by max_new_tokens is dropped; a lone unfinished one is kept.
        ("A kitchen with a table. The walls are painted in a light", "", "A kitchen with a table."),
        ("A living room with a couch and", "", "A living room with a couch and."),
        ("A street sign that says (stop)", "", "A street sign that says (stop)"),
        # Nothing usable.
        ("</s><pad>", "", ""),
        ("   \n ", "", ""),
    ],
)
def test_clean_caption(raw, prompt, expected):
    assert clean_caption(raw, prompt) == expected


def test_prompt_words_later_in_a_caption_are_kept():
    caption = "A poster that says describe this image on a wall of a long corridor with many doors."
    assert clean_caption(caption, "describe this image") == caption


def test_clean_caption_is_one_line_and_idempotent():
    raw = "USER: hi ASSISTANT:\n\n  an office\nwith  desks.\n\n"
    once = clean_caption(raw, "hi")
    assert once == "An office with desks."
    assert clean_caption(once, "hi") == once
