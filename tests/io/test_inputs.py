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


# -- clips: videos, bags, folders of numbered frames ---------------------------------------------


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _clip_tree(tmp_path):
    from PIL import Image

    root = tmp_path / "in"
    for name in ("a.jpg", "cam/b.png", "frames/0001.png", "frames/0002.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(root / name)
    _touch(root / "drive.MP4")
    _touch(root / "cam/rec.bag")
    _touch(root / "rec2/metadata.yaml", b"rosbag2_bagfile_information: {}")
    _touch(root / "rec2/rec2_0.db3")
    _touch(root / "notes.txt")
    return root


def test_videos_and_bags_are_found_beside_photos_and_a_ros2_bag_folder_is_one_recording(tmp_path):
    from tr2m_cli.io.inputs import find_inputs

    root = _clip_tree(tmp_path)
    found = find_inputs([root], clips=True)
    assert [i.key for i in found.images] == ["a.jpg", "cam/b.png", "frames/0001.png", "frames/0002.png"]
    assert [(c.key, c.kind, c.output_stem.as_posix()) for c in found.clips] == [
        ("cam/rec.bag", "bag", "cam/rec"),
        ("drive.MP4", "video", "drive"),
        ("rec2", "bag", "rec2"),  # its .db3 inside is not a second recording
    ]


def test_photo_commands_do_not_pick_up_videos(tmp_path):
    from tr2m_cli.io.inputs import find_photos

    root = _clip_tree(tmp_path)
    found = find_photos([root])
    assert found.clips == [] and "drive.MP4" not in [i.key for i in found.images]


def test_with_sequence_each_folder_of_images_is_one_clip_of_frames(tmp_path):
    from tr2m_cli.io.inputs import find_inputs

    root = _clip_tree(tmp_path)
    found = find_inputs([root], sequence=True)
    assert found.images == []  # every image is a frame of its folder's clip
    # in/ holds a.jpg, so in/ itself is a clip, named by its own name like any folder clip
    assert [(c.key, c.kind) for c in found.clips] == [
        ("in", "frames"), ("in/cam", "frames"), ("in/cam/rec.bag", "bag"), ("in/drive.MP4", "video"),
        ("in/frames", "frames"), ("in/rec2", "bag"),
    ]  # fmt: skip
    single = find_inputs([root / "frames"], sequence=True)  # the folder named itself mirrors by its name
    assert [(c.key, c.output_stem.as_posix(), c.path) for c in single.clips] == [("frames", "frames", root / "frames")]


def test_clips_without_their_reader_are_skipped_with_the_extra_to_install(tmp_path, monkeypatch):
    import importlib.util

    from tr2m_cli.io.inputs import find_inputs

    root = _clip_tree(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    found = find_inputs([root], clips=True)
    assert [c.key for c in found.clips] == ["cam/rec.bag", "rec2"]
    (skipped,) = [s for s in found.skipped if s.path.name == "drive.MP4"]
    assert "tr2m[video]" in skipped.reason


def test_a_clips_own_preview_video_is_never_read_back_and_clip_folders_stay_apart(tmp_path):
    from tr2m_cli.io.inputs import find_inputs

    root = _clip_tree(tmp_path)
    _touch(root / "out/drive/drive.preview.mp4")
    _touch(root / "x.mp4")
    from PIL import Image

    (root / "x").mkdir()
    Image.new("RGB", (4, 4)).save(root / "x" / "000000.png")
    found = find_inputs([root], clips=True)
    assert "out/drive/drive.preview.mp4" not in [c.key for c in found.clips]
    (x,) = [c for c in found.clips if c.key == "x.mp4"]
    assert x.output_stem.as_posix() == "x.mp4"  # OUT/x/ holds the outputs of x/000000.png
