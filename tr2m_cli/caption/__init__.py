"""Captions for photos that have none, from a local vision-language model (`tr2m caption`).

    from tr2m_cli.caption import caption_images, load_captioner
    captions = caption_images(["kitchen.jpg", "street.png"])   # ["A kitchen with …", …]
    captioner = load_captioner("florence-2-base", device="cuda")  # reuse across calls

Modules: `registry` ([captioners.NAME] tables), `resolve` (NAME|ID|DIR → what to load),
`prompts` (how each model family is asked), `captioner` (load, generate, batch), `clean` (one
clean line), `length` (CLIP's 77-token limit), `run` (folders → sidecars / caption files, and
`convert --auto-caption`), `testing` (tiny captioners).
"""

from .captioner import Captioner, caption_images, load_captioner
from .clean import clean_caption
from .registry import DEFAULT_CAPTIONER
from .resolve import CaptionerSpec, fetch_captioner, resolve_captioner

__all__ = [
    "DEFAULT_CAPTIONER",
    "Captioner",
    "CaptionerSpec",
    "caption_images",
    "clean_caption",
    "fetch_captioner",
    "load_captioner",
    "resolve_captioner",
]
