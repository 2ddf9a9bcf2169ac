"""`tr2m weights list | download | path | import`."""

from __future__ import annotations

import json
import os

import torch
from click.testing import CliRunner

from tr2m_cli.cli import cli
from tr2m_cli.model.checkpoint import ours_to_released
from tr2m_cli.model.config import HeadConfig
from tr2m_cli.model.head import ScaleShiftHead
from tr2m_cli.testing import tiny_head_config


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_list_shows_registry_and_cache_state():
    result = run("weights", "list")
    assert result.exit_code == 0
    assert "tr2m-official" in result.output and "not downloaded" in result.output


def test_import_released_head_then_path(tmp_path):
    head_file = tmp_path / "da_s_vitl_vitl.pth"
    torch.save({"state_dict": ours_to_released(ScaleShiftHead(HeadConfig()).state_dict())}, head_file)
    out = tmp_path / "official"
    result = run("weights", "import", head_file, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    config = json.loads((out / "tr2m.json").read_text())
    assert config["head"]["image_channels"] == 1024 and config["encoders"]["text"] == "openai/clip-vit-large-patch14"
    assert run("weights", "path", out).output.strip() == str(out)
    again = run("weights", "import", head_file, "--out", out)
    assert again.exit_code == 2 and "--force" in again.output


def test_import_small_head_with_local_encoders(tmp_path, tiny_encoders):
    head_file = tmp_path / "small.pth"
    torch.save({"state_dict": ours_to_released(ScaleShiftHead(tiny_head_config()).state_dict())}, head_file)
    result = run(
        "weights", "import", head_file, "--out", tmp_path / "m",
        "--image-encoder", tiny_encoders["image"], "--text-encoder", tiny_encoders["text"],
        "--depth-model", tiny_encoders["relative_depth"], "--attention-heads", 2, "--name", "small",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from tr2m_cli import load_model

    model = load_model(tmp_path / "m", device="cpu")
    assert model.spec.name == "small" and model.head.config.image_channels == 32


def test_malicious_pickle_is_refused_on_import(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    head_file = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "x": Evil()}, head_file)
    result = run("weights", "import", head_file, "--out", tmp_path / "m")
    assert result.exit_code == 2 and "refused to load" in result.output
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "m" / "tr2m.json").exists()


def test_path_of_undownloaded_model_fails_cleanly():
    result = run("weights", "path", "tr2m-official")
    assert result.exit_code == 2
    assert "tr2m weights download tr2m-official" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_download_from_registry(tmp_path, served_tiny_model, monkeypatch):
    registry = served_tiny_model("tiny")
    monkeypatch.setenv("TR2M_REGISTRY", str(registry))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    result = run("weights", "download", "tiny", "--quiet")
    assert result.exit_code == 0, result.output
    folder = result.output.strip()
    assert folder.endswith(os.path.join("models", "tiny"))
    assert run("weights", "path", "tiny").output.strip() == folder
    assert "cached" in run("weights", "list").output
    assert not any(p.name.endswith(".part") for p in (tmp_path.parent).rglob("*.part"))


def test_list_shows_captioners_and_download_fetches_one_for_offline_use(tmp_path, monkeypatch):
    from tr2m_cli.caption.testing import save_tiny_blip

    result = run("weights", "list")
    assert "captioners (tr2m caption --captioner NAME):" in result.output
    assert "florence-2-base" in result.output and "llava-v1.6-vicuna-7b" in result.output
    # A captioner name goes to the Hugging Face cache, with the offline rule of the encoders.
    offline = run("weights", "download", "florence-2-base")
    assert offline.exit_code == 2
    assert "captioner 'florence-community/Florence-2-base': cannot download while HF_HUB_OFFLINE" in offline.output
    # A registry captioner kept in a folder is already there.
    folder = save_tiny_blip(tmp_path / "blip")
    registry = tmp_path / "registry.toml"
    registry.write_text(f'[captioners.mine]\nmodel = "{folder}"\ndescription = "tiny"\n')
    monkeypatch.setenv("TR2M_REGISTRY", str(registry))
    assert run("weights", "download", "mine").output.strip() == str(folder)
    assert "mine  cached" in run("weights", "list").output


def test_a_captioner_download_honours_force_and_refuses_head_only(monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: calls.append((repo_id, kw.get("force_download"))) or "/cache/x")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TR2M_OFFLINE", raising=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["weights", "download", "blip-base", "--quiet", "--force"]).exit_code == 0
    assert runner.invoke(cli, ["weights", "download", "blip-base", "--quiet"]).exit_code == 0
    assert calls == [("Salesforce/blip-image-captioning-base", True), ("Salesforce/blip-image-captioning-base", False)]
    refused = runner.invoke(cli, ["weights", "download", "blip-base", "--head-only"])
    assert refused.exit_code == 2 and "--head-only: blip-base is a captioner" in refused.output and len(calls) == 2
