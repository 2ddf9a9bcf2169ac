"""Is a caption longer than the CLIP text encoder reads?

TR2M encodes captions with CLIP's text tower, which reads 77 tokens (start and end included) and
drops the rest; a generated caption past that point is silently cut, so it is reported. Counts are
exact with a CLIP tokenizer (the TR2M model's, or CLIP's from the Hugging Face cache); without one
they are a lower bound from words and punctuation (every word is at least one BPE token).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..model.encoders import CLIP_CONTEXT_LENGTH, DEFAULT_TEXT_ENCODER, clean_for_clip, clip_token_ids
from ..weights.hub import quiet_transformers, resolve_source

# CLIP's pre-tokeniser splits letters runs, single digits and punctuation runs.
_PIECES = re.compile(r"'(?:s|t|re|ve|m|ll|d)|[^\W\d_]+|\d|[^\w\s]+|_+", re.IGNORECASE)


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    exact: bool  # False: a lower bound (no CLIP tokenizer at hand)

    @property
    def truncated(self) -> bool:
        return self.tokens > CLIP_CONTEXT_LENGTH

    def describe(self) -> str:
        amount = f"{self.tokens}" if self.exact else f"at least {self.tokens}"
        return f"{amount} CLIP tokens; the text encoder reads the first {CLIP_CONTEXT_LENGTH} and ignores the rest"


def estimate_tokens(caption: str) -> int:
    """A lower bound on CLIP's token count: pre-tokeniser pieces plus start and end tokens."""
    return len(_PIECES.findall(caption.lower())) + 2


class ClipTokenCounter:
    """Counts CLIP tokens per caption; `count_fn` is e.g. a loaded model's
    `model.text_encoder.token_counts`, else estimates are given."""

    def __init__(self, count_fn: Callable[[Sequence[str]], list[int]] | None = None) -> None:
        self.count_fn = count_fn

    @classmethod
    def from_cache(cls, text_encoder: str | Path = DEFAULT_TEXT_ENCODER) -> "ClipTokenCounter":
        """CLIP's tokenizer from a folder or the Hugging Face cache, never downloaded just to
        count; estimates when it is not there."""
        from transformers import AutoTokenizer

        try:
            source = resolve_source(text_encoder)
            with quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        except Exception:  # absent or unreadable: fall back to estimates, counting is advisory
            return cls()

        def count(captions: Sequence[str]) -> list[int]:
            return [len(ids) for ids in clip_token_ids(tokenizer, captions)]

        return cls(count)

    def __call__(self, captions: Sequence[str]) -> list[TokenCount]:
        if self.count_fn is not None:
            return [TokenCount(n, True) for n in self.count_fn(list(captions))]
        return [TokenCount(estimate_tokens(clean_for_clip(c)), False) for c in captions]
