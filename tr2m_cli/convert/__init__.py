"""Batch conversion of photos to metric depth files: the library behind `tr2m convert`.

    from tr2m_cli.convert import ConvertOptions, convert
    summary = convert(["photos"], "out", ConvertOptions(outputs=("tiff", "ply")), model="tr2m-official")

Modules: `options` (ConvertOptions), `layout` (output names), `decode` (photos → network input and
point-cloud colours), `writing` (one photo's files and record), `pipeline` (the run on local
folders), `progress` (what the user sees); for many machines and object stores, `plan` (what to
convert, decided once), `worker` (PhotoConverter, the per-worker piece any engine runs) and
`ray_engine` (`convert_ray`, and `convert` over URLs). The model runs through the inference core (`tr2m_cli.model.inference`:
size buckets, caption cache, out-of-memory halving), as `predict` and `eval` do.
"""

from .options import DEFAULT_OUTPUTS, OUTPUT_KINDS, ConvertOptions, parse_outputs
from .pipeline import ConvertSummary, convert

__all__ = ["convert", "ConvertOptions", "ConvertSummary", "OUTPUT_KINDS", "DEFAULT_OUTPUTS", "parse_outputs"]
