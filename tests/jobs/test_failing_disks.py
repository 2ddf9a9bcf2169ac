"""A full disk or a folder turned read-only mid-run: photos fail, the run ends with a summary in
plain words, never a traceback, and leaves no temporaries."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from tr2m_cli.cli import cli

REPO = Path(__file__).resolve().parents[2]


def photos(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_disk_full_before_the_first_manifest_line(tmp_path, tiny_model_dir):
    """RLIMIT_FSIZE=0: every file stays empty, as on a full disk (EFBIG instead of ENOSPC)."""

    def no_room() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    folder = photos(tmp_path / "photos", 3)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "tr2m_cli", "convert", str(folder), "--model", str(tiny_model_dir), "--out", str(out),
         "--caption", "A room.", "--resolution", "60", "--quiet"],
        capture_output=True, text=True, timeout=120, preexec_fn=no_room,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "tr2m: failed: p0.png: cannot write" in done.stderr and "file too large" in done.stderr.lower()
    assert f"tr2m: error: cannot write {out / 'manifest.jsonl'}" in done.stderr
    assert f"tr2m: error: cannot write {out / 'summary.json'}: file too large" in done.stderr
    assert not list(out.rglob(".tr2m-tmp-*"))


def test_output_folder_made_read_only_mid_run(tmp_path, tiny_model_dir, monkeypatch):
    """Root ignores permission bits, so the read-only file system is simulated where the OS would
    report it: every rename after the first photo's files fails with EROFS."""
    from tr2m_cli.io import atomic

    real_replace = atomic.os.replace
    renames = []

    def replace(src, dst, **kwargs):
        renames.append(dst)
        if len(renames) > 3:  # the first photo's tiff, preview and intrinsics
            raise OSError(errno.EROFS, "Read-only file system", str(dst))
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", replace)
    folder = photos(tmp_path / "photos", 3)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["convert", str(folder), "--model", str(tiny_model_dir), "--out", str(out),
                                      "--caption", "A room.", "--resolution", "60", "--quiet", "--workers", "0"])  # fmt: skip
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "read-only file system" in result.output and "Traceback" not in result.output
    assert "tr2m: error: cannot write" in result.output and "summary.json" in result.output
    assert not list(out.rglob(".tr2m-tmp-*"))
    # The records the run appended are still there: the finished photo is known.
    assert '"input": "p0.png"' in (out / "manifest.jsonl").read_text()
