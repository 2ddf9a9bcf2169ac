"""[captioners.NAME] tables: the shipped ones, and clear errors for broken ones."""

from __future__ import annotations

import pytest

from tr2m_cli.caption.registry import DEFAULT_CAPTIONER, captioner_entries, find_captioner
from tr2m_cli.errors import WeightsError
from tr2m_cli.weights.registry import load_registry

MODEL = '[models.m]\nhead_url = "file:///nowhere/head.pth"\n'


def registry_file(tmp_path, text: str):
    path = tmp_path / "registry.toml"
    path.write_text(text + "\n" + MODEL, encoding="utf-8")
    return load_registry(path)


def test_shipped_registry_has_the_default_and_the_papers_captioners():
    entries = captioner_entries()
    assert DEFAULT_CAPTIONER in entries
    default = entries[DEFAULT_CAPTIONER]
    assert default.model == "Salesforce/blip-image-captioning-base"
    assert (default.prompt_style, default.prompt) == ("none", None)
    florence = entries["florence-2-base"]
    assert (florence.model, florence.prompt_style, florence.prompt) == (
        "florence-community/Florence-2-base", "text", "<CAPTION>"
    )
    paper = {entry.model for entry in entries.values()}
    assert {"llava-hf/llava-v1.6-vicuna-7b-hf", "llava-hf/llava-v1.6-mistral-7b-hf"} <= paper
    for entry in entries.values():
        assert entry.description and entry.licence and entry.source.startswith("https://")
        assert entry.num_beams == 1  # greedy: the same photo gives the same caption
    # The depth models are still read as before.
    assert "tr2m-official" in load_registry().models


def test_entry_defaults_and_relative_folder(tmp_path):
    registry = registry_file(
        tmp_path,
        '[captioners.mine]\nmodel = "./captioners/mine"\n\n[captioners.hub]\nmodel = "org/cap"\nmax_new_tokens = 12\n',
    )
    entries = captioner_entries(registry)
    assert entries["mine"].model == str((tmp_path / "captioners" / "mine").resolve())
    assert entries["mine"].prompt_style is None and entries["mine"].prompt is None
    assert entries["hub"].model == "org/cap" and entries["hub"].max_new_tokens == 12
    assert find_captioner("nope", registry) is None


def test_registry_without_captioners(tmp_path):
    assert captioner_entries(registry_file(tmp_path, "")) == {}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[captioners.c]\nmodel = "a/b"\ntemperature = 0.7\n', "[captioners.c] has unknown keys: temperature"),
        ('[captioners.c]\ndescription = "no model"\n', "[captioners.c] needs a model"),
        ('[captioners.c]\nmodel = "a/b"\nprompt_style = "fancy"\n', "prompt_style 'fancy' is not one of chat, text, none"),
        ('[captioners.c]\nmodel = "a/b"\nmax_new_tokens = "40"\n', "max_new_tokens must be a int"),
        ('[captioners.c]\nmodel = "a/b"\nmax_new_tokens = true\n', "max_new_tokens must be a int"),
        ('[captioners.c]\nmodel = "a/b"\nnum_beams = 0\n', "num_beams must be at least 1"),
        ('[captioners."bad name"]\nmodel = "a/b"\n', "captioner name 'bad name'"),
        ("captioners = 3\n", "'captioners' must be a table"),
    ],
)
def test_broken_tables_name_the_file_and_the_problem(tmp_path, table, message):
    registry = registry_file(tmp_path, table)
    with pytest.raises(WeightsError) as error:
        captioner_entries(registry)
    assert message in str(error.value)
    assert str(registry.path) in str(error.value)


def test_a_dotted_name_must_be_quoted(tmp_path):
    registry = registry_file(tmp_path, '[captioners.llava-v1.6]\nmodel = "a/b"\n')
    with pytest.raises(WeightsError, match=r'a name with dots must be quoted, \[captioners."llava-v1.6"\]'):
        captioner_entries(registry)
    quoted = registry_file(tmp_path, '[captioners."llava-v1.6"]\nmodel = "a/b"\n')
    assert captioner_entries(quoted)["llava-v1.6"].model == "a/b"
