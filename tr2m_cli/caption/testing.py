"""Tiny captioners with random weights, for tests and for trying `tr2m caption` offline.

Each is built from a transformers config (no download), saved with `save_pretrained` (processor
and model in one folder), and so loads through the same path as a real captioner:
`--captioner DIR`. Their captions are gibberish; their plumbing (processor, prompt, `generate`,
decoding) is real.

    from tr2m_cli.caption.testing import save_tiny_florence2
    save_tiny_florence2("/tmp/tiny-captioner")        # then: tr2m caption photos/ --captioner /tmp/tiny-captioner
"""

from __future__ import annotations

import string
from pathlib import Path

# A word list for BLIP's WordPiece vocabulary, so its gibberish reads as words.
TINY_WORDS = (
    "a an the with of and on in at near two three multiple room kitchen table chair chairs desk desks "
    "computer lab street car cars man woman tree trees sky building photo lamp sofa bed window door floor"
).split()

# Character-level BPE vocabularies (no merges): every printable ASCII character is a token.
_CHARACTERS = string.ascii_letters + string.digits + ".,:;!?'-()"

# A chat template in the Vicuna layout that LLaVA v1.6 Vicuna uses: "USER: <image>\n… ASSISTANT:".
VICUNA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: {% for part in message['content'] %}{{ part['text'] }}{% endfor %}</s>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _save(folder: str | Path, model, processor) -> Path:
    from ..weights.hub import quiet_transformers

    folder = Path(folder)
    with quiet_transformers():
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    return folder


def character_bart_tokenizer():
    """BART's byte-level BPE (Florence-2's tokenizer class) over printable ASCII, no merges, with
    Florence-2's `<image>` token."""
    from transformers import RobertaTokenizer  # BartTokenizer is an alias of it in transformers 5

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for symbol in ["Ġ", *_CHARACTERS]:  # Ġ is the byte-level BPE symbol for a space
        vocab.setdefault(symbol, len(vocab))
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[], extra_special_tokens={"image_token": "<image>"})


def save_tiny_blip(folder: str | Path, seed: int = 0) -> Path:
    """BLIP (`none` style: the image alone) with a 40-word WordPiece vocabulary."""
    import tempfile

    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, BlipProcessor

    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", ".", ",", *TINY_WORDS]) + "\n")
        tokenizer = BertTokenizer(str(vocab), bos_token="[DEC]")
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        bos_token_id=tokenizer.bos_token_id,
        sep_token_id=tokenizer.sep_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=16))
    processor = BlipProcessor(BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer)
    return _save(folder, model, processor)


def save_tiny_florence2(folder: str | Path, seed: int = 0) -> Path:
    """Florence-2 (`text` style: the `<CAPTION>` task token) with a character-level BART vocabulary.

    Weights are drawn wider than transformers' default so that the decoder writes characters
    instead of stopping at once."""
    import torch
    from transformers import (
        BartConfig,
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
        Florence2VisionConfig,
    )

    tokenizer = character_bart_tokenizer()
    text = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        init_std=0.5,
    )
    vision = Florence2VisionConfig(
        depths=(1, 1, 1, 1),
        embed_dim=(8, 16, 32, 64),
        num_heads=(1, 2, 2, 4),
        num_groups=(1, 2, 2, 4),
        window_size=2,
        projection_dim=32,
        max_position_embeddings=16,
        max_temporal_embeddings=4,
    )
    torch.manual_seed(seed)
    model = Florence2ForConditionalGeneration(
        Florence2Config(text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id)
    )
    # 64x64 pixels → a 2x2 grid after the four stride stages (4·2·2·2 = 32) + 1 pooled token.
    image_processor = CLIPImageProcessorPil(
        size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64}, do_center_crop=False, image_seq_length=5
    )
    return _save(folder, model, Florence2Processor(image_processor=image_processor, tokenizer=tokenizer))


def save_tiny_llava_next(folder: str | Path, seed: int = 0) -> Path:
    """LLaVA-NeXT (`chat` style) in the LLaVA v1.6 layout: a CLIP vision tower, any-resolution
    tiles, a Llama language model, a Vicuna-style chat template."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlamaTokenizer,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
    )

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3}
    for symbol in ["▁", "\n", *_CHARACTERS]:  # ▁ is SentencePiece's space
        vocab.setdefault(symbol, len(vocab))
    tokenizer = LlamaTokenizer(vocab=vocab, merges=[], pad_token="<pad>", extra_special_tokens={"image_token": "<image>"})
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        initializer_range=0.5,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=16
    )
    tiles = [[32, 32], [32, 64], [64, 32]]
    config = LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.image_token_id,
        image_grid_pinpoints=tiles,
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(config)
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=tiles
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=16,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, as in the llava-hf checkpoints
        chat_template=VICUNA_CHAT_TEMPLATE,
    )
    return _save(folder, model, processor)
