"""Only regular files are read, never more than asked."""

from __future__ import annotations

import os

import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.io.files import NotRegularFile, open_regular, read_capped, read_head


def test_fifos_and_devices_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(NotRegularFile, match="pipe.jpg: is a FIFO"):
        open_regular(tmp_path / "pipe.jpg")  # would block forever if opened plainly
    with pytest.raises(NotRegularFile, match="is a device"):
        read_head("/dev/zero", 10)
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    with pytest.raises(NotRegularFile):
        read_capped(tmp_path / "zero.txt", 10)


def test_reads_are_capped(tmp_path):
    (tmp_path / "big.txt").write_bytes(b"x" * 100)
    assert read_head(tmp_path / "big.txt", 10) == (b"x" * 10, True)
    with pytest.raises(InputError, match="larger than 50 bytes"):
        read_capped(tmp_path / "big.txt", 50)
    assert read_capped(tmp_path / "big.txt", 100) == b"x" * 100
