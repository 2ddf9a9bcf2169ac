"""`convert --engine ray`: the plan made here, its rows converted by PhotoConverters on a Ray cluster.

    from tr2m_cli.convert.ray_engine import convert_ray
    summary = convert_ray(["s3://lab/run42/frames"], "s3://lab/run42/depth", options,
                          model="tr2m-official", workers="2,8", gpus_per_worker=1)

It is `convert`'s run (convert.pipeline) with another engine: the same plan (convert.plan), the
same per-photo work (convert.worker), so the same outputs, TIFF tags, manifest records, summary
and exit codes. What is left to do is decided here from the manifest and (on an object store) one
listing of the output prefix; each worker batch saves its records as a manifest part right after
writing its outputs (so a killed driver loses none), and the parts are merged into the manifest
at the end. Clips are read only on one machine: `convert` without Ray.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Sequence

from ..cluster import RayResources, Workers, ray_session, run_rows
from ..errors import InputError
from ..io.captions import CaptionFallback
from .options import ConvertOptions
from .pipeline import ConvertSummary, run_conversion
from .plan import ConvertPlan
from .worker import PhotoConverter, decode_rows


def convert_ray(
    inputs: Sequence[str | Any],
    out: str | Any,
    options: ConvertOptions = ConvertOptions(),
    *,
    model: Any = "tr2m-official",
    workers: int | str | tuple[int, int] | Workers = 1,
    gpus_per_worker: float | None = None,
    address: str | None = None,
    decode_on_cpus: bool = False,
    caption_fallback: CaptionFallback | None = None,
) -> ConvertSummary:
    """Convert photos (local paths or storage URLs) to metric depth under `out` on a Ray cluster.

    `workers`: N, or (MIN, MAX) / "MIN,MAX" for an autoscaling pool; `gpus_per_worker`: GPUs each
    worker holds (fractions share a GPU; None: 1 when the cluster has GPUs, else 0); `address`:
    a cluster to attach to (default: a running one, else a local one started for this call);
    `decode_on_cpus`: decode photos in CPU tasks ahead of the workers. `model`: a registry name
    or model folder (each worker loads its own). Returns the summary; raises a Tr2mError before
    any work for unusable inputs, captions, outputs or weights, and JobInterrupted when stopped."""
    from ..model.tr2m import TR2M

    if isinstance(model, TR2M):
        raise InputError("convert_ray takes a model name or folder (each worker loads its own), not a loaded model")
    resources = RayResources(workers=workers, gpus_per_worker=gpus_per_worker, address=address, decode_on_cpus=decode_on_cpus)
    return run_conversion(inputs, out, options, model=model, caption_fallback=caption_fallback, engine=RayEngine(resources))


class RayEngine:
    """The photos converted by a pool of PhotoConverter actors on Ray (see cluster.run_rows)."""

    name = "ray"
    converts_clips = False  # clips are read on one machine: `convert` without Ray
    saves_records = True  # each worker batch saves its records as a manifest part
    model = None  # loaded by the workers, not here

    def __init__(self, resources: RayResources) -> None:
        self.resources = resources
        self.precision: str | None = None

    def workers_precision(self, options: ConvertOptions, stack: contextlib.ExitStack) -> str:
        """The precision a worker will run in, asked of one placed as the workers are: the driver
        may have no GPU, and `auto` means bf16 or fp16 by the GPU (it enters every fingerprint)."""
        from ..runtime import PRECISIONS

        if options.precision in PRECISIONS:
            self.precision = options.precision
            return self.precision
        ray = stack.enter_context(ray_session(self.resources.address))  # the cluster starts before planning

        def probe(device: str, precision: str) -> str:
            from tr2m_cli.runtime import PRECISIONS, resolve_device, resolve_precision

            dtype = resolve_precision(precision, resolve_device(device))
            return next(name for name, value in PRECISIONS.items() if value == dtype)

        gpus = self.resources.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        task = ray.remote(num_gpus=gpus, num_cpus=0 if gpus else self.resources.cpus_per_worker)(probe)
        self.precision = ray.get(task.remote(options.device, options.precision))
        return self.precision

    def start(self, plan: ConvertPlan, options: ConvertOptions, stack: contextlib.ExitStack) -> None:
        if plan.jobs:
            stack.enter_context(ray_session(self.resources.address))  # (already up if it was asked)

    def where(self, plan: ConvertPlan) -> str:
        return f"on Ray, {self.resources.workers} worker(s) ({plan.model.precision})"

    def options(self) -> dict[str, Any]:
        return {"engine": self.name, "workers": str(self.resources.workers)}

    def convert(self, plan: ConvertPlan, options: ConvertOptions, run) -> None:
        """The plan's rows through a pool of PhotoConverter actors; records counted as they come."""
        settings = {"out": str(plan.out), "options": options, "run_id": run.run_id, "manifest_name": plan.manifest_name,
                    "model": str(Path(plan.model.source).resolve())}  # workers start elsewhere  # fmt: skip
        rows = run_rows(
            plan.rows,
            PhotoConverter,
            constructor_kwargs=settings,
            resources=self.resources,
            batch_size=options.batch_size,
            decode=decode_rows,
            decode_kwargs={"options": options, "token_budget": plan.model.spec.token_budget},
        )
        for row in rows:
            run.record(json.loads(row["record"]), saved=True)
