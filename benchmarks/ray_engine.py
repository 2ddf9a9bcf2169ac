"""What `--engine ray` costs and gives against `--engine local`, on the same photos, in one run.

Per-job overhead of Ray: starting a local cluster (`ray.init`), the time from the call to the
first finished batch (workers starting, each loading the model), and `ray.shutdown`. Throughput:
photos per second of both engines once working (from the first finished batch to the end), and
the wall time of the whole call.

    python benchmarks/ray_engine.py                                   # tiny model, CPU workers
    python benchmarks/ray_engine.py --photos 512 --device cuda --workers 1 --gpus-per-worker 1 \\
        --batch-size 16 --model tr2m-official                           # a GPU machine

Ray listens on sockets and may pick the machine's address, so the benchmark re-runs itself in a
private network namespace with only the loopback interface (`unshare --net`, as root) unless
`--no-namespace` (for a machine whose network you mean Ray to use).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))
INSIDE = "TR2M_BENCH_NETNS"


def in_namespace() -> bool:
    import socket

    return [name for _, name in socket.if_nameindex()] == ["lo"]


def rerun_in_namespace() -> int:
    command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable, *sys.argv]
    env = {**os.environ, INSIDE: "1", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}  # fmt: skip
    return subprocess.run(command, env=env).returncode


def first_record_time(out: Path, started: float, done: threading.Event, found: list) -> None:
    """Seconds from `started` to the first finished photo's record: a manifest part (Ray) or a
    manifest line (local)."""
    from tr2m_cli.io.manifest_parts import PARTS_FOLDER

    while not done.is_set():
        folder, manifest = out / PARTS_FOLDER / "manifest.jsonl", out / "manifest.jsonl"
        if (folder.is_dir() and any(folder.iterdir())) or (manifest.is_file() and manifest.stat().st_size):
            found.append(time.perf_counter() - started)
            return
        time.sleep(0.005)


def timed(call, out: Path) -> tuple[object, float, float]:
    """(result, wall seconds, seconds to the first record)."""
    done, found = threading.Event(), []
    started = time.perf_counter()
    watcher = threading.Thread(target=first_record_time, args=(out, started, done, found))
    watcher.start()
    try:
        result = call()
    finally:
        wall = time.perf_counter() - started
        done.set()
        watcher.join()
    return result, wall, found[0] if found else wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--model", help="Model name or folder [default: a tiny random model folder].")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--workers", default="1", help="Ray workers: N or MIN,MAX.")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--decode-on-cpus", action="store_true")
    parser.add_argument("--num-cpus", type=int, default=4, help="Logical CPUs of the local Ray cluster.")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="Torch threads of the local run: Ray gives a 1-CPU worker one (OMP_NUM_THREADS=1).")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-namespace", action="store_true")
    args = parser.parse_args()
    if not args.no_namespace and os.environ.get(INSIDE) != "1" and not in_namespace():
        sys.exit(rerun_in_namespace())

    import ray

    from convert_throughput import make_photos
    from tr2m_cli.convert import ConvertOptions, convert
    from tr2m_cli.convert.ray_engine import convert_ray
    from tr2m_cli.io.captions import CaptionRules
    from tr2m_cli.testing import make_tiny_model_folder

    scratch = Path(tempfile.mkdtemp(prefix="tr2m-bench-", dir="/tmp"))
    try:
        model = args.model or str(make_tiny_model_folder(scratch / "tiny"))
        caption_file = make_photos(scratch / "photos", args.photos, None, False)
        options = ConvertOptions(captions=CaptionRules(caption_file=caption_file), device=args.device,
                                 precision=args.precision, batch_size=args.batch_size, progress=False)  # fmt: skip
        import torch

        torch.set_num_threads(args.torch_threads)
        best: dict[str, tuple] = {}
        for repeat in range(args.repeats):  # alternate, keep each engine's best (a shared machine)
            out = scratch / f"local-{repeat}"
            local, wall, first = timed(lambda: convert([scratch / "photos"], out, options, model=model), out)
            rate = (local.converted - 1) / max(wall - first, 1e-9)
            if "local" not in best or rate > best["local"][3]:
                best["local"] = ("local", wall, first, rate, None, None)

            started = time.perf_counter()
            ray.init(num_cpus=args.num_cpus, num_gpus=1 if args.gpus_per_worker else 0, include_dashboard=False,
                     log_to_driver=False, _temp_dir=str(scratch / "ray"))  # fmt: skip
            init_s = time.perf_counter() - started
            out = scratch / f"ray-{repeat}"
            result, wall, first = timed(lambda: convert_ray([scratch / "photos"], out, options, model=model, workers=args.workers,
                                                            gpus_per_worker=args.gpus_per_worker,
                                                            decode_on_cpus=args.decode_on_cpus), out)  # fmt: skip
            started = time.perf_counter()
            ray.shutdown()
            shutdown_s = time.perf_counter() - started
            rate = (result.converted - args.batch_size) / max(wall - first, 1e-9)
            if "ray" not in best or rate > best["ray"][3]:
                best["ray"] = ("ray", wall, first, rate, init_s, shutdown_s)
            assert local.converted == result.converted == args.photos, (local.line(), result.line())
        rows = [best["local"], best["ray"]]

        print(f"{args.photos} photos, batch {args.batch_size}, device {args.device}, Ray workers {args.workers} "
              f"× {args.gpus_per_worker} GPU{' + CPU decode tasks' if args.decode_on_cpus else ''}")  # fmt: skip
        print("| engine | wall s | to first result s | photos/s working | ray.init s | shutdown s |")
        print("|---|---|---|---|---|---|")
        for engine, wall, first_s, rate, init_s, down_s in rows:
            extra = f"{init_s:.1f} | {down_s:.1f}" if init_s is not None else "– | –"
            print(f"| {engine} | {wall:.1f} | {first_s:.1f} | {rate:.2f} | {extra} |")
        print(json.dumps({"local_photos_per_s": rows[0][3], "ray_photos_per_s": rows[1][3],
                          "ratio": rows[1][3] / rows[0][3]}))  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
