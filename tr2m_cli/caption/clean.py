"""From what a captioning model decodes to one clean line a person can read and keep.

Decoded text can carry the prompt (decoder-only chat models return it before the answer; BLIP
returns its prefix), special tokens that `skip_special_tokens` missed (Florence-2 location tokens,
chat markers stored as plain text), newlines, quotes, and a sentence cut short by
`max_new_tokens`. The caption goes into a `<stem>.txt` whose first line is read back, so it must be
a single line.
"""

from __future__ import annotations

import re

# Where a chat model's answer starts, when the prompt came back with it.
ANSWER_MARKERS = ("ASSISTANT:", "Assistant:", "[/INST]", "<|assistant|>", "<|im_start|>assistant", "<start_of_turn>model")

_SPECIAL_TOKENS = re.compile(
    r"<\|[^|<>]{1,40}\|>"  # <|endoftext|>, <|im_end|>
    r"|</?s>|<pad>|<unk>|<mask>|<image>|<end_of_utterance>|<fake_token_around_image>"
    r"|<loc_\d+>|<[A-Z][A-Z_]{2,}>"  # Florence-2: <loc_12>, <CAPTION>
    r"|\[/?INST\]|\[(?:CLS|SEP|PAD|DEC|UNK|MASK)\]"
)
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}
_ROLE_LABEL = re.compile(r"^(?:user|human)\s*:\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s)")


def _squash(text: str) -> str:
    return " ".join(text.split())


def _strip_echo(text: str, prompt: str) -> str:
    """Drop the prompt where the model repeated it before its answer."""
    prompt = _squash(_SPECIAL_TOKENS.sub(" ", prompt))
    if not prompt:
        return text
    text = _ROLE_LABEL.sub("", text)
    # An echo comes first; the same words further on are part of the caption.
    return text[len(prompt) :] if text.lower().startswith(prompt.lower()) else text


def _strip_quotes(text: str) -> str:
    while len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def _drop_unfinished_sentence(text: str) -> str:
    """A caption cut by the token limit ends mid-sentence; keep the complete sentences before it."""
    if not text or text[-1] in ".!?" or text[-1] in "\"'”’»)":
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]] if ends else text


def clean_caption(raw: str, prompt: str = "") -> str:
    """One line: no prompt echo, no special tokens, single spaces; a sentence, as the paper's
    captions are (BLIP writes "a kitchen with a table", which becomes "A kitchen with a table.")."""
    text = raw
    for marker in ANSWER_MARKERS:
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    text = _squash(_SPECIAL_TOKENS.sub(" ", text))
    text = _squash(_strip_echo(text, prompt))
    text = _strip_quotes(text.lstrip(":;,-–—• ").strip())
    text = _drop_unfinished_sentence(text)
    if text and text[-1].isalnum():
        text += "."
    return text[:1].upper() + text[1:]
