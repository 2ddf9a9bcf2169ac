"""What `pip install .` puts on a user's machine: the package, the registry, the console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_registry_and_entry_point(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tr2m-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "tr2m_cli/_registry.toml" in names
        assert "tr2m_cli/model/head.py" in names
        registry = archive.read("tr2m_cli/_registry.toml").decode()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "tr2m = tr2m_cli.cli:main" in archive.read(entry_points).decode()
    assert registry == (REPO_ROOT / "weights" / "registry.toml").read_text()
    assert not any(n.startswith("tests/") for n in names)
