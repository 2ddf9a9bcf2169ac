"""Shared fixtures: an isolated cache per test, tiny models built once, a local HTTP server, and
the private network namespace that Ray and S3 tests run in.

No test touches the network or the user's caches: TR2M_HOME and HF_HOME point into a temporary
folder and HF_HUB_OFFLINE is set, so anything that would reach a hub fails loudly instead.

**Tests marked `netns`** (Ray clusters, the moto S3 server, multi-node torchrun) open listening
sockets, and Ray may pick the machine's own address. They never run in the test process itself:
the first of them re-runs pytest on all of them inside a fresh network namespace that has only the
loopback interface (`unshare --net`, with `lo` up; this needs root, as CI has), so nothing they
start can be reached from, or send to, anything but 127.0.0.1. Their reports come back to this
process and show as usual. Where no namespace can be made they are skipped, saying why.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# -- the private network namespace --------------------------------------------------------------

INSIDE_NAMESPACE = "TR2M_TEST_NETNS"  # set for the pytest run inside the namespace
REPORTS_FILE = "TR2M_TEST_NETNS_REPORTS"  # where that run writes its reports
NAMESPACE_TIMEOUT_S = 1800
_CONFIG: list = []  # this run's pytest config, for serialising reports


def only_loopback() -> bool:
    """True inside a namespace whose only network interface is `lo`."""
    import socket

    try:  # the interfaces of this process's namespace (/sys/class/net shows the mounter's)
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def _namespace_problem() -> str | None:
    """Why no private namespace can be made here, or None."""
    if sys.platform != "linux" or shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs Linux with unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(
        ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && ip -o link show"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0 or len(probe.stdout.splitlines()) != 1 or ": lo:" not in probe.stdout:
        return f"cannot create a network namespace (unshare --net needs root): {probe.stderr.strip()[:200]}"
    return None


def _run_in_namespace(session: pytest.Session) -> dict[str, list]:
    """Run every selected `netns` test in one pytest inside a fresh namespace; their reports by
    node id (a namespace that cannot be made: one skip report each)."""
    items = [item for item in session.items if item.get_closest_marker("netns") is not None]
    config = session.config
    problem = _namespace_problem()
    if problem is not None:
        reason = f"runs only in a private network namespace (Ray, S3 test server): {problem}"
        return {item.nodeid: [_skip_report(item, reason)] for item in items}
    with tempfile.TemporaryDirectory(prefix="tr2m-netns-") as folder:
        reports_path = Path(folder) / "reports.jsonl"
        command = [
            "unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(config.rootpath),
            *(["-x"] if config.getoption("exitfirst", False) else []),
            *[item.nodeid for item in items],
        ]  # fmt: skip
        env = {**os.environ, INSIDE_NAMESPACE: "1", REPORTS_FILE: str(reports_path), "RAY_USAGE_STATS_ENABLED": "0"}
        try:
            done = subprocess.run(
                command, cwd=config.rootpath, env=env, capture_output=True, text=True, timeout=NAMESPACE_TIMEOUT_S
            )
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            output = f"timed out after {NAMESPACE_TIMEOUT_S} s\n{exc.stdout or ''}{exc.stderr or ''}"
        reports: dict[str, list] = {}
        if reports_path.exists():
            for line in reports_path.read_text(encoding="utf-8").splitlines():
                report = config.hook.pytest_report_from_serializable(config=config, data=json.loads(line))
                if isinstance(report.longrepr, list):  # a skip's (file, line, reason), through JSON
                    report.longrepr = tuple(report.longrepr)
                reports.setdefault(report.nodeid, []).append(report)
    for item in items:
        if item.nodeid not in reports:
            reports[item.nodeid] = [_failure_report(item, f"no result from the namespace run:\n{output[-4000:]}")]
    return reports


def _skip_report(item, reason: str):
    from _pytest.reports import TestReport

    path, line, _ = item.location
    return TestReport(item.nodeid, item.location, {}, "skipped", (str(path), (line or 0) + 1, f"Skipped: {reason}"), "setup")


def _failure_report(item, text: str):
    from _pytest.reports import TestReport

    return TestReport(item.nodeid, item.location, {}, "failed", text, "call")


def pytest_configure(config):
    _CONFIG[:] = [config]
    config.addinivalue_line("markers", "netns: runs inside a private network namespace with only loopback (Ray, S3)")
    config.addinivalue_line(
        "markers", "cluster_extras: needs a package only the cluster-tests extra brings (run by .ci/run's second step)"
    )


def pytest_runtest_protocol(item, nextitem):
    if item.get_closest_marker("netns") is None or os.environ.get(INSIDE_NAMESPACE) == "1":
        return None
    session = item.session
    if not hasattr(session, "_tr2m_namespace_reports"):
        session._tr2m_namespace_reports = _run_in_namespace(session)
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in session._tr2m_namespace_reports.get(item.nodeid, []):
        item.ihook.pytest_runtest_logreport(report=report)
    # What the normal protocol's teardown does: leave the fixtures of modules and classes the
    # next test does not share, which earlier tests of this one's module may have set up.
    item.session._setupstate.teardown_exact(nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_runtest_logreport(report):
    """Inside the namespace: hand every report to the pytest that started us."""
    target = os.environ.get(REPORTS_FILE)
    if os.environ.get(INSIDE_NAMESPACE) == "1" and target:
        config = _CONFIG[0]
        data = config.hook.pytest_report_to_serializable(config=config, report=report)
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(data) + "\n")


@pytest.fixture(autouse=True)
def _namespace_guard(request):
    """A `netns` test that somehow runs outside a loopback-only namespace stops before it starts
    anything that listens."""
    if request.node.get_closest_marker("netns") is not None and not only_loopback():
        pytest.fail("refusing to run a netns test outside a private network namespace (interfaces other than lo)")


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
def served_tiny_model(tmp_path, file_server, tiny_encoders):
    """write(name, extra="") → a registry file whose model `name` has a tiny head served over
    HTTP as `tiny.pth` (sha256 given) and the tiny encoders as local folders; `extra`: more TOML."""
    import hashlib

    import torch

    from tr2m_cli.model.checkpoint import ours_to_released
    from tr2m_cli.model.head import ScaleShiftHead
    from tr2m_cli.testing import tiny_head_config

    def write(name: str = "tiny-net", extra: str = "") -> Path:
        torch.manual_seed(0)
        head = tmp_path / "tiny.pth"
        torch.save({"state_dict": ours_to_released(ScaleShiftHead(tiny_head_config()).state_dict())}, head)
        data = head.read_bytes()
        file_server.files["tiny.pth"] = data
        registry = tmp_path / "registry.toml"
        registry.write_text(
            f'[models.{name}]\nhead_url = "{file_server.url("tiny.pth")}"\nhead_sha256 = "{hashlib.sha256(data).hexdigest()}"\n'
            f'image_encoder = "{tiny_encoders["image"]}"\ntext_encoder = "{tiny_encoders["text"]}"\n'
            f'depth_model = "{tiny_encoders["relative_depth"]}"\nattention_heads = 2\n{extra}'
        )
        return registry

    return write


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


# -- services for `netns` tests (started inside the namespace only) --------------------------------


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 for this session, with the environment boto/s3fs read:
    endpoint and dummy keys. Yields the endpoint URL; stops with the session."""
    assert only_loopback()
    moto_server = pytest.importorskip("moto.server", reason="the S3 tests need moto[server] and s3fs: pip install '.[s3]' 'moto[server]'")
    pytest.importorskip("s3fs", reason="pip install '.[s3]'")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL_S3=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing-secret-key", AWS_DEFAULT_REGION="us-east-1")
    try:
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket: its name."""
    import uuid

    import fsspec

    name = f"tr2m-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(name)
    fsspec.filesystem("s3").invalidate_cache()
    return name


@pytest.fixture(scope="session")
def ray_cluster(request):
    """A local Ray cluster for the session: 4 logical CPUs (a 2-CPU cluster can deadlock a read
    behind two workers), 2 logical GPUs (GPU scheduling on a CPU machine), a small object store.
    Workers see this checkout first (PYTHONPATH) and the S3 server's settings when there is one.
    Yields the cluster's address, for drivers in other processes."""
    assert only_loopback()
    ray = pytest.importorskip("ray", reason="the Ray tests need Ray: pip install '.[ray]'")
    pytest.importorskip("ray.data", reason="pip install '.[ray]'")
    import importlib.util

    if importlib.util.find_spec("moto") is not None and importlib.util.find_spec("s3fs") is not None:
        request.getfixturevalue("s3_server")  # before Ray starts, so its workers inherit the endpoint
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    temp = tempfile.mkdtemp(prefix="tr2m-ray-", dir="/tmp")  # short: Ray's socket paths are limited
    ray.init(
        num_cpus=4,
        num_gpus=2,
        object_store_memory=96 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=temp,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
