"""Counting CLIP tokens to report captions the text encoder would cut at 77."""

from __future__ import annotations

from tr2m_cli.caption.length import ClipTokenCounter, TokenCount, estimate_tokens


def test_estimate_is_a_lower_bound_from_words_and_punctuation():
    # start + "a", "kitchen", "with", "2", "chairs", "." + end
    assert estimate_tokens("A kitchen with 2 chairs.") == 8
    assert estimate_tokens("") == 2
    assert estimate_tokens("It's a lab") == 6  # "it", "'s", "a", "lab"


def test_counts_with_a_clip_tokenizer_folder(tiny_encoders):
    # The tiny CLIP tokenizer has no merges: one token per character plus start and end.
    counter = ClipTokenCounter.from_cache(tiny_encoders["text"])
    counts = counter(["a lab", "x" * 80])
    assert counts == [TokenCount(2 + 4, True), TokenCount(82, True)]
    assert not counts[0].truncated and counts[1].truncated
    assert counts[1].describe() == "82 CLIP tokens; the text encoder reads the first 77 and ignores the rest"


def test_without_a_tokenizer_counts_are_estimates():
    counter = ClipTokenCounter.from_cache("openai/clip-vit-large-patch14")  # not in the empty test cache
    (count,) = counter([" ".join(["word"] * 80)])
    assert count == TokenCount(82, False) and count.truncated
    assert count.describe().startswith("at least 82 CLIP tokens")


def test_a_loaded_models_counter_is_used(tiny_model):
    counter = ClipTokenCounter(tiny_model.text_encoder.token_counts)
    assert counter(["abc"]) == [TokenCount(5, True)]
