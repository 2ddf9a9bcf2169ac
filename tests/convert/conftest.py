"""Fixtures of the convert tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def memory_bucket():
    """A fresh prefix on fsspec's in-memory store, standing in for s3:// (S3 itself: the netns tests)."""
    import uuid

    from tr2m_cli.io import storage

    url = storage.location(f"memory://tr2m-{uuid.uuid4().hex}")
    yield url
    fs = storage.filesystem(url)
    if fs.exists(url.path):
        fs.rm(url.path, recursive=True)
