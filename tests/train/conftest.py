"""Training tests run tiny models for many small steps: one intra-op thread each. With two
threads on a shared 2-core machine, OpenMP's spin-waiting made a tiny Depth Anything step 70×
slower whenever other processes were busy."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
