"""First use of hub encoders: fetched with a progress bar before loading, never when cached,
offline, or a local folder."""

from __future__ import annotations

import pytest

from tr2m_cli.weights import hub


@pytest.fixture
def fake_hub(monkeypatch):
    """huggingface_hub.snapshot_download that knows one cached repository and records calls."""
    import huggingface_hub

    calls = []
    cached = {"org/cached"}

    def snapshot_download(repo_id, allow_patterns=None, local_files_only=False, **kwargs):
        calls.append((repo_id, local_files_only))
        if local_files_only and repo_id not in cached:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not in the cache")
        cached.add(repo_id)
        return f"/cache/{repo_id}"

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return calls


def test_a_missing_encoder_is_fetched_once_with_progress(fake_hub):
    hub.ensure_cached("image encoder", "org/new")
    assert fake_hub == [("org/new", True), ("org/new", False)]
    fake_hub.clear()
    hub.ensure_cached("image encoder", "org/new")  # now cached: only the local check
    assert fake_hub == [("org/new", True)]


def test_a_cached_encoder_is_not_fetched(fake_hub):
    hub.ensure_cached("text encoder", "org/cached")
    assert fake_hub == [("org/cached", True)]


def test_offline_and_local_folders_fetch_nothing(fake_hub, monkeypatch, tmp_path):
    hub.ensure_cached("text encoder", str(tmp_path))
    monkeypatch.setenv("TR2M_OFFLINE", "1")
    hub.ensure_cached("text encoder", "org/new")
    assert fake_hub == []


def test_load_model_fetches_hub_encoders_before_loading(fake_hub, monkeypatch, tiny_model_dir):
    """A model folder naming hub ids: each id is fetched (with a bar) before transformers loads
    it; the tiny folder's own encoders are local folders, so loading it asks the hub for nothing."""
    import tr2m_cli

    tr2m_cli.load_model(tiny_model_dir, device="cpu", precision="fp32")
    assert fake_hub == []
    with pytest.raises(tr2m_cli.errors.Tr2mError):  # the fake cache holds no real files to load
        tr2m_cli.load_model(tiny_model_dir, device="cpu", precision="fp32", image_encoder="org/dinov2-ish")
    assert ("org/dinov2-ish", False) in fake_hub
