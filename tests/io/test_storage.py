"""One interface over local folders and object stores: the same keys, whole files only, no
credentials in messages. `memory://` stands in for an object store (S3 itself: tests/cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tr2m_cli.errors import InputError, OutputError
from tr2m_cli.io import storage
from tr2m_cli.io.storage import Url


@pytest.fixture
def bucket(memory_bucket):
    return memory_bucket


def test_locations_parse_urls_paths_and_file_urls(tmp_path):
    assert storage.location("s3://lab/run42/frames/") == Url("s3", "lab/run42/frames")
    assert storage.location("gs://b/x.jpg").suffix == ".jpg"
    assert storage.location(f"file://{tmp_path}/a") == tmp_path / "a"
    assert storage.location("relative/x") == Path.cwd() / "relative" / "x"
    assert storage.location(tmp_path) == tmp_path
    assert not storage.is_url("C:\\photos") and storage.is_url("az://container/x")
    with pytest.raises(InputError, match="query strings"):
        storage.location("az://c/x?sig=SECRET")


def test_url_path_arithmetic_matches_pathlib():
    url = Url("s3", "lab/frames/kitchen/a.jpg")
    local = Path("/lab/frames/kitchen/a.jpg")
    assert (url.name, url.stem, url.suffix) == (local.name, local.stem, local.suffix)
    assert str(url.parent) == "s3://lab/frames/kitchen"
    assert str(url.with_name("a.txt")) == "s3://lab/frames/kitchen/a.txt"
    assert str(url.with_suffix(".png")) == "s3://lab/frames/kitchen/a.png"
    assert url.relative_to(Url("s3", "lab/frames")).as_posix() == "kitchen/a.jpg"
    assert str(storage.join(Url("s3", "lab/out"), "kitchen/a.depth.tiff")) == "s3://lab/out/kitchen/a.depth.tiff"
    with pytest.raises(ValueError):
        storage.join(Url("s3", "lab/out"), "../escape")
    assert not url.is_relative_to(Url("gs", "lab"))


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_the_same_keys_locally_and_on_an_object_store(kind, tmp_path, bucket):
    root = tmp_path / "out" if kind == "local" else bucket
    for key in ("b.txt", "kitchen/a.depth.tiff", "kitchen/deep/c.png", ".hidden/x", "kitchen/.tr2m-tmp-1-a"):
        storage.write_bytes(storage.join(root, key), key.encode())
    keys = [info.key for info in storage.list_files(root)]
    assert keys == ["b.txt", "kitchen/a.depth.tiff", "kitchen/deep/c.png"]
    assert [i.key for i in storage.list_files(root, hidden=True)] == sorted(
        ["b.txt", "kitchen/a.depth.tiff", "kitchen/deep/c.png", ".hidden/x", "kitchen/.tr2m-tmp-1-a"]
    )
    assert [i.key for i in storage.list_files(root, recursive=False)] == ["b.txt"]
    sizes = {i.key: i.size for i in storage.list_files(root)}
    assert sizes["kitchen/deep/c.png"] == len(b"kitchen/deep/c.png")
    target = storage.join(root, "kitchen/a.depth.tiff")
    assert storage.read_bytes(target) == b"kitchen/a.depth.tiff"
    with storage.open_for_reading(target) as handle:
        assert handle.read() == b"kitchen/a.depth.tiff"
    assert storage.exists(target) and storage.is_file(target) and not storage.is_file(storage.join(root, "kitchen"))
    assert storage.is_dir(storage.join(root, "kitchen"))
    assert storage.stat(target).size == len(b"kitchen/a.depth.tiff")
    storage.remove(target)
    storage.remove(target)  # already gone: fine
    assert not storage.exists(target)
    assert storage.list_files(storage.join(root, "nothing-here")) == []


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_a_failed_staged_write_leaves_nothing(kind, tmp_path, bucket):
    root = tmp_path if kind == "local" else bucket
    dest = storage.join(root, "kitchen/a.depth.tiff")
    with storage.staged_write(dest) as temp:
        assert temp.suffix == ".tiff"
        temp.write_bytes(b"whole")
    assert storage.read_bytes(dest) == b"whole"
    with pytest.raises(RuntimeError):
        with storage.staged_write(dest) as temp:
            temp.write_bytes(b"half of a new fi")
            raise RuntimeError("killed")
    assert storage.read_bytes(dest) == b"whole"
    assert [i.key for i in storage.list_files(root, hidden=True)] == ["kitchen/a.depth.tiff"]


def test_missing_files_are_one_line_errors_naming_them(bucket):
    missing = storage.join(bucket, "nope.jpg")
    with pytest.raises(InputError, match=r"nope\.jpg: no such file"):
        storage.read_bytes(missing)
    assert not storage.exists(missing)


def test_credentials_never_reach_a_message(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-very-secret")
    text = "s3://AKIA:wJalrXUtnFEMI-very-secret@bucket/x.jpg failed; az://c/x?sig=abc&se=1 denied"
    cleaned = storage.redact(text)
    assert "very-secret" not in cleaned and "sig=" not in cleaned and "AKIA" not in cleaned
    assert "s3://bucket/x.jpg" in cleaned and "az://c/x" in cleaned
    try:
        with storage.storage_errors(Url("s3", "bucket/x"), "write", OutputError):
            raise PermissionError("signature wJalrXUtnFEMI-very-secret does not match")
    except OutputError as exc:
        assert "very-secret" not in str(exc) and "permission denied" in str(exc)


def test_a_missing_backend_names_the_extra(monkeypatch):
    import fsspec

    def missing(protocol, **kwargs):
        raise ImportError("no module named gcsfs")

    monkeypatch.setattr(fsspec, "filesystem", missing)
    with pytest.raises(InputError, match=r"pip install 'tr2m\[gcs\]'"):
        storage.filesystem(Url("gs", "bucket"))
