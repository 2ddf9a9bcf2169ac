"""Decoding for the network: reduced early, full-size copies rationed."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from tr2m_cli.convert import decode
from tr2m_cli.model import inference
from tr2m_cli.io.captions import Caption
from tr2m_cli.io.inputs import collect_images
from tr2m_cli.model.preprocess import SizePolicy

CAPTION = Caption("A room.", "option", "--caption")


class CountingSlots:
    def __init__(self) -> None:
        self.slots = threading.BoundedSemaphore(1)
        self.acquired = self.released = 0

    def acquire(self) -> None:
        self.slots.acquire()
        self.acquired += 1

    def release(self) -> None:
        self.released += 1
        self.slots.release()


def test_big_pngs_take_a_slot_and_are_reduced_before_the_network(tmp_path, monkeypatch):
    Image.fromarray(np.full((600, 800, 3), 100, np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.full((600, 800, 3), 100, np.uint8)).save(tmp_path / "big.jpg")
    monkeypatch.setattr(inference, "BIG_PHOTO_PIXELS", 10_000)
    slots = CountingSlots()
    png, jpeg = (decode.decode_photo(image, CAPTION, SizePolicy(token_budget=48), big_photo_slots=slots)
                 for image in collect_images([tmp_path / "big.png", tmp_path / "big.jpg"]))  # fmt: skip
    assert (slots.acquired, slots.released) == (1, 1)  # the PNG only: the JPEG is decoded small
    assert png.size == jpeg.size == (600, 800)
    assert tuple(png.photo.pixels.shape[1:]) == png.network_size == (84, 112)
    grid = decode_photo_grid(tmp_path / "big.png", (150, 200))
    assert grid.shape == (150, 200, 3) and (grid == 100).all()


def decode_photo_grid(path, grid):
    image = collect_images([path])[0]
    return decode.decode_photo(image, CAPTION, SizePolicy(token_budget=48), cloud_grid=lambda h, w: grid).colors
