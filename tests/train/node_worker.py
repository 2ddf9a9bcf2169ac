"""Run under torchrun by test_distributed.py as one of several "nodes": load a registry model the
way training does (node_leaders_first) and record when this process loaded it."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path


def main(model: str, out: str) -> None:
    from tr2m_cli.weights.load import load_model
    from tr2m_cli.train import distributed

    procs, device = distributed.start("cpu")
    times = {}

    def load():
        times["start"] = time.time()
        loaded = load_model(model, device=device, precision="fp32", progress=False)
        times["end"] = time.time()
        return loaded

    loaded = distributed.node_leaders_first(procs, load)
    digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in loaded.head.state_dict().values())).hexdigest()
    record = {"rank": procs.rank, "local_rank": procs.local_rank, "node": os.environ["TEST_NODE"], "digest": digest, **times}
    Path(out, f"rank-{procs.rank}.json").write_text(json.dumps(record))
    distributed.barrier(procs)
    distributed.stop(procs)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
