"""Finding dataset roots: explicit > data root > TR2M_<NAME>_ROOT > TR2M_DATA_ROOT."""

from __future__ import annotations

import pytest

from tr2m_cli.data import DatasetMissing, canonical_name, conventional_folder, find_root
from tr2m_cli.errors import DatasetError


def test_names_and_aliases():
    assert [canonical_name(n) for n in ("NYU", "sun", "SUN-RGBD", "ibims-1", "DIODE_outdoor", "SimCol3D", "void1500")] == [
        "nyu", "sunrgbd", "sunrgbd", "ibims", "diode", "simcol", "void"
    ]
    assert [conventional_folder(n) for n in ("nyu", "sun", "diode")] == ["nyu", "sunrgbd", "diode"]


def test_precedence_explicit_then_data_root_then_environment(tmp_path, monkeypatch):
    explicit, data, env_root, env_data = (tmp_path / p for p in ("explicit", "data", "env", "envdata"))
    for folder in (explicit, data / "nyu", env_root, env_data / "nyu", env_data / "kitti"):
        folder.mkdir(parents=True)
    monkeypatch.setenv("TR2M_NYU_ROOT", str(env_root))
    monkeypatch.setenv("TR2M_DATA_ROOT", str(env_data))
    assert find_root("nyu", root=explicit, data_root=data) == explicit
    assert find_root("nyu", data_root=data) == data / "nyu"
    assert find_root("nyu") == env_root
    assert find_root("kitti") == env_data / "kitti"
    # A data root without the set's folder falls through to the set's own variable...
    assert find_root("nyu", data_root=tmp_path / "explicit") == env_root
    # ...but TR2M_DATA_ROOT does not override an explicit data root.
    with pytest.raises(DatasetMissing, match="kitti: no folder .*explicit/kitti"):
        find_root("kitti", data_root=explicit)


def test_alternative_folder_names_under_a_data_root(tmp_path):
    (tmp_path / "ibims1_core_raw").mkdir()
    (tmp_path / "void_release").mkdir()
    assert find_root("ibims", data_root=tmp_path) == tmp_path / "ibims1_core_raw"
    assert find_root("void", data_root=tmp_path) == tmp_path / "void_release"


def test_missing_roots_say_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.delenv("TR2M_DATA_ROOT", raising=False)
    monkeypatch.delenv("TR2M_SUNRGBD_ROOT", raising=False)
    with pytest.raises(DatasetMissing) as info:
        find_root("sun")
    message = str(info.value)
    assert "--sunrgbd-root" in message and "--data-root" in message and "TR2M_SUNRGBD_ROOT" in message
    assert "\n" not in message
    with pytest.raises(DatasetMissing, match="no such folder"):
        find_root("nyu", root=tmp_path / "absent")
    with pytest.raises(DatasetError, match="given as the data root"):
        find_root("nyu", data_root=tmp_path / "absent")
