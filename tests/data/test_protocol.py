"""The evaluation presets (spec §5–§6) and the crop masks, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.data.protocol import PRESETS, EvalProtocol, crop_mask, kb_window, parse_size, preset
from tr2m_cli.errors import InputError


def test_presets_are_the_papers_protocol():
    expected = {
        # name: (min m, max m, crop, input size, input crop, photo pre-resize, GT resize, domain)
        "nyu": (1e-3, 10, "eigen", (434, 560), None, None, None, "indoor"),
        "kitti": (1e-3, 80, "garg", (350, 1204), "kb", None, None, "outdoor"),
        "void": (0.2, 5, "eigen", (434, 560), None, None, None, "indoor"),
        "c3vd": (1e-4, 0.1, None, (434, 560), None, (480, 640), (480, 640), "surgical"),
        "sunrgbd": (1e-3, 8, "eigen", (518, 728), None, None, None, "indoor"),
        "ibims": (1e-3, 10, "eigen", (434, 560), None, None, None, "indoor"),
        "hypersim": (1e-3, 80, None, (434, 560), None, (480, 640), None, "indoor"),
        "diode": (1e-3, 80, "garg", (434, 560), None, (480, 640), None, "outdoor"),
        "simcol": (1e-4, 0.1, None, (434, 560), None, (480, 640), None, "surgical"),
    }
    assert set(PRESETS) == set(expected)
    for name, values in expected.items():
        p = PRESETS[name]
        got = (p.min_depth, p.max_depth, p.crop, p.input_size, p.input_crop, p.image_resize, p.depth_resize, p.domain)
        assert got == values, name
    assert preset("SUN-RGBD") is PRESETS["sunrgbd"] and preset("diode_outdoor") is PRESETS["diode"]
    assert PRESETS["c3vd"].report_unit == "millimetres" and PRESETS["nyu"].report_unit == "metres"


def test_eigen_crop_is_rows_45_to_471_and_cols_41_to_601():
    mask = crop_mask((480, 640), "eigen")
    assert mask.sum() == (471 - 45) * (601 - 41)
    assert mask[45, 41] and mask[470, 600] and not mask[44, 41] and not mask[45, 40]
    assert not mask[471, 100] and not mask[100, 601]
    # Other sizes get the same pixel indices, clipped (as the reference does on SUN RGB-D).
    assert crop_mask((100, 50), "eigen").sum() == (100 - 45) * (50 - 41)


def test_garg_crop_fractions_on_a_kitti_frame():
    mask = crop_mask((375, 1242), "garg")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    # int(0.40810811·375) = 153, int(0.99189189·375) = 371, int(0.03594771·1242) = 44, int(0.96405229·1242) = 1197
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (153, 371, 44, 1197)
    assert mask.sum() == (371 - 153) * (1197 - 44)
    small = crop_mask((10, 100), "garg")  # rows 4:9, cols 3:96
    assert small.sum() == 5 * 93 and small[4, 3] and not small[3, 3] and not small[9, 3]


def test_kb_window_is_the_bottom_352_rows_centred_1216_columns():
    rows, cols = kb_window((375, 1242))
    assert (rows.start, rows.stop, cols.start, cols.stop) == (23, 375, 13, 1229)
    assert crop_mask((375, 1242), "kb").sum() == 352 * 1216
    assert crop_mask((4, 5), None).all()
    with pytest.raises(InputError, match="smaller than the KITTI benchmark crop"):
        kb_window((300, 1242))


def test_overrides_replace_fields_and_are_validated():
    nyu = PRESETS["nyu"]
    custom = nyu.replace(max_depth=8.0, crop="none", input_size="518x686")
    assert (custom.min_depth, custom.max_depth, custom.crop, custom.input_size) == (1e-3, 8.0, None, (518, 686))
    assert nyu.replace(input_size="none").input_size is None  # aspect-keeping
    assert nyu.max_depth == 10  # frozen: the preset is unchanged
    with pytest.raises(InputError, match="multiples of 14"):
        nyu.replace(input_size=(480, 640))
    with pytest.raises(InputError, match="need 0 < min < max"):
        nyu.replace(min_depth=20.0)
    with pytest.raises(InputError, match="crop 'center'"):
        EvalProtocol(crop="center")
    with pytest.raises(InputError, match="expected HxW"):
        parse_size("434")
    assert parse_size("434×560") == (434, 560)


def test_patch_size_matches_the_model_and_the_data_layer_stays_light():
    import subprocess
    import sys

    from tr2m_cli.data import protocol
    from tr2m_cli.model.config import PATCH_SIZE

    assert protocol.PATCH_SIZE == PATCH_SIZE
    code = "import sys, tr2m_cli.data, tr2m_cli.data.nyu, tr2m_cli.metrics; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_protocol_round_trips_through_json_and_describes_itself():
    kitti = PRESETS["kitti"]
    data = kitti.to_dict()
    assert data["input_size"] == [350, 1204] and data["units"] == "metres"
    assert EvalProtocol.from_dict(data) == kitti
    text = kitti.describe()
    assert "range 0.001–80 m" in text and "garg" in text and "KITTI benchmark crop" in text and "350x1204" in text
