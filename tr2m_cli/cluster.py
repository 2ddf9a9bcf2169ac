"""Running tr2m's per-photo work on a Ray cluster (the `ray` extra): what `convert --engine ray`
and `caption --engine ray` share.

- `RayResources`: how many workers (`N`, or `MIN,MAX` for an autoscaling pool), GPUs per worker
  (fractions allowed: 0.5 puts two workers on a GPU), CPUs per worker, the cluster address and
  whether photos are decoded by CPU tasks ahead of the GPU workers.
- `ray_session(address)`: attach to a running cluster (`address`, `RAY_ADDRESS`, or one started
  with `ray start` on this machine) or else start a local one, and stop only what it started.
- `run_rows(rows, worker_class, ...)`: a Ray Data pipeline that streams plan rows through a pool
  of stateful workers (the model loads once per worker) and yields their output rows as they
  finish, with backpressure; a worker that dies is restarted and its batch retried by Ray.

Decisions (what to do, what is done) and records (manifests, summaries) are tr2m's own and the
same as on one machine: Ray only schedules, places and retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from .errors import InputError, Tr2mError


@dataclass(frozen=True)
class Workers:
    """A fixed pool (`minimum == maximum`) or an autoscaling range."""

    minimum: int = 1
    maximum: int = 1

    def __post_init__(self) -> None:
        if self.minimum < 1 or self.maximum < self.minimum:
            raise InputError(f"--workers {self}: expected N ≥ 1, or MIN,MAX with 1 ≤ MIN ≤ MAX")

    @classmethod
    def parse(cls, value: "int | str | tuple[int, int] | Workers") -> "Workers":
        """8 → 8 workers; "2,8" or (2, 8) → between 2 and 8 as the cluster allows."""
        if isinstance(value, Workers):
            return value
        if isinstance(value, int):
            return cls(value, value)
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(int(value[0]), int(value[1]))
        parts = str(value).replace(" ", "").split(",")
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise InputError(f"--workers {value!r}: expected N or MIN,MAX, e.g. 8 or 2,8") from None
        if len(numbers) == 1:
            return cls(numbers[0], numbers[0])
        if len(numbers) == 2:
            return cls(*numbers)
        raise InputError(f"--workers {value!r}: expected N or MIN,MAX, e.g. 8 or 2,8")

    def __str__(self) -> str:
        return str(self.minimum) if self.minimum == self.maximum else f"{self.minimum},{self.maximum}"


@dataclass(frozen=True)
class RayResources:
    """Where and how wide the work runs. `gpus_per_worker` None: 1 when the cluster has GPUs,
    else 0 (CPU workers)."""

    workers: Workers = Workers()
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    address: str | None = None
    decode_on_cpus: bool = False  # decode photos in CPU tasks ahead of the workers

    def __post_init__(self) -> None:
        object.__setattr__(self, "workers", Workers.parse(self.workers))
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise InputError(f"--gpus-per-worker {self.gpus_per_worker}: must be 0 or more")
        if self.cpus_per_worker <= 0:
            raise InputError(f"CPUs per worker {self.cpus_per_worker}: must be more than 0")


def import_ray():
    """`ray` (with Ray Data), or one line naming the extra."""
    from .extras import require

    ray = require("ray", "ray", "--engine ray")
    require("ray.data", "ray", "--engine ray")
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """Ray, connected: reuse this process's connection, else attach to `address` (or the cluster
    `RAY_ADDRESS` / `ray start` on this machine names), else start a local cluster. Only a
    cluster started here is stopped at the end."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    # Ray's usage statistics are off unless the user turned them on.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(
            address=address or None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
    except ConnectionError as exc:
        raise InputError(f"--ray-address {address}: cannot attach to a Ray cluster ({exc})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_gpus(ray) -> float:
    return float(ray.cluster_resources().get("GPU", 0.0))


def run_rows(
    rows: Sequence[dict[str, Any]],
    worker_class: type,
    *,
    constructor_kwargs: dict[str, Any],
    resources: RayResources,
    batch_size: int,
    decode: Callable[..., Any] | None = None,
    decode_kwargs: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream `rows` through a pool of `worker_class` actors (made with `constructor_kwargs`,
    called with batches of up to `batch_size` rows) and yield their output rows as batches
    finish. `decode`, when given and `resources.decode_on_cpus`, runs first as CPU tasks."""
    ray = import_ray()
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # tr2m shows its own bar, counted in photos
    if hasattr(context, "print_on_execution_start"):
        context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    gpus = resources.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if cluster_gpus(ray) >= 1 else 0.0
    # Blocks of a few batches each, at most a thousand: small enough to stream and to spread over
    # the pool, large enough that a million photos do not become a million tasks.
    blocks = max(1, min(1000, len(rows) // max(1, 4 * batch_size) or 1, len(rows)))
    dataset = ray.data.from_items(list(rows), override_num_blocks=max(blocks, min(len(rows), 2 * resources.workers.maximum)))
    if decode is not None and resources.decode_on_cpus:
        dataset = dataset.map_batches(decode, fn_kwargs=decode_kwargs or {}, batch_size=batch_size, num_cpus=1)
    # A worker that dies (a lost node, a killed process) is restarted and its batch redone: Ray
    # Data's default for actor pools (max_restarts=-1, max_task_retries=-1), which we keep.
    dataset = dataset.map_batches(
        worker_class,
        fn_constructor_kwargs=constructor_kwargs,
        batch_size=batch_size,
        compute=ActorPoolStrategy(min_size=resources.workers.minimum, max_size=resources.workers.maximum),
        num_gpus=gpus,
        # A GPU worker's CPU share is Ray's default; CPU workers ask for what they were given.
        **({"num_cpus": resources.cpus_per_worker} if not gpus else {}),
    )
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            columns = {name: list(values) for name, values in batch.items()}
            count = len(next(iter(columns.values()), []))
            for i in range(count):
                yield {name: values[i] for name, values in columns.items()}
    except Tr2mError:
        raise
    except Exception as exc:
        cause = exc
        while getattr(cause, "cause", None) is not None or cause.__cause__ is not None:
            cause = getattr(cause, "cause", None) or cause.__cause__
            if isinstance(cause, Tr2mError):
                raise type(cause)(str(cause)) from None
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
        raise RuntimeError(f"the Ray job failed: {type(cause).__name__}: {detail}") from exc
