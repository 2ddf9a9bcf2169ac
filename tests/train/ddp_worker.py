"""Run under torchrun by test_distributed.py (a real file, as torch.distributed needs): `tr2m train`
as users run it, on synthetic scenes (handed to the training function the command calls) on the
CPU with gloo, then write this process's head to OUT/rank-N.safetensors."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(model_dir: str, out: str) -> None:
    from safetensors.torch import save_file

    import tr2m_cli.train as training
    from tr2m_cli.cli import cli
    from tr2m_cli.train.synthetic import SyntheticScenes

    datasets = {"a": SyntheticScenes(8, size=(42, 56)), "b": SyntheticScenes(6, size=(42, 56), seed=1, name="b")}
    results = []
    real_train = training.train

    def on_synthetic_scenes(config, **kwargs):
        results.append(real_train(config, datasets=datasets))
        return results[-1]

    training.train = on_synthetic_scenes  # the command imports it when it runs
    cli.main(
        ["train", "--datasets", "a", "b", "--out", str(Path(out) / "run"), "--model", model_dir, "--input-size", "42x56",
         "--epochs", "1", "--batch-size", "2", "--lr", "1e-3", "--workers", "0", "--device", "cpu", "--log-every", "1", "-q"],
        standalone_mode=False,
    )  # fmt: skip
    state = {k: v.contiguous() for k, v in results[0].model.head.state_dict().items()}
    save_file(state, str(Path(out) / f"rank-{os.environ['RANK']}.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
