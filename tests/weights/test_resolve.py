"""From a registry name to a loaded model: first use downloads, later uses are offline."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from tr2m_cli.errors import WeightsError
from tr2m_cli.weights.registry import load_registry
from tr2m_cli.weights.resolve import download_model, resolve_model


def test_repository_registry_names_the_official_model():
    registry = load_registry()
    entry = registry.model("tr2m-official")
    assert entry.head_url.endswith("da_s_vitl_vitl.pth")
    assert (entry.image_encoder, entry.text_encoder, entry.depth_model) == (
        "facebook/dinov2-large",
        "openai/clip-vit-large-patch14",
        "LiheYoung/depth-anything-small-hf",
    )
    assert entry.domain_units == {"surgical": "millimetres"}


@pytest.fixture
def tiny_registry(served_tiny_model, file_server, monkeypatch):
    """A registry whose model is served over HTTP, with the tiny encoders as local folders."""
    tampered = f'description = "tiny test model"\n\n[models.tampered]\nhead_url = "{file_server.url("tiny.pth")}"\nhead_sha256 = "{"1" * 64}"\n'
    monkeypatch.setenv("TR2M_REGISTRY", str(served_tiny_model("tiny-net", extra=tampered)))
    return file_server


def test_first_use_downloads_then_works_offline(tiny_registry, monkeypatch):
    from tr2m_cli import load_model

    monkeypatch.delenv("HF_HUB_OFFLINE")
    model = load_model("tiny-net", device="cpu", progress=False)
    assert [r[0] for r in tiny_registry.requests] == ["tiny.pth"]
    depth = model.predict(np.zeros((30, 40, 3), np.uint8), "a room")
    assert depth.shape == (30, 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny_registry.files.clear()  # nothing left to download: the cache must serve
    again = load_model("tiny-net", device="cpu")
    assert again.spec.name == "tiny-net" and again.spec.provenance["registry_name"] == "tiny-net"
    assert len(tiny_registry.requests) == 1


def test_offline_and_not_cached_says_how_to_get_it(tiny_registry):
    with pytest.raises(WeightsError) as info:
        resolve_model("tiny-net")
    message = str(info.value)
    assert "not in the cache" in message and "tr2m weights download tiny-net" in message
    assert "--model DIR" in message and "\n" not in message
    assert tiny_registry.requests == []


def test_checksum_from_registry_is_enforced(tiny_registry, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(WeightsError, match="failed its checksum"):
        download_model("tampered", encoders=False, progress=False)
    with pytest.raises(WeightsError, match="not in the cache"):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        resolve_model("tampered")


def test_unknown_names_and_files(tmp_path):
    with pytest.raises(WeightsError, match=r"unknown model 'nope'.*known: tr2m-official"):
        resolve_model("nope")
    head = tmp_path / "head.pth"
    head.write_bytes(b"x")
    with pytest.raises(WeightsError, match="tr2m weights import"):
        resolve_model(head)
    with pytest.raises(WeightsError, match="not a tr2m model folder"):
        resolve_model(tmp_path)


def test_folder_paths_resolve_to_themselves(tiny_model_dir):
    assert resolve_model(tiny_model_dir) == tiny_model_dir
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir


def test_a_page_that_is_not_a_head_is_not_cached_and_force_always_fetches(tiny_registry, tmp_path, monkeypatch):
    """No checksum in the registry: an HTML error page served as the head must not become the
    cached head (nor be kept to be "imported" again); --force fetches again."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    registry = tmp_path / "unchecked.toml"
    registry.write_text(f'[models.unchecked]\nhead_url = "{tiny_registry.url("head.pth")}"\n')
    monkeypatch.setenv("TR2M_REGISTRY", str(registry))
    good = tiny_registry.files["tiny.pth"]
    tiny_registry.files["head.pth"] = b"<html><body>Rate limit exceeded</body></html>"
    with pytest.raises(WeightsError, match="not a usable head, so it was not kept"):
        download_model("unchecked", encoders=False, progress=False)
    from tr2m_cli.weights.cache import downloads_root

    assert not any(p.is_file() for p in downloads_root().rglob("*") if not p.name.endswith(".lock"))
    tiny_registry.files["head.pth"] = good
    folder = download_model("unchecked", encoders=False, progress=False)
    assert (folder / "head.safetensors").is_file()
    fetched = len(tiny_registry.requests)
    download_model("unchecked", encoders=False, progress=False, force=True)
    assert len(tiny_registry.requests) == fetched + 1  # fetched again, not taken from the cache


def test_model_files_follow_the_umask(tiny_registry, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    old = os.umask(0o002)  # a lab's shared model folder: group-writable
    try:
        folder = download_model("tiny-net", encoders=False, progress=False)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == {"head.safetensors": 0o664, "tr2m.json": 0o664}


@pytest.mark.parametrize(
    "toml,message",
    [
        ("models = 5", "'models' must be a table"),
        ("[models.x]\nhead_url = 5", "[models.x]: head_url must be text"),
        ('[models.x]\nhead_url = "u"\nattention_heads = 0', "attention_heads = 0 is out of range"),
        ('[models.x]\nhead_url = "u"\nattention_heads = "8"', "attention_heads must be a whole number"),
        ('[models.x]\nhead_url = "u"\ntoken_budget = 1e9', "token_budget must be a whole number"),
        ('[models.x]\nhead_url = "u"\nhead_sha256 = "abc"', "head_sha256 must be 64 hexadecimal digits"),
        ('[models.x]\nhead_url = "u"\ndomain_units = { surgical = "furlongs" }', "domain_units.surgical = 'furlongs': unknown unit"),
        ('[models.x]\nhead_url = "u"\ndomain_units = "mm"', "domain_units must be a table"),
        ("models = [1, 2]", "'models' must be a table"),
        ("[models]\nx = 3", "[models.x]: must be a table of keys"),
    ],
)
def test_registry_fields_are_type_and_range_checked_in_one_line(tmp_path, toml, message):
    path = tmp_path / "registry.toml"
    path.write_text(toml + "\n")
    with pytest.raises(WeightsError) as info:
        load_registry(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)
