"""--captioner NAME|ID|DIR resolves like --model, with the same offline rules and errors."""

from __future__ import annotations

import pytest

from tr2m_cli.caption import fetch_captioner, load_captioner, resolve_captioner
from tr2m_cli.caption.registry import DEFAULT_CAPTIONER
from tr2m_cli.errors import WeightsError


def test_folder_registry_name_and_hub_id(tiny_captioner_dirs):
    folder = tiny_captioner_dirs["blip"]
    spec = resolve_captioner(folder)
    assert spec.model == spec.name == str(folder.resolve())
    assert spec.source_label == f"generated: {folder.resolve()}"

    spec = resolve_captioner("florence-2-base")
    assert (spec.name, spec.model) == ("florence-2-base", "florence-community/Florence-2-base")
    assert spec.source_label == "generated: florence-2-base"
    assert (spec.prompt_style, spec.prompt, spec.max_new_tokens) == ("text", "<CAPTION>", 40)
    assert resolve_captioner().name == DEFAULT_CAPTIONER == "blip-base"

    spec = resolve_captioner("llava-hf/llava-v1.6-mistral-7b-hf")
    assert spec.name == spec.model == "llava-hf/llava-v1.6-mistral-7b-hf"
    assert spec.prompt_style is None  # decided from the model's type once loaded


def test_registry_folder_entry_resolves_relative_to_the_registry(tmp_path, monkeypatch, tiny_captioner_dirs):
    registry = tmp_path / "registry.toml"
    registry.write_text(f'[captioners.lab]\nmodel = "{tiny_captioner_dirs["blip"]}"\nmax_new_tokens = 7\n')
    monkeypatch.setenv("TR2M_REGISTRY", str(registry))
    spec = resolve_captioner("lab")
    assert spec.model == str(tiny_captioner_dirs["blip"]) and spec.max_new_tokens == 7
    assert load_captioner("lab", device="cpu").name == "lab"


@pytest.mark.parametrize(
    ("captioner", "message"),
    [
        ("blipp", "unknown captioner 'blipp': not a folder, not in the registry"),
        ("./no/such/folder", "no such folder"),
        ("", "--captioner is empty"),
    ],
)
def test_unusable_names(captioner, message):
    with pytest.raises(WeightsError, match=message):
        resolve_captioner(captioner)


def test_unknown_name_lists_the_registry_captioners():
    with pytest.raises(WeightsError) as error:
        resolve_captioner("blipp")
    assert "florence-2-base" in str(error.value) and "llava-v1.6-vicuna-7b" in str(error.value)


def test_a_file_is_refused(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(WeightsError, match="is a file; --captioner takes a folder"):
        resolve_captioner(file)


def test_offline_and_not_cached_is_one_line_saying_how_to_get_it():
    # conftest sets HF_HUB_OFFLINE=1 and an empty HF_HOME.
    with pytest.raises(WeightsError) as error:
        load_captioner(DEFAULT_CAPTIONER, device="cpu")
    message = str(error.value)
    assert "\n" not in message
    assert "captioner 'Salesforce/blip-image-captioning-base' is not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE/TR2M_OFFLINE is set" in message
    assert "run `tr2m weights download blip-base` on a connected machine" in message

    with pytest.raises(WeightsError, match="run `tr2m weights download someone/captioner`"):
        load_captioner("someone/captioner", device="cpu")


def test_fetch_offline_is_refused_and_a_folder_needs_no_fetch(tiny_captioner_dirs):
    with pytest.raises(WeightsError, match="cannot download while HF_HUB_OFFLINE"):
        fetch_captioner(DEFAULT_CAPTIONER, progress=False)
    folder = tiny_captioner_dirs["florence2"]
    assert fetch_captioner(folder) == str(folder.resolve())


def test_a_folder_that_is_not_an_image_to_text_model(tmp_path):
    from tr2m_cli.testing import save_tiny_text_encoder

    folder = save_tiny_text_encoder(tmp_path / "clip")
    with pytest.raises(WeightsError, match="is a 'clip' model; captions need an image-to-text model"):
        load_captioner(folder, device="cpu")


def test_an_empty_folder_cannot_be_loaded(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match=r"captioner folder .*empty: cannot be loaded"):
        load_captioner(tmp_path / "empty", device="cpu")
