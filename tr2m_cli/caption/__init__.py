"""Captions for photos that have none, from a local vision-language model (`tr2m caption`).

    from tr2m_cli.caption import caption_images
    captions = caption_images(["kitchen.jpg", "street.png"])   # ["A kitchen with …", …]

Importing this package is instant; transformers loads when a captioner is first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "caption_images": "tr2m_cli.caption.captioner",
    "load_captioner": "tr2m_cli.caption.captioner",
    "Captioner": "tr2m_cli.caption.captioner",
    "resolve_captioner": "tr2m_cli.caption.resolve",
    "fetch_captioner": "tr2m_cli.caption.resolve",
    "CaptionerSpec": "tr2m_cli.caption.resolve",
    "clean_caption": "tr2m_cli.caption.clean",
    "DEFAULT_CAPTIONER": "tr2m_cli.caption.registry",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:
    from .captioner import Captioner, caption_images, load_captioner
    from .clean import clean_caption
    from .registry import DEFAULT_CAPTIONER
    from .resolve import CaptionerSpec, fetch_captioner, resolve_captioner


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tr2m_cli.caption' has no attribute {name!r}")
