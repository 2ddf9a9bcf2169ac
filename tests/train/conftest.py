"""Training tests run tiny models for many small steps: all of them on one torch thread (the
shared `single_thread` fixture; two threads spin on a busy two-core machine)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread(single_thread):
    yield
