"""Downloads from a real HTTP server on 127.0.0.1: progress, resume, checksum, atomicity."""

from __future__ import annotations

import hashlib
import os

import pytest

from tr2m_cli.errors import WeightsError
from tr2m_cli.weights.download import download_file

PAYLOAD = os.urandom(3 * 1024 * 1024 + 17)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_verifies_and_shows_progress(file_server, tmp_path, capsys):
    file_server.files["head.pth"] = PAYLOAD
    dest = download_file(file_server.url("head.pth"), tmp_path / "head.pth", sha256=DIGEST, progress=True)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.pth", "head.pth.lock"]
    err = capsys.readouterr().err
    assert "head.pth" in err and "3.00M" in err  # tqdm bar with the file's size


def test_interrupted_download_resumes_where_it_stopped(file_server, tmp_path):
    file_server.files["head.pth"] = PAYLOAD
    file_server.drop_after = 1024 * 1024
    dest = tmp_path / "head.pth"
    with pytest.raises(WeightsError, match="interrupted .* run the same command again to resume"):
        download_file(file_server.url("head.pth"), dest, sha256=DIGEST, progress=False)
    assert not dest.exists()  # never a partial file under the real name
    part = tmp_path / "head.pth.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    kept = part.stat().st_size
    download_file(file_server.url("head.pth"), dest, sha256=DIGEST, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert file_server.requests[-1] == ("head.pth", f"bytes={kept}-")
    assert not part.exists()


def test_server_that_ignores_range_restarts_cleanly(file_server, tmp_path):
    file_server.files["head.pth"] = PAYLOAD
    file_server.honour_range = False
    (tmp_path / "head.pth.part").write_bytes(b"stale bytes from another file")
    download_file(file_server.url("head.pth"), tmp_path / "head.pth", sha256=DIGEST, progress=False)
    assert (tmp_path / "head.pth").read_bytes() == PAYLOAD


def test_checksum_mismatch_is_rejected_and_nothing_is_kept(file_server, tmp_path):
    file_server.files["head.pth"] = PAYLOAD
    dest = tmp_path / "head.pth"
    with pytest.raises(WeightsError, match="failed its checksum .* discarded"):
        download_file(file_server.url("head.pth"), dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and not (tmp_path / "head.pth.part").exists()


def test_complete_part_file_is_handled(file_server, tmp_path):
    file_server.files["head.pth"] = PAYLOAD
    (tmp_path / "head.pth.part").write_bytes(PAYLOAD)  # a previous run died just before renaming
    download_file(file_server.url("head.pth"), tmp_path / "head.pth", sha256=DIGEST, progress=False)
    assert (tmp_path / "head.pth").read_bytes() == PAYLOAD


def test_existing_verified_file_is_not_fetched_again(file_server, tmp_path):
    (tmp_path / "head.pth").write_bytes(PAYLOAD)
    download_file(file_server.url("head.pth"), tmp_path / "head.pth", sha256=DIGEST, progress=False)
    assert file_server.requests == []


def test_http_errors_and_unreachable_hosts(file_server, tmp_path):
    with pytest.raises(WeightsError, match="HTTP 404"):
        download_file(file_server.url("missing.pth"), tmp_path / "x.pth", progress=False)
    with pytest.raises(WeightsError, match="download of http://127.0.0.1:9/x failed"):
        download_file("http://127.0.0.1:9/x", tmp_path / "y.pth", progress=False, timeout=5)
    assert not (tmp_path / "x.pth").exists()


def test_file_urls_and_local_paths(tmp_path):
    source = tmp_path / "mirror" / "head.pth"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    download_file(source.as_uri(), tmp_path / "a.pth", sha256=DIGEST, progress=False)
    download_file(str(source), tmp_path / "b.pth", sha256=DIGEST, progress=False)
    assert (tmp_path / "a.pth").read_bytes() == (tmp_path / "b.pth").read_bytes() == PAYLOAD
    with pytest.raises(WeightsError, match="unsupported URL scheme 'ftp'"):
        download_file("ftp://example.org/x", tmp_path / "c.pth", progress=False)
