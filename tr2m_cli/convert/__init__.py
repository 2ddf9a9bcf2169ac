"""Batch conversion of photos to metric depth files: the library behind `tr2m convert`.

    from tr2m_cli.convert import ConvertOptions, convert
    summary = convert(["photos"], "out", ConvertOptions(outputs=("tiff", "ply")), model="tr2m-official")

Modules: `options` (ConvertOptions), `plan` (what to convert and how, decided once for every
engine: captions, cameras, fingerprints, what is current), `worker` (PhotoConverter: decode,
predict, write and record each photo, for every engine), `layout` (output names), `decode`
(photos → network input and point-cloud colours), `writing` (one photo's files and record),
`clips` (videos, bags, frame folders), `pipeline` (the run: `convert`, on this machine),
`ray_engine` (`convert_ray`: the same run on a Ray cluster). The model runs through the
inference core (`tr2m_cli.model.inference`: size buckets, caption cache, out-of-memory halving),
as `predict` and `eval` do.
"""

from .options import DEFAULT_OUTPUTS, OUTPUT_KINDS, ConvertOptions, parse_outputs
from .pipeline import ConvertSummary, convert

__all__ = ["convert", "ConvertOptions", "ConvertSummary", "OUTPUT_KINDS", "DEFAULT_OUTPUTS", "parse_outputs"]
