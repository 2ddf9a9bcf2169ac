"""Captions per second for full-size captioners, with random weights (no download needed).

Speed does not depend on the weights' values, only on the architecture, the input size and how many
tokens are generated. Each captioner is built from its published layout (Florence-2 base/large,
BLIP base) with an image processor of the real input size, and run through tr2m's own captioning
path (`Captioner.caption_batch`: preprocessing, `generate`, decoding, cleaning). Random weights
would stop at once or never, so every caption is forced to `--new-tokens` tokens (a caption such as
"A computer lab with multiple desks and chairs." is 11 BART tokens, 12 BERT tokens).

    python benchmarks/caption_speed.py                       # CPU, the default captioner
    python benchmarks/caption_speed.py --captioners florence-2-base blip-base florence-2-large
"""

from __future__ import annotations

import argparse
import string
import time

import numpy as np
import torch


def build_florence2(size: str):
    """Florence-2 base (DaViT-B + BART-base, 0.23B) or large (DaViT-L + BART-large, 0.77B), 768x768
    input, 577 image tokens, BART vocabulary of 51289."""
    from transformers import (
        BartConfig,
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
        Florence2VisionConfig,
    )

    from tr2m_cli.caption.testing import character_bart_tokenizer

    large = size == "large"
    width, layers, heads = (1024, 12, 16) if large else (768, 6, 12)
    vision = Florence2VisionConfig(
        embed_dim=(256, 512, 1024, 2048) if large else (128, 256, 512, 1024),
        num_heads=(8, 16, 32, 64) if large else (4, 8, 16, 32),
        num_groups=(8, 16, 32, 64) if large else (4, 8, 16, 32),
        projection_dim=width,
    )
    text = BartConfig(
        vocab_size=51289,
        d_model=width,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * width,
        decoder_ffn_dim=4 * width,
        max_position_embeddings=1024,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    # The real vocabulary is not available offline; the prompt's length barely matters (a task
    # prompt next to 577 image tokens), the model's own vocabulary size (51289) does.
    tokenizer = character_bart_tokenizer()
    model = Florence2ForConditionalGeneration(
        Florence2Config(vision_config=vision, text_config=text, image_token_id=tokenizer.image_token_id)
    )
    processor = Florence2Processor(
        image_processor=CLIPImageProcessorPil(
            size={"height": 768, "width": 768},
            do_center_crop=False,
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
            image_seq_length=577,
        ),
        tokenizer=tokenizer,
    )
    return model, processor


def build_blip_base():
    """BLIP base captioning: ViT-B/16 at 384x384 + a BERT-base decoder (0.25B)."""
    import tempfile
    from pathlib import Path

    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, BlipProcessor

    model = BlipForConditionalGeneration(BlipConfig())  # the defaults are the base layout
    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *string.ascii_lowercase]))
        tokenizer = BertTokenizer(str(vocab), bos_token="[DEC]")
    return model, BlipProcessor(BlipImageProcessorPil(size={"height": 384, "width": 384}), tokenizer)


BUILDERS = {
    "florence-2-base": lambda: build_florence2("base"),
    "florence-2-large": lambda: build_florence2("large"),
    "blip-base": build_blip_base,
}


def main() -> None:
    from tr2m_cli.caption.captioner import Captioner
    from tr2m_cli.caption.prompts import plan_prompt
    from tr2m_cli.caption.resolve import resolve_captioner
    from tr2m_cli.weights.hub import quiet_transformers
    from tr2m_cli.runtime import resolve_device, resolve_precision

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captioners", nargs="+", default=["florence-2-base"], choices=sorted(BUILDERS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--photos", type=int, default=8, help="photos per measurement")
    parser.add_argument("--new-tokens", type=int, default=20, help="tokens generated per caption")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    device = resolve_device(args.device)
    dtype = resolve_precision(args.precision, device)
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8) for _ in range(args.photos)]
    print(f"device {device}, {dtype}, torch threads {torch.get_num_threads()}, {args.new_tokens} new tokens per caption")
    print("captioner          params  batch  captions/s  s/caption")
    for name in args.captioners:
        torch.manual_seed(0)
        with quiet_transformers():
            model, processor = BUILDERS[name]()
        model.to(device=device, dtype=dtype).eval()
        model.generation_config.min_new_tokens = args.new_tokens
        spec = resolve_captioner(name)
        plan = plan_prompt(model.config.model_type, False, spec.prompt_style, spec.prompt)
        captioner = Captioner(spec, processor, model, plan)
        params = sum(p.numel() for p in model.parameters()) / 1e9
        captioner.caption_batch(photos[:1], max_new_tokens=2)  # warm-up
        for batch_size in args.batch_sizes:
            rates = []
            for _ in range(args.repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                captioner.caption(photos, batch_size=batch_size, max_new_tokens=args.new_tokens)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                rates.append(len(photos) / (time.perf_counter() - start))
            # The best of the repeats: on a shared machine the others only add other people's load.
            rate = max(rates)
            print(f"{name:<17} {params:5.2f}B  {batch_size:>5}  {rate:>10.2f}  {1 / rate:>9.2f}")
        del captioner, model


if __name__ == "__main__":
    main()
