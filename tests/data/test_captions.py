"""Captions: per-image trees, JSON mappings, and one-line files paired in an explicit order."""

from __future__ import annotations

import json
import shutil

import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.data.fixtures import write_caption_mapping, write_tiny_dataset
from tr2m_cli.errors import DatasetError


@pytest.fixture
def sun(tmp_path):
    """Two SUN RGB-D frames whose list order (NYU0002 first) differs from sorted order."""
    tiny = write_tiny_dataset("sunrgbd", tmp_path / "sun", size=(8, 10))
    listing = tmp_path / "sun" / "sunrgbd_testing_images.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(reversed(lines)) + "\n")
    tiny.keys.reverse()
    return tiny


def test_tree_gives_every_line_of_the_image_file_without_assuming_15(tmp_path):
    tiny = write_tiny_dataset("nyu", tmp_path / "nyu", size=(6, 8))
    tree = tmp_path / "text_all" / "nyu" / "test"
    for key in tiny.keys:
        (tree / key).parent.mkdir(parents=True, exist_ok=True)
        (tree / f"{key}.txt").write_text(f"First for {key}.\n\n  Second.  \nThird.\n")
    dataset = open_dataset("nyu", root=tiny.root, captions=tmp_path / "text_all")  # release root
    assert dataset[1].captions == [f"First for {tiny.keys[1]}.", "Second.", "Third."]
    assert open_dataset("nyu", root=tiny.root, captions=tree).captions_source.folder == tree
    (tree / f"{tiny.keys[1]}.txt").write_text("\n \n")
    with pytest.raises(DatasetError, match="caption file is empty"):
        dataset[1]
    # The first image's file missing is that image's problem, named before anything is read; the
    # tree is still found (it is not "no captions here").
    first = tree / f"{tiny.keys[0]}.txt"
    first.unlink()
    dataset = open_dataset("nyu", root=tiny.root, captions=tmp_path / "text_all")
    assert [(p.key, p.problem) for p in dataset.missing_files()] == [(tiny.keys[0], f"missing caption file {first}")]
    with pytest.raises(DatasetError, match=f"{first}: no caption file for image '{tiny.keys[0]}'"):
        dataset[0]
    (tree / f"{tiny.keys[1]}.txt").unlink()  # no file of the tree left: then nothing is found
    with pytest.raises(DatasetError, match=f"no nyu captions: expected a per-image tree such as {tmp_path / 'text_all'}/nyu/test/"):
        open_dataset("nyu", root=tiny.root, captions=tmp_path / "text_all")


def test_lines_file_pairs_in_the_list_order_not_sorted_or_file_order(sun, tmp_path):
    lines = tmp_path / "sunrgbd_all.txt"
    lines.write_text("Caption for the first listed.\nCaption for the second listed.\n")
    dataset = open_dataset("sunrgbd", root=sun.root, captions=lines)
    assert dataset.keys() == sun.keys and dataset.keys()[0].endswith("NYU0002")
    assert dataset[0].captions == ["Caption for the first listed."]
    assert dataset[1].captions == ["Caption for the second listed."]
    assert "order of sunrgbd_testing_images.txt" in dataset.captions_source.description


def test_lines_file_with_a_different_count_is_an_error(sun, tmp_path):
    lines = tmp_path / "captions.txt"
    lines.write_text("only one\n")
    with pytest.raises(DatasetError, match="1 captions for 2 images.*order of sunrgbd_testing_images.txt"):
        open_dataset("sunrgbd", root=sun.root, captions=lines)
    lines.write_text("first\n\nsecond\n")  # an empty line would shift the pairing: refuse it
    with pytest.raises(DatasetError, match="line 2 is empty"):
        open_dataset("sunrgbd", root=sun.root, captions=lines)
    lines.write_text("first\r\nsecond\r\n\n\n")  # CRLF and trailing blank lines are fine
    assert open_dataset("sunrgbd", root=sun.root, captions=lines)[1].captions == ["second"]


def test_tab_separated_lines_are_a_mapping(sun, tmp_path):
    lines = tmp_path / "keyed.txt"
    lines.write_text("".join(f"{key}.jpg\tCaption of {key[-7:]}\n" for key in sorted(sun.keys)))
    dataset = open_dataset("sunrgbd", root=sun.root, captions=lines)
    assert dataset[0].captions == ["Caption of NYU0002"]


def test_json_mapping_accepts_keys_with_extensions_and_unique_bare_names(sun, tmp_path):
    mapping = {f"{sun.keys[0]}.jpg": ["A", "B"], "NYU0001": "C"}
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(mapping))
    dataset = open_dataset("sunrgbd", root=sun.root, captions=path)
    assert dataset[0].captions == ["A", "B"] and dataset[1].captions == ["C"]
    path.write_text(json.dumps({"NYU0001": "C"}))
    with pytest.raises(DatasetError, match="no caption for 1 of 2 images.*NYU0002"):
        open_dataset("sunrgbd", root=sun.root, captions=path)
    path.write_text(json.dumps({"NYU0001": ""}))
    with pytest.raises(DatasetError, match=r"captions.json \('NYU0001'\): empty caption"):
        open_dataset("sunrgbd", root=sun.root, captions=path)
    assert open_dataset("sunrgbd", root=sun.root, captions={k: "x" for k in sun.keys})[1].captions == ["x"]


