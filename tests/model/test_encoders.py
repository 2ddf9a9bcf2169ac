"""The frozen encoders, saved tiny with save_pretrained and loaded through the users' code path."""

from __future__ import annotations

import pytest
import torch

from tr2m_cli.errors import WeightsError
from tr2m_cli.model.encoders import (
    load_depth_model,
    load_image_encoder,
    load_text_encoder,
    resolve_source,
)
from tr2m_cli.testing import save_tiny_text_encoder, tiny_dinov2_config


def test_image_encoder_gives_patch_tokens_after_final_norm(tiny_encoders):
    from transformers import Dinov2Model

    encoder = load_image_encoder(tiny_encoders["image"])
    pixels = torch.randn(2, 3, 42, 70)
    tokens, grid = encoder(pixels)
    assert grid == (3, 5)
    assert tokens.shape == (2, 15, 32)
    direct = Dinov2Model.from_pretrained(tiny_encoders["image"]).eval()
    with torch.no_grad():
        expected = direct(pixel_values=pixels).last_hidden_state[:, 1:]  # class token dropped
    torch.testing.assert_close(tokens, expected)


def test_register_tokens_are_dropped_too(tmp_path):
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    base = tiny_dinov2_config().to_dict()
    base.pop("model_type", None)
    config = Dinov2WithRegistersConfig(**{**base, "num_register_tokens": 4})
    Dinov2WithRegistersModel(config).save_pretrained(tmp_path / "reg")
    tokens, grid = load_image_encoder(tmp_path / "reg")(torch.randn(1, 3, 28, 56))
    assert grid == (2, 4) and tokens.shape == (1, 8, 32)


@pytest.mark.parametrize("full_clip", [True, False])
def test_text_encoder_projected_eot_embedding(tmp_path, full_clip):
    from transformers import AutoTokenizer, CLIPModel, CLIPTextModelWithProjection

    folder = save_tiny_text_encoder(tmp_path / "clip", full_clip=full_clip, projection_dim=12)
    encoder = load_text_encoder(folder)
    assert encoder.channels == 12
    captions = ["A computer lab with multiple desks and chairs.", "A street."]
    embeds = encoder(captions)
    assert embeds.shape == (2, 12)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    reference = (CLIPModel if full_clip else CLIPTextModelWithProjection).from_pretrained(folder).eval()
    with torch.no_grad():
        if full_clip:
            expected = reference.get_text_features(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"])
            expected = expected if torch.is_tensor(expected) else expected.pooler_output
        else:
            expected = reference(**ids).text_embeds
    torch.testing.assert_close(embeds, expected)
    # Not L2-normalised (spec §2): the norm is whatever the projection gives.
    assert not torch.allclose(embeds.norm(dim=-1), torch.ones(2))


def test_long_captions_truncate_at_77_tokens_and_are_counted(tiny_encoders):
    encoder = load_text_encoder(tiny_encoders["text"])
    short = "x " * 60  # one token per one-letter word with the tiny vocabulary
    long = "x " * 60 + "y " * 140
    counts = encoder.token_counts([short, long])
    assert counts == [62, 202]  # start and end tokens included
    clipped = "x " * 60 + "y " * 15  # what survives: 75 tokens + start + end = 77
    torch.testing.assert_close(encoder([long]), encoder([clipped]))
    assert not torch.allclose(encoder([long]), encoder(["x " * 60 + "y " * 14]))


def test_depth_model_relative_inverse_depth(tiny_encoders):
    model = load_depth_model(tiny_encoders["relative_depth"])
    depth = model(torch.randn(2, 3, 56, 84))
    assert depth.shape == (2, 56, 84)
    assert (depth >= 0).all() and depth.std() > 0


def test_encoders_are_frozen(tiny_encoders):
    for encoder in (
        load_image_encoder(tiny_encoders["image"]),
        load_text_encoder(tiny_encoders["text"]),
        load_depth_model(tiny_encoders["relative_depth"]),
    ):
        assert not any(p.requires_grad for p in encoder.parameters())
        encoder.train()
        assert not encoder.training and not any(m.training for m in encoder.modules())


def test_wrong_model_type_is_named(tiny_encoders):
    with pytest.raises(WeightsError, match="is a 'clip' model; TR2M needs one of: dinov2"):
        load_image_encoder(tiny_encoders["text"])


def test_offline_hub_id_missing_from_cache_says_what_to_do():
    with pytest.raises(WeightsError) as info:
        load_image_encoder("facebook/dinov2-large")
    message = str(info.value)
    assert "facebook/dinov2-large" in message and "not in the Hugging Face cache" in message
    assert "tr2m weights download" in message and "\n" not in message


def test_sources_resolve_relative_to_model_folder(tmp_path):
    (tmp_path / "model" / "encoders" / "dino").mkdir(parents=True)
    assert resolve_source("encoders/dino", tmp_path / "model") == str((tmp_path / "model/encoders/dino").resolve())
    assert resolve_source("facebook/dinov2-large", tmp_path / "model") == "facebook/dinov2-large"
    with pytest.raises(WeightsError, match="no such folder"):
        resolve_source("./not-here", tmp_path)


def test_broken_local_folder_names_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="image encoder folder .*empty.*cannot be loaded"):
        load_image_encoder(tmp_path / "empty")
