"""Datasets: one module per dataset (layout, split lists, depth decoding, range, crop), shared by
`tr2m eval` and `tr2m train`. Every dataset yields `DepthSample`s in metres."""

from .base import DepthSample

__all__ = ["DepthSample"]
