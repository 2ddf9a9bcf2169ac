"""Several real tr2m processes on one output folder, one captions file, one model: they
cooperate, and nothing is lost."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.io.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def tr2m(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tr2m_cli", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())


def photos(folder: Path, names: list[str]) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / name)


def test_two_converts_into_one_folder_lose_no_record(tmp_path, tiny_model_dir):
    folder = tmp_path / "photos"
    names = [f"s{s}/p{i:02d}.png" for s in range(4) for i in range(8)]
    photos(folder, names)
    out = tmp_path / "out"
    common = ["--model", tiny_model_dir, "--out", out, "--caption", "A room.", "--resolution", 60,
              "--outputs", "tiff", "--batch-size", 1, "--quiet"]  # fmt: skip
    first = tr2m("convert", folder / "s0", folder / "s1", *common)
    second = tr2m("convert", folder / "s2", folder / "s3", *common)
    for process in (first, second):
        _, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
    records = read_manifest(out / "manifest.jsonl")
    assert sorted(records) == sorted(names) and all(r["status"] == "ok" for r in records.values())
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 32
    assert not list(out.rglob(".tr2m-tmp-*"))


def test_temporaries_of_a_live_run_are_never_touched(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    out.mkdir()
    in_flight = out / ".tr2m-tmp-0123456789ab-x.depth.tiff"
    in_flight.write_bytes(b"being written by another run")
    # Another run, live: it holds the folder's run lock as every run does.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom tr2m_cli.io.locks import FileLock\n"
         "lock = FileLock(sys.argv[1]); lock.acquire(shared=True); print('ready', flush=True); time.sleep(120)",
         str(out / ".tr2m-run.lock")],
        stdout=subprocess.PIPE, text=True, env=environment(),
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        photos(tmp_path / "photos", ["a.png"])
        run = tr2m("convert", tmp_path / "photos", "--model", tiny_model_dir, "--out", out, "--caption", "A room.", "--resolution", 60, "--quiet")
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert in_flight.read_bytes() == b"being written by another run"
    finally:
        holder.kill()
        holder.wait()
    # With no other run live, a run clears what killed runs left.
    run = tr2m("convert", tmp_path / "photos", "--model", tiny_model_dir, "--out", out, "--caption", "A room.", "--resolution", 60, "--quiet")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert not in_flight.exists()


def test_two_caption_runs_into_one_file_keep_every_caption(tmp_path):
    from tr2m_cli.caption.testing import save_tiny_blip

    captioner = save_tiny_blip(tmp_path / "blip")
    folder = tmp_path / "photos"
    names = [f"p{i:02d}.png" for i in range(60)]
    photos(folder, names)
    out = tmp_path / "captions.json"
    runs = [
        tr2m("caption", *[folder / n for n in names[half::2]], "--captioner", captioner, "--out", out, "--device", "cpu", "--quiet")
        for half in (0, 1)
    ]
    for process in runs:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    assert sorted(json.loads(out.read_text())) == names


@pytest.fixture
def slow_server(tiny_model_dir):
    """Serves the tiny head slowly (a big file on a real network): concurrent first uses overlap."""
    import http.server
    import threading

    body = (tiny_model_dir / "head.safetensors").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            step = max(1, len(body) // 10)
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                time.sleep(0.1)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/head.safetensors"
    server.shutdown()
    server.server_close()


def test_three_first_downloads_of_one_model_at_once(tmp_path, slow_server):
    registry = tmp_path / "registry.toml"
    registry.write_text(f'[models.tiny]\nhead_url = "{slow_server}"\n')
    env = {**environment(), "TR2M_REGISTRY": str(registry), "TR2M_HOME": str(tmp_path / "home")}
    env.pop("HF_HUB_OFFLINE", None)
    runs = [
        subprocess.Popen([sys.executable, "-m", "tr2m_cli", "weights", "download", "tiny", "--head-only", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=180) for process in runs]
    assert [process.returncode for process in runs] == [0, 0, 0], outputs
    models = tmp_path / "home" / "models"
    assert sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock")) == ["tiny"]
    assert sorted(p.name for p in (models / "tiny").iterdir()) == ["head.safetensors", "tr2m.json"]


def test_sigterm_during_caption_saves_every_caption_made(tmp_path):
    from tr2m_cli.caption.testing import save_tiny_blip

    captioner = save_tiny_blip(tmp_path / "blip")
    folder = tmp_path / "photos"
    names = [f"p{i:03d}.png" for i in range(150)]
    photos(folder, names)
    out = tmp_path / "captions.jsonl"
    process = tr2m("caption", folder, "--captioner", captioner, "--out", out, "--device", "cpu", "--batch-size", 1, "--workers", 0)
    # Wait until captions are being made (the progress bar counts them on stderr).
    seen = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        chunk = os.read(process.stderr.fileno(), 4096)
        if not chunk:  # the process ended: the assertions below say how
            break
        seen += chunk.decode(errors="replace")
        # tqdm throttles its redraws, so any count from 3 on will do (not one exact frame).
        if any(int(n) >= 3 for n in re.findall(r"\| *(\d+)/150", seen)):
            break
    process.terminate()  # SIGTERM, as a batch scheduler sends
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, seen + err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    saved = [json.loads(line)["image"] for line in out.read_text().splitlines()]
    summary = json.loads((tmp_path / "captions.summary.json").read_text())
    assert len(saved) == summary["captioned"] >= 3 and summary["signal"] == "SIGTERM"
