"""Previews: colours by depth, ranges, the colour bar, and the colour map tables."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.errors import InputError
from tr2m_cli.io.colormaps import COLORMAPS, colormap_table
from tr2m_cli.io.preview import PreviewOptions, colorize, nice_ticks, preview_range, render_preview, write_preview


def ramp(h=50, w=80):
    return np.repeat(np.linspace(1.0, 5.0, w, dtype=np.float32)[None, :], h, axis=0)


def test_colour_tables_match_the_published_end_colours():
    assert colormap_table("viridis")[0].tolist() == [0x44, 0x01, 0x54]
    assert colormap_table("viridis")[-1].tolist() == [0xFD, 0xE7, 0x25]
    assert colormap_table("turbo")[0].tolist() == [0x30, 0x12, 0x3B]
    assert colormap_table("gray")[128].tolist() == [128, 128, 128]
    assert set(COLORMAPS) == {"turbo", "viridis", "inferno", "magma", "plasma", "gray"}
    with pytest.raises(InputError, match="colour map 'jet'"):
        PreviewOptions(colormap="jet")


def test_near_is_the_bright_end_and_missing_depth_is_black():
    depth = ramp()
    depth[0, 0] = np.nan
    depth[0, 1] = 0.0
    image = colorize(depth, 1.0, 5.0, "gray")
    assert image[10, 0].tolist() == [255] * 3 and image[10, -1].tolist() == [0] * 3
    assert image[0, 0].tolist() == [0] * 3 and image[0, 1].tolist() == [0] * 3
    assert (np.diff(image[10, :, 0].astype(int)) <= 0).all()  # farther is never brighter


def test_percentile_and_fixed_ranges():
    depth = ramp()
    depth[0, :3] = [np.nan, 0.0, 1000.0]  # missing depth is ignored; one far outlier is clipped
    low, high = preview_range(depth, PreviewOptions())
    valid = depth[np.isfinite(depth) & (depth > 0)]
    assert (low, high) == pytest.approx(tuple(np.percentile(valid, [2, 98])))
    assert 1.0 < low < 1.1 and 4.9 < high < 5.0
    assert preview_range(ramp(), PreviewOptions(depth_range=(0.5, 10.0))) == (0.5, 10.0)
    assert preview_range(np.full((4, 4), 2.0, np.float32)) [1] > 2.0  # a flat map still has a range
    with pytest.raises(InputError, match="--depth-range 5 1"):
        PreviewOptions(depth_range=(5.0, 1.0))


def test_fixed_range_makes_previews_of_a_folder_comparable():
    options = PreviewOptions(depth_range=(0.0, 10.0), colormap="gray")
    near, _ = render_preview(np.full((8, 8), 2.0, np.float32), options)
    far, _ = render_preview(np.full((8, 8), 8.0, np.float32), options)
    assert near[0, 0, 0] > far[0, 0, 0]


def test_the_colour_bar_widens_the_image_and_the_plain_preview_keeps_its_size(tmp_path):
    depth = ramp(240, 320)
    assert write_preview(tmp_path / "plain.png", depth) == preview_range(depth)
    assert Image.open(tmp_path / "plain.png").size == (320, 240)
    write_preview(tmp_path / "bar.png", depth, PreviewOptions(colorbar=True))
    with Image.open(tmp_path / "bar.png") as image:
        assert image.height == 240 and image.width > 320
        strip = np.asarray(image)[:, 320:]
    assert (strip == 255).mean() > 0.5 and (strip < 64).any()  # white strip with dark labels


def test_ticks_are_round_numbers_inside_the_range():
    assert nice_ticks(0.9, 3.5) == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert nice_ticks(1.2, 7.9) == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert nice_ticks(12.0, 78.0) == [20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    assert nice_ticks(0.031, 0.052) == [0.035, 0.04, 0.045, 0.05]
