"""Shared fixtures: an isolated cache per test, tiny models built once, a local HTTP server.

No test touches the network or the user's caches: TR2M_HOME and HF_HOME point into a temporary
folder and HF_HUB_OFFLINE is set, so anything that would reach a hub fails loudly instead.
"""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TR2M_HOME", str(home / "tr2m"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TR2M_OFFLINE", raising=False)
    monkeypatch.delenv("TR2M_REGISTRY", raising=False)
    yield


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory):
    """Tiny DINOv2, CLIP (text + vision, as the real repository) and Depth Anything folders."""
    from tr2m_cli.testing import save_tiny_encoders

    return save_tiny_encoders(tmp_path_factory.mktemp("encoders"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tr2m_cli.testing import make_tiny_model_folder

    return make_tiny_model_folder(tmp_path_factory.mktemp("tiny-model") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from tr2m_cli import load_model

    return load_model(tiny_model_dir, device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def open3d():
    """open3d through the loader users get (no system libusb needed). Skips only when the `3d`
    extra is not installed at all; installed but unloadable is a failure, not a skip."""
    import importlib.util

    if importlib.util.find_spec("open3d") is None:
        pytest.skip("open3d is not installed (pip install '.[3d]')")
    from tr2m_cli.extras import import_open3d

    return import_open3d()


@pytest.fixture
def examples_dir(tmp_path) -> Path:
    """A private copy of examples/ (real photos + captions.json), safe to write beside."""
    import shutil

    return Path(shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples"))


@pytest.fixture
def shared_data() -> Path:
    """Real RGB-D files in their native formats (read-only material beside the checkout)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present beside this checkout")
    return SHARED_DATA


@dataclass
class FileServer:
    """A small HTTP server on 127.0.0.1 serving in-memory files, with Range support and a switch
    to drop the connection part-way (to test resuming)."""

    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: int | None = None  # bytes sent before the connection is cut, once
    honour_range: bool = True
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def file_server():
    state = FileServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            name = self.path.lstrip("/")
            header = self.headers.get("Range")
            state.requests.append((name, header))
            if name not in state.files:
                self.send_error(404, "Not Found")
                return
            data = state.files[name]
            start = 0
            if header and state.honour_range and header.startswith("bytes="):
                start = int(header[len("bytes=") :].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if state.drop_after is not None:
                cut, state.drop_after = state.drop_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def single_thread():
    """Tiny models run fastest on one thread; on a shared two-core machine two threads spin."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory):
    """All nine datasets in their native layouts (2 frames each) under their conventional
    folders, with the paper-style caption release in `captions/`: (root, {name: TinyDataset})."""
    from tr2m_cli.data.fixtures import write_tiny_data_root

    root = tmp_path_factory.mktemp("tiny-data")
    return root, write_tiny_data_root(root, train_frames=0)  # test splits only: training tests write their own
