"""A driver process for test_ray_engine.py (killed part-way by the test): attaches to the test's
Ray cluster and converts a folder one photo per batch."""

from __future__ import annotations

import sys


def main(address: str, model: str, photos: str, out: str) -> None:
    from tr2m_cli.convert import ConvertOptions
    from tr2m_cli.convert.ray_engine import convert_ray
    from tr2m_cli.io.captions import CaptionRules
    from tr2m_cli.model.preprocess import SizePolicy

    options = ConvertOptions(progress=False, size=SizePolicy(token_budget=600), device="cpu", precision="fp32",
                             batch_size=1, captions=CaptionRules(caption="A room."))  # fmt: skip
    convert_ray([photos], out, options, model=model, workers=1, address=address)


if __name__ == "__main__":
    main(*sys.argv[1:5])
