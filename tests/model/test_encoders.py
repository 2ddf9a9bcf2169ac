"""The frozen encoders, saved tiny with save_pretrained and loaded through the users' code path,
computing what the authors' pipeline computes (reference position embeddings, OpenAI's caption
cleaning), each pinned against the reference formula written out here."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tr2m_cli.errors import WeightsError
from tr2m_cli.weights.hub import resolve_source
from tr2m_cli.weights.load import load_depth_model, load_image_encoder, load_text_encoder
from tr2m_cli.testing import save_tiny_depth_model, save_tiny_image_encoder, save_tiny_text_encoder, tiny_dinov2_config

# Network sizes (multiples of 14) the reference runs at or users will: square, odd patch counts,
# landscape (the paper's 434×560), portrait, and KITTI's 350×1204.
SIZES = {"square": (140, 140), "odd": (434, 546), "landscape": (434, 560), "portrait": (560, 434), "kitti": (350, 1204)}


def reference_position_embeddings(stored: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The reference DINOv2's formula (torch.hub dinov2, and Depth Anything v1's copy of it),
    written out independently of tr2m: bicubic on the float32 N×N grid by scale factors
    ((h/14 + 0.1)/N, (w/14 + 0.1)/N), align_corners=False, no antialias; class token first."""
    table = stored.detach().float()
    n = int(math.sqrt(table.shape[1] - 1))
    dim = table.shape[-1]
    grid = table[:, 1:].reshape(1, n, n, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid, scale_factor=((height / 14 + 0.1) / n, (width / 14 + 0.1) / n), mode="bicubic", align_corners=False
    )
    return torch.cat([table[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)


@pytest.fixture(scope="module")
def real_grid_encoders(tmp_path_factory):
    """Tiny ViTs whose stored position grid is 37×37, as DINOv2-L's and Depth Anything's are."""
    folder = tmp_path_factory.mktemp("grid37")
    return {
        "image": save_tiny_image_encoder(folder / "dinov2", image_size=518),
        "relative_depth": save_tiny_depth_model(folder / "depth_anything", image_size=518),
    }


def _embeddings(module):
    (embeddings,) = [m for m in module.modules() if hasattr(m, "position_embeddings")]
    return embeddings


@pytest.mark.parametrize("grid", ["4x4", "37x37"])
@pytest.mark.parametrize("role", ["image", "relative_depth"])
@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_position_embeddings_follow_the_reference_formula(tiny_encoders, real_grid_encoders, grid, role, size):
    folders = tiny_encoders if grid == "4x4" else real_grid_encoders
    encoder = (load_image_encoder if role == "image" else load_depth_model)(folders[role])
    embeddings = _embeddings(encoder)
    height, width = size
    tokens = torch.zeros(1, (height // 14) * (width // 14) + 1, embeddings.position_embeddings.shape[-1])
    ours = embeddings.interpolate_pos_encoding(tokens, height, width)
    expected = reference_position_embeddings(embeddings.position_embeddings, height, width)
    assert torch.equal(ours, expected)
    # transformers' own interpolation samples the grid elsewhere: the test would see a regression.
    theirs = type(embeddings).interpolate_pos_encoding(embeddings, tokens, height, width)
    assert theirs.shape == ours.shape and not torch.allclose(theirs, ours, atol=1e-4)


@pytest.mark.parametrize("role", ["image", "relative_depth"])
@pytest.mark.parametrize("size", [(98, 126), (70, 252)], ids=["odd", "wide"])  # small: the depth head is slow big
def test_encoder_outputs_equal_a_forward_pass_with_the_reference_formula(real_grid_encoders, role, size):
    from transformers import DepthAnythingForDepthEstimation, Dinov2Model

    folder = real_grid_encoders[role]
    ours = (load_image_encoder if role == "image" else load_depth_model)(folder)
    plain = (Dinov2Model if role == "image" else DepthAnythingForDepthEstimation).from_pretrained(folder).eval()
    pixels = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = plain(pixel_values=pixels)
        embeddings = _embeddings(plain)
        embeddings.interpolate_pos_encoding = lambda tokens, h, w: reference_position_embeddings(
            embeddings.position_embeddings, h, w
        ).to(tokens.dtype)
        after = plain(pixel_values=pixels)
    if role == "image":
        tokens, _ = ours(pixels)
        torch.testing.assert_close(tokens, after.last_hidden_state[:, 1:], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(tokens, before.last_hidden_state[:, 1:], atol=1e-3)
    else:
        depth = ours(pixels)
        torch.testing.assert_close(depth, after.predicted_depth, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(depth, before.predicted_depth, atol=1e-3)


def test_only_the_modules_we_load_are_patched(tiny_encoders):
    from transformers import Dinov2Model
    from transformers.models.dinov2.modeling_dinov2 import Dinov2Embeddings

    class_method = Dinov2Embeddings.interpolate_pos_encoding
    load_image_encoder(tiny_encoders["image"])
    assert Dinov2Embeddings.interpolate_pos_encoding is class_method  # no global monkeypatch
    other = Dinov2Model.from_pretrained(tiny_encoders["image"])
    assert "interpolate_pos_encoding" not in vars(_embeddings(other))


def test_image_encoder_gives_patch_tokens_after_final_norm(tiny_encoders):
    encoder = load_image_encoder(tiny_encoders["image"])
    pixels = torch.randn(2, 3, 42, 70)
    tokens, grid = encoder(pixels)
    assert grid == (3, 5)
    assert tokens.shape == (2, 15, 32)
    with torch.no_grad():
        hidden = encoder.model(pixel_values=pixels).last_hidden_state
    torch.testing.assert_close(tokens, hidden[:, 1:])  # last_hidden_state is after the final norm; class token dropped


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


# -- captions: OpenAI's cleaning before BPE ---------------------------------------------------------

DIRTY_CAPTIONS = [
    ("The kitchen’s “big” table.", 'The kitchen\'s "big" table.'),  # curly apostrophe and quotes
    ("Tables &amp; chairs.", "Tables & chairs."),  # an HTML entity
    ("Tables &amp;amp; chairs.", "Tables & chairs."),  # escaped twice: unescaped twice
    ("A ﬁreplace and a ﬂoor lamp.", "A fireplace and a floor lamp."),  # ligatures
    ("Ａ ｗｉｄｅ ｒｏｏｍ.", "A wide room."),  # full-width letters
    ("A cafÃ© terrace.", "A café terrace."),  # UTF-8 read as Latin-1 (mojibake)
    ("  A\tdesk,\n\n two  chairs. ", "A desk, two chairs."),  # whitespace
]


@pytest.mark.parametrize("dirty, clean", DIRTY_CAPTIONS)
def test_captions_are_cleaned_as_openai_clip_cleans_them(tiny_encoders, dirty, clean):
    from tr2m_cli.model.encoders import clean_for_clip

    encoder = load_text_encoder(tiny_encoders["text"])
    assert clean_for_clip(dirty) == clean
    assert encoder.token_ids([dirty]) == encoder.token_ids([clean])
    torch.testing.assert_close(encoder([dirty]), encoder([clean]), rtol=0, atol=0)
    # The clean form tokenises as transformers' tokenizer alone would; the dirty one would not
    # (whitespace aside, which that tokenizer collapses itself).
    raw = encoder.tokenizer([dirty, clean], truncation=False, padding=False)["input_ids"]
    assert encoder.token_ids([clean])[0] == list(raw[1])
    assert (raw[0] == raw[1]) == dirty.strip().startswith("A\tdesk")


def test_plain_captions_and_truncation_are_unchanged_by_cleaning(tiny_encoders):
    encoder = load_text_encoder(tiny_encoders["text"])
    plain = ["A computer lab with multiple desks and chairs.", "An image with two chairs, a table, a lamp."]
    raw = encoder.tokenizer(plain, truncation=False, padding=False)["input_ids"]
    assert encoder.token_ids(plain) == [list(ids) for ids in raw]
    long = "x " * 60 + "y " * 140  # 202 tokens: the encoder reads the first 77
    raw_ids = encoder.tokenizer([long], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        expected = encoder.model(input_ids=raw_ids["input_ids"], attention_mask=raw_ids["attention_mask"]).text_embeds
    torch.testing.assert_close(encoder([long]), expected)


def test_the_length_warning_counts_the_cleaned_caption(tiny_encoders):
    from tr2m_cli.caption.length import ClipTokenCounter

    encoder = load_text_encoder(tiny_encoders["text"])
    escaped = "a &amp;amp; b"  # "a & b" once cleaned: a, &, b (one token per character here)
    assert encoder.token_counts([escaped]) == encoder.token_counts(["a & b"]) == [5]  # with start and end
    (counted,) = ClipTokenCounter.from_cache(tiny_encoders["text"])([escaped])
    assert counted.exact and counted.tokens == 5
    (estimated,) = ClipTokenCounter()([escaped])  # no tokenizer: a lower bound, on the cleaned text
    assert not estimated.exact and estimated.tokens == 5
