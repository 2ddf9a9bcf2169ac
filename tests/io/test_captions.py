"""Caption sources: formats, keys, precedence, and every error a caption file can cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.io.captions import (
    DOMAIN_CAPTIONS,
    CaptionFallback,
    CaptionResolver,
    CaptionRules,
    caption_root_path,
    load_caption_file,
    sidecar_path,
)
from tr2m_cli.io.inputs import collect_images


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    for name in ["kitchen/a.jpg", "kitchen/b.png", "street/c.jpg"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    return root


def resolve(photos: Path, **rules):
    images = collect_images([photos])
    resolver = CaptionResolver(CaptionRules(**rules), images)
    return {image.key: caption for image, caption in zip(images, resolver.resolve_all(images))}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_json_keys_may_be_relative_paths_names_or_stems(photos, tmp_path):
    captions = {"kitchen/a.jpg": "A kitchen.", "b.png": ["A table.", "unused second caption"], "c": "A street."}
    found = resolve(photos, caption_file=write(tmp_path / "c.json", json.dumps(captions)))
    assert {k: c.text for k, c in found.items()} == {"kitchen/a.jpg": "A kitchen.", "kitchen/b.png": "A table.", "street/c.jpg": "A street."}
    assert {c.source for c in found.values()} == {"caption-file"}
    assert found["street/c.jpg"].origin.endswith("['c']")


@pytest.mark.parametrize(
    "name,text",
    [
        ("c.jsonl", '{"image": "kitchen/a.jpg", "caption": "A kitchen."}\n\n{"image": "street/c", "caption": ["A street."]}\n'),
        ("c.json", '[{"image": "kitchen/a.jpg", "caption": "A kitchen."}, {"file": "c.jpg", "text": "A street."}]'),
        ("c.csv", 'image,caption,notes\nkitchen/a.jpg,"A kitchen.",x\nc.jpg,A street.,\n'),
        ("c.tsv", "image\tcaption\nkitchen/a.jpg\tA kitchen.\nc.jpg\tA street.\n"),
        ("lines.json", '{"image": "kitchen/a.jpg", "caption": "A kitchen."}\n{"image": "c.jpg", "caption": "A street."}\n'),
    ],
)
def test_json_lines_lists_csv_and_tsv_are_read(photos, tmp_path, name, text):
    found = resolve(photos, caption_file=write(tmp_path / name, text))
    assert found["kitchen/a.jpg"].text == "A kitchen." and found["street/c.jpg"].text == "A street."
    assert found["kitchen/b.png"] is None


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("bad.json", '{"a.jpg": "A kitchen.",}', r"bad.json: not valid JSON \(line 1, column 24"),
        ("bad.json", '"just text"', "expected a JSON object mapping image"),
        ("bad.json", '{"a.jpg": ""}', r"'a.jpg'\): empty caption"),
        ("bad.json", '{"a.jpg": 3}', "caption must be text"),
        ("bad.json", '{"a.jpg": []}', "empty list of captions"),
        ("bad.json", '{"a.jpg": "One.", "a.jpg": "Two."}', "key 'a.jpg' is given twice with different captions"),
        ("bad.json", "{}", "holds no captions"),
        ("bad.jsonl", '{"image": "a.jpg", "caption": "x"}\n{"image": "b.jpg"}\n', "bad.jsonl line 2: missing 'caption'"),
        ("bad.jsonl", '{"image": "a.jpg", "caption": "x"}\nnot json\n', "bad.jsonl line 2: not valid JSON"),
        ("bad.csv", "file_name,description\na.jpg,x\n", "expected a header with 'image' and 'caption' columns"),
        ("bad.csv", "image,caption\na.jpg,\n", r"bad.csv line 2 \('a.jpg'\): empty caption"),
    ],
)
def test_malformed_caption_files_fail_before_work_with_one_clear_line(photos, tmp_path, name, text, message):
    with pytest.raises(InputError, match=message) as info:
        resolve(photos, caption_file=write(tmp_path / name, text))
    assert "\n" not in str(info.value) and name in str(info.value)


def test_missing_unreadable_and_folder_caption_files(tmp_path, photos):
    with pytest.raises(InputError, match="no such caption file"):
        load_caption_file(tmp_path / "none.json")
    with pytest.raises(InputError, match="is a folder, not a caption file"):
        load_caption_file(photos)
    (tmp_path / "latin.json").write_bytes('{"a.jpg": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_caption_file(tmp_path / "latin.json")


def test_a_key_matching_two_photos_is_an_error_naming_both(tmp_path):
    for name in ["cam1/frame0.jpg", "cam2/frame0.jpg", "cam3/x.jpg", "cam3/x.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    images = collect_images([tmp_path])
    rules = CaptionRules(caption_file=write(tmp_path / "c.json", '{"frame0.jpg": "A room."}'))
    with pytest.raises(InputError, match=r"key 'frame0.jpg' matches 2 photos \(cam1/frame0.jpg, cam2/frame0.jpg\)"):
        CaptionResolver(rules, images)
    rules = CaptionRules(caption_file=write(tmp_path / "c.json", '{"cam3/x": "A room."}'))
    with pytest.raises(InputError, match=r"key 'cam3/x' matches 2 photos \(cam3/x.jpg, cam3/x.png\)"):
        CaptionResolver(rules, images)
    rules = CaptionRules(caption_file=write(tmp_path / "c.json", '{"cam3/x.jpg": "A.", "cam3/x.png": "B."}'))
    assert [c.text if c else None for c in CaptionResolver(rules, images).resolve_all(images)] == [None, None, "A.", "B."]


def test_two_keys_giving_one_photo_different_captions_is_an_error(photos, tmp_path):
    text = '{"kitchen/a.jpg": "A kitchen.", "a": "A bedroom."}'
    with pytest.raises(InputError, match=r"keys 'kitchen/a.jpg', 'a' all match kitchen/a.jpg but give different captions"):
        resolve(photos, caption_file=write(tmp_path / "c.json", text))
    same = '{"kitchen/a.jpg": "A kitchen.", "a": "A kitchen."}'
    assert resolve(photos, caption_file=write(tmp_path / "c.json", same))["kitchen/a.jpg"].text == "A kitchen."


def test_precedence_file_then_tree_then_sidecar_then_option_then_domain(photos, tmp_path):
    tree = tmp_path / "tree"
    (tree / "kitchen").mkdir(parents=True)
    write(tree / "kitchen" / "a.txt", "From the tree.\n")
    write(tree / "kitchen" / "b.txt", "\n\n  Tree caption for b.  \nsecond line\n")
    write(photos / "kitchen" / "a.txt", "Sidecar of a.")
    write(photos / "street" / "c.txt", "Sidecar of c.")
    caption_file = write(tmp_path / "c.json", '{"kitchen/a.jpg": "From the file."}')

    found = resolve(photos, caption_file=caption_file, caption_root=tree, caption="Everything.", domain="indoor")
    assert [(c.text, c.source) for c in found.values()] == [
        ("From the file.", "caption-file"),
        ("Tree caption for b.", "caption-root"),
        ("Sidecar of c.", "sidecar"),
    ]
    found = resolve(photos, caption_root=tree, sidecars=False, caption="Everything.")
    assert [(c.text, c.source) for c in found.values()] == [
        ("From the tree.", "caption-root"),
        ("Tree caption for b.", "caption-root"),
        ("Everything.", "option"),
    ]
    found = resolve(photos, sidecars=False, domain="outdoor")
    assert {(c.text, c.source, c.origin) for c in found.values()} == {(DOMAIN_CAPTIONS["outdoor"], "domain", "outdoor")}
    assert set(resolve(photos, sidecars=False).values()) == {None}


def test_sidecar_and_tree_locations_mirror_the_inputs(tmp_path):
    for name in ["a/x.jpg", "a/x.png", "a/y.jpg"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    images = {i.key: i for i in collect_images([tmp_path])}
    assert sidecar_path(images["a/y.jpg"]) == tmp_path / "a" / "y.txt"
    assert sidecar_path(images["a/x.png"]) == tmp_path / "a" / "x.png.txt"  # x.jpg shares the stem
    assert caption_root_path(images["a/y.jpg"], "/caps") == Path("/caps/a/y.txt")
    # A shared <stem>.txt still serves both photos; a <name>.txt wins for its own photo.
    write(tmp_path / "a" / "x.txt", "Shared.")
    write(tmp_path / "a" / "x.png.txt", "Own.")
    resolver = CaptionResolver(CaptionRules(), images.values())
    assert [resolver.resolve(images[k]).text for k in ("a/x.jpg", "a/x.png")] == ["Shared.", "Own."]


def test_the_fallback_is_asked_once_for_the_photos_without_captions(photos):
    write(photos / "kitchen" / "a.txt", "A kitchen.")
    calls = []

    def generate(images):
        calls.append([i.key for i in images])
        return ["A generated caption.", None]

    images = collect_images([photos])
    resolver = CaptionResolver(CaptionRules(domain="indoor"), images, CaptionFallback("tiny-captioner", generate))
    found = resolver.resolve_all(images)
    assert calls == [["kitchen/b.png", "street/c.jpg"]]
    assert [(c.source, c.origin) for c in found] == [
        ("sidecar", str(photos / "kitchen" / "a.txt")),
        ("generated", "tiny-captioner"),
        ("domain", "indoor"),
    ]


def test_rules_are_checked(tmp_path):
    with pytest.raises(InputError, match="domain 'underwater'"):
        CaptionRules(domain="underwater")
    with pytest.raises(InputError, match="--caption is empty"):
        CaptionRules(caption="   ")
    with pytest.raises(InputError, match="no such caption folder"):
        CaptionResolver(CaptionRules(caption_root=tmp_path / "none"))


def test_one_reader_keeps_every_caption_and_reads_one_per_line_files_for_callers_that_can_pair_them(tmp_path):
    from tr2m_cli.io.captions import read_caption_file

    mapping = read_caption_file(write(tmp_path / "c.json", '{"a.jpg": ["One.", " Two. "], "b": "Three."}'))
    assert mapping.by_key == {"a.jpg": ["One.", "Two."], "b": ["Three."]} and mapping.lines is None
    assert load_caption_file(tmp_path / "c.json") == {"a.jpg": "One.", "b": "Three."}  # convert: the first
    keyed = read_caption_file(write(tmp_path / "k.txt", "a.jpg\tOne.\nb.png\tTwo.\n"))
    assert keyed.by_key == {"a.jpg": ["One."], "b.png": ["Two."]}
    lines = write(tmp_path / "l.txt", "A kitchen.\r\nA street.\n\n")
    assert read_caption_file(lines, lines_allowed=True).lines == ["A kitchen.", "A street."]
    with pytest.raises(InputError, match="l.txt: one caption per line, without the images they belong to"):
        load_caption_file(lines)  # convert has no order to pair them in
    write(tmp_path / "l.txt", "A kitchen.\n\nA street.\n")
    with pytest.raises(InputError, match="l.txt: line 2 is empty"):
        read_caption_file(tmp_path / "l.txt", lines_allowed=True)
