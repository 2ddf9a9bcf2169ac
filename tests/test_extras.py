"""Optional dependencies: a missing extra is one line naming it; open3d loads without system libusb."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tr2m_cli.errors import MissingExtraError, Tr2mError
from tr2m_cli.extras import require


def test_a_missing_extra_is_named_in_one_line():
    with pytest.raises(MissingExtraError) as caught:
        require("tr2m_no_such_module_xyz", "3d", "meshes")
    message = str(caught.value)
    assert "\n" not in message
    assert "meshes" in message and "pip install 'tr2m[3d]'" in message
    assert isinstance(caught.value, Tr2mError)  # so the CLI prints it as one line, exit 2


def test_a_broken_dependency_of_an_installed_module_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "tr2m_fake_extra.py").write_text("import tr2m_missing_inner_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="tr2m_missing_inner_dependency"):
        require("tr2m_fake_extra", "3d", "meshes")


def test_open3d_loads_and_works_without_a_system_libusb(tmp_path):
    """A fresh process, as a user's: the loader makes open3d importable from wheels alone (CI has
    no system libusb), and it then reads a PLY we wrote."""
    pytest.importorskip("libusb_package", reason="the '3d' extra is not installed")
    script = (
        "import numpy as np\n"
        "from tr2m_cli.extras import import_open3d\n"
        "from tr2m_cli.io.pointcloud import write_ply\n"
        "o3d = import_open3d()\n"
        f"path = {str(tmp_path / 'c.ply')!r}\n"
        "write_ply(path, np.array([[0, 0, 1], [1, 0, 2]], np.float32), np.array([[255, 0, 0], [0, 255, 0]], np.uint8))\n"
        "cloud = o3d.io.read_point_cloud(path)\n"
        "print(len(cloud.points), float(np.asarray(cloud.points)[1, 2]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "2.0"]