def test_diode_lines_pairing_carries_a_notice(tmp_path):
    tiny = write_tiny_dataset("diode", tmp_path / "diode", size=(6, 8))
    lines = tmp_path / "diode_outdoor_all.txt"
    lines.write_text("a\nb\n")
    dataset = open_dataset("diode", root=tiny.root, captions=lines)
    assert "unsorted glob" in dataset.captions_source.notice
    mapping = write_caption_mapping(tmp_path / "diode.json", tiny)
    assert open_dataset("diode", root=tiny.root, captions=mapping).captions_source.notice is None


def test_defaults_environment_then_root_captions_then_error(tmp_path, monkeypatch):
    tiny = write_tiny_dataset("ibims", tmp_path / "ibims", size=(6, 8))
    with pytest.raises(DatasetError, match="ibims: no captions: pass captions="):
        open_dataset("ibims", root=tiny.root)
    assert open_dataset("ibims", root=tiny.root, require_captions=False)[0].captions == []
    write_caption_mapping(tiny.root / "captions" / "ibims.json", tiny)
    assert open_dataset("ibims", root=tiny.root)[0].captions[0].startswith("A tiny test scene")
    env = tmp_path / "env" / "ibims1_all.txt"
    env.parent.mkdir()
    env.write_text("from env 1\nfrom env 2\n")
    monkeypatch.setenv("TR2M_CAPTIONS", str(env.parent))
    assert open_dataset("ibims", root=tiny.root)[1].captions == ["from env 2"]


def test_sequence_captions_survive_a_release_folder_without_them(tmp_path):
    c3vd = write_tiny_dataset("c3vd", tmp_path / "c3vd", size=(6, 8))
    empty_release = tmp_path / "text_all"
    empty_release.mkdir()
    dataset = open_dataset("c3vd", root=c3vd.root, captions=empty_release)
    assert dataset[0].captions == ["The image shows a medical scene of cecum with texture type one."]
    mapping = tmp_path / "c3vd.json"
    mapping.write_text(json.dumps({key: "custom" for key in c3vd.keys}))
    assert open_dataset("c3vd", root=c3vd.root, captions=mapping)[1].captions == ["custom"]
    shutil.rmtree(empty_release)
    with pytest.raises(DatasetError, match="no such caption file or folder"):
        open_dataset("c3vd", root=c3vd.root, captions=empty_release)


@pytest.mark.parametrize(
    "name,text",
    [
        # What `tr2m caption --out captions.jsonl` writes: as many lines as images, so the old reader
        # took each JSON line for a caption without a word.
        ("captions.jsonl", '{"image": "rgb/corridor_01.png", "caption": "A corridor."}\n{"image": "rgb/corridor_02.png", "caption": "A hall."}\n'),
        ("captions.csv", "image,caption\nrgb/corridor_01.png,A corridor.\nrgb/corridor_02.png,\"A hall.\"\n"),
        ("captions.tsv", "image\tcaption\ncorridor_01\tA corridor.\ncorridor_02\tA hall.\n"),
        ("captions.txt", "image,caption\nrgb/corridor_01,A corridor.\nrgb/corridor_02,A hall.\n"),
        ("captions.json", '[{"image": "rgb/corridor_02.png", "caption": "A hall."}, {"file": "corridor_01.png", "text": "A corridor."}]'),
    ],
)
def test_every_caption_file_format_is_read_by_the_one_reader(tmp_path, name, text):
    tiny = write_tiny_dataset("ibims", tmp_path / "ibims", size=(6, 8))
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    dataset = open_dataset("ibims", root=tiny.root, captions=path)
    assert [dataset[i].captions for i in range(2)] == [["A corridor."], ["A hall."]]
    assert not dataset.captions_source.positional


def test_lists_of_captions_keep_every_line_for_training(tmp_path):
    tiny = write_tiny_dataset("ibims", tmp_path / "ibims", size=(6, 8))
    path = tmp_path / "captions.jsonl"
    path.write_text(
        '{"image": "rgb/corridor_01", "caption": ["First.", "Second."]}\n{"image": "corridor_02.png", "captions": "Only."}\n'
    )
    dataset = open_dataset("ibims", root=tiny.root, captions=path)
    assert dataset[0].captions == ["First.", "Second."] and dataset[1].captions == ["Only."]
    path.write_text('{"image": "rgb/corridor_01", "caption": "x"}\n{"image": "corridor_02.png"}\n')
    with pytest.raises(DatasetError, match=r"captions.jsonl line 2: missing 'caption'"):
        open_dataset("ibims", root=tiny.root, captions=path)
