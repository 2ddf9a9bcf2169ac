"""Manifest parts from many workers merge into one manifest: newest record per photo, sorted,
in bounded memory, locally and on an object store."""

from __future__ import annotations

import json
import uuid

import pytest

from tr2m_cli.io import manifest_parts, storage
from tr2m_cli.io.manifest import record_line
from tr2m_cli.io.manifest_parts import PARTS_FOLDER, iter_manifest, list_parts, merge_manifest, write_part


@pytest.fixture(params=["local", "memory"])
def out(request, tmp_path):
    if request.param == "local":
        yield tmp_path / "out"
        return
    url = storage.location(f"memory://tr2m-parts-{uuid.uuid4().hex}")
    yield url
    fs = storage.filesystem(url)
    if fs.exists(url.path):
        fs.rm(url.path, recursive=True)


def records(*pairs):
    return [{"input": key, "status": status} for key, status in pairs]


def test_parts_fold_into_one_sorted_manifest_with_the_newest_record_each(out):
    storage.write_bytes(storage.join(out, "manifest.jsonl"), b"".join(
        record_line(r) for r in records(("a.jpg", "ok"), ("c.jpg", "failed"), ("z.jpg", "ok"))
    ) + b'{"input": "half a li')  # fmt: skip
    first, second = manifest_parts.new_run_id(), manifest_parts.new_run_id()
    assert first < second
    write_part(out, first, records(("d.jpg", "ok"), ("c.jpg", "failed")))
    write_part(out, second, records(("c.jpg", "ok"), ("b.jpg", "ok")))
    assert write_part(out, second, []) is None
    assert len(list_parts(out)) == 2

    assert merge_manifest(out) == 5
    merged = list(iter_manifest(storage.join(out, "manifest.jsonl")))
    assert [(r["input"], r["status"]) for r in merged] == [
        ("a.jpg", "ok"), ("b.jpg", "ok"), ("c.jpg", "ok"), ("d.jpg", "ok"), ("z.jpg", "ok"),
    ]  # fmt: skip
    assert list_parts(out) == []
    assert [i.key for i in storage.list_files(out, hidden=True) if not i.key.endswith(".lock")] == ["manifest.jsonl"]
    assert merge_manifest(out) == -1  # nothing new: left as it is


def test_merging_is_bounded_by_chunks_and_fan_in_and_gives_the_same_answer(tmp_path):
    out = tmp_path / "out"
    expected = {}
    for run in range(7):
        run_id = manifest_parts.new_run_id()
        batch = [{"input": f"p{(run * 13 + i * 7) % 50:03d}.jpg", "status": "ok", "run": run} for i in range(9)]
        write_part(out, run_id, batch)
        expected.update({r["input"]: r for r in batch})
    # 63 records in chunks of 4 and runs merged 3 at a time: several levels of merging.
    assert merge_manifest(out, chunk=4, fan_in=3) == len(expected)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [expected[k] for k in sorted(expected)]


def test_parts_live_in_a_hidden_folder_that_listings_skip(tmp_path):
    write_part(tmp_path, manifest_parts.new_run_id(), records(("a.jpg", "ok")))
    assert storage.list_files(tmp_path) == []
    assert (tmp_path / PARTS_FOLDER).is_dir()


def test_shards_sharing_an_output_folder_keep_their_parts_apart(tmp_path):
    write_part(tmp_path, manifest_parts.new_run_id(), records(("a.jpg", "ok")), "manifest-1-of-2.jsonl")
    write_part(tmp_path, manifest_parts.new_run_id(), records(("b.jpg", "ok")), "manifest-2-of-2.jsonl")
    assert merge_manifest(tmp_path, "manifest-1-of-2.jsonl") == 1
    assert [r["input"] for r in iter_manifest(tmp_path / "manifest-1-of-2.jsonl")] == ["a.jpg"]
    assert len(list_parts(tmp_path, "manifest-2-of-2.jsonl")) == 1  # the other shard's, untouched


def test_a_link_planted_at_the_manifest_name_is_refused_not_read(tmp_path):
    from tr2m_cli.errors import OutputError

    (tmp_path / "elsewhere.txt").write_text('{"input": "x.jpg", "status": "ok"}\n')
    (tmp_path / "manifest.jsonl").symlink_to(tmp_path / "elsewhere.txt")
    write_part(tmp_path, manifest_parts.new_run_id(), records(("a.jpg", "ok")))
    with pytest.raises(OutputError, match="symbolic link"):
        merge_manifest(tmp_path)
    assert (tmp_path / "elsewhere.txt").read_text() == '{"input": "x.jpg", "status": "ok"}\n'


def test_a_file_name_that_is_not_utf8_survives_a_part_and_the_merge(out):
    name = "caf\udce9.jpg"  # the byte 0xE9 of a Latin-1 name, as Python decodes file names
    write_part(out, manifest_parts.new_run_id(), records((name, "ok")))
    merge_manifest(out)
    assert [r["input"] for r in iter_manifest(storage.join(out, "manifest.jsonl"))] == [name]
