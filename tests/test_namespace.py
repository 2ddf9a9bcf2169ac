"""The harness that keeps Ray and S3 tests off the machine's network: `netns` tests run in a
namespace with only loopback, where no route leads anywhere else."""

from __future__ import annotations

import os
import socket

import pytest


@pytest.mark.netns
def test_netns_tests_see_only_loopback():
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    assert os.environ.get("TR2M_TEST_NETNS") == "1"
    # Connecting a UDP socket sends nothing; it only asks for a route, and there is none.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        with pytest.raises(OSError):
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: documentation-only address
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
