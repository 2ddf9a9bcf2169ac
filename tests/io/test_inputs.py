"""The input walker: which files are photos, in which order, under which names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.io.inputs import Shard, collect_images, select_shard


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def keys(images) -> list[str]:
    return [image.key for image in images]


def test_folders_are_walked_recursively_in_sorted_order_with_any_suffix_case(tmp_path):
    for name in ["b.JPG", "a.png", "sub/c.jpeg", "sub/deeper/d.TiFf", "e.webp", "f.bmp", "g.tif"]:
        touch(tmp_path / name)
    for name in ["notes.txt", "captions.json", ".hidden.jpg", "._a.jpg", ".git/x.png", "sub/x.gif"]:
        touch(tmp_path / name)
    images = collect_images([tmp_path])
    assert keys(images) == ["a.png", "b.JPG", "e.webp", "f.bmp", "g.tif", "sub/c.jpeg", "sub/deeper/d.TiFf"]
    assert all(image.root == tmp_path and image.input_root == tmp_path for image in images)
    assert keys(collect_images([tmp_path], recursive=False)) == ["a.png", "b.JPG", "e.webp", "f.bmp", "g.tif"]


def test_explicit_files_mix_with_folders_and_non_images_are_ignored(tmp_path):
    photo = touch(tmp_path / "one" / "x.jpg")
    touch(tmp_path / "two" / "y.png")
    notes = touch(tmp_path / "one" / "notes.txt")
    images = collect_images([photo, notes, tmp_path / "two"])
    assert keys(images) == ["one/x.jpg", "two/y.png"]  # common root: tmp_path
    assert images[0].relative_to_input.as_posix() == "x.jpg"


def test_same_names_in_two_folders_keep_their_folders(tmp_path):
    touch(tmp_path / "cam1" / "frame0.jpg")
    touch(tmp_path / "cam2" / "frame0.jpg")
    images = collect_images([tmp_path / "cam1", tmp_path / "cam2"])
    assert [i.output_stem.as_posix() for i in images] == ["cam1/frame0", "cam2/frame0"]


def test_photos_sharing_a_stem_keep_their_suffix_in_the_output_stem(tmp_path):
    for name in ["a/x.jpg", "a/x.png", "a/X.bmp", "a/y.jpg", "b/x.jpg"]:
        touch(tmp_path / name)
    stems = {i.key: i.output_stem.as_posix() for i in collect_images([tmp_path])}
    assert stems == {"a/X.bmp": "a/X.bmp", "a/x.jpg": "a/x.jpg", "a/x.png": "a/x.png", "a/y.jpg": "a/y", "b/x.jpg": "b/x"}
    assert len({s.casefold() for s in stems.values()}) == len(stems)


def test_list_files_resolve_beside_the_list_and_skip_comments(tmp_path, monkeypatch):
    touch(tmp_path / "photos" / "a.jpg")
    touch(tmp_path / "photos" / "sub" / "b.png")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "batch.txt").write_text("# my batch\n\n../photos/a.jpg\n../photos/sub\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert keys(collect_images(["@lists/batch.txt"])) == ["a.jpg", "sub/b.png"]
    (lists / "bad.txt").write_text("../photos/a.jpg\n../photos/missing.jpg\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.txt line 2: \.\./photos/missing.jpg: no such file"):
        collect_images(["@lists/bad.txt"])


def test_missing_inputs_are_errors_naming_them(tmp_path):
    with pytest.raises(InputError, match="nowhere.jpg: no such file or folder"):
        collect_images([tmp_path / "nowhere.jpg"])
    with pytest.raises(InputError, match="no such list file"):
        collect_images([f"@{tmp_path / 'nolist.txt'}"])
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    with pytest.raises(InputError, match="dangling.jpg: broken symbolic link"):
        collect_images([tmp_path / "dangling.jpg"])


def test_symlinked_folders_are_followed_without_loops_or_repeats(tmp_path):
    touch(tmp_path / "photos" / "a.jpg")
    touch(tmp_path / "elsewhere" / "b.jpg")
    os.symlink(tmp_path / "photos", tmp_path / "photos" / "loop")  # a link to its own ancestor
    os.symlink(tmp_path / "elsewhere", tmp_path / "photos" / "linked")
    images = collect_images([tmp_path / "photos", tmp_path / "photos" / "a.jpg"])
    assert keys(images) == ["a.jpg", "linked/b.jpg"]


def test_exclude_drops_files_a_caller_writes(tmp_path):
    touch(tmp_path / "a.jpg")
    touch(tmp_path / "out" / "a.preview.png")
    images = collect_images([tmp_path], exclude=lambda p: "out" in p.parts)
    assert keys(images) == ["a.jpg"]


def test_shards_partition_the_list_exactly(tmp_path):
    for i in range(60):
        touch(tmp_path / f"d{i % 4}" / f"frame{i:03d}.jpg")
    images = collect_images([tmp_path])
    parts = [select_shard(images, Shard(k, 3)) for k in (1, 2, 3)]
    assert sorted(key for part in parts for key in keys(part)) == sorted(keys(images))
    assert all(len(part) >= 10 for part in parts)  # hashing spreads 60 photos roughly evenly
    # A machine that sees fewer files agrees with the others about the files it sees.
    fewer = select_shard(images[::2], Shard(2, 3))
    assert set(keys(fewer)) <= set(keys(parts[1]))
    assert select_shard(images, None) == images


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0"])
def test_bad_shards_are_refused(text):
    with pytest.raises(InputError, match="shard"):
        Shard.parse(text)
