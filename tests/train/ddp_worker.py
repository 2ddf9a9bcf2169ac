"""Run under torchrun by test_distributed.py (a real file, as torch.distributed needs): train on
synthetic scenes on the CPU with gloo, then write this process's head to OUT/rank-N.safetensors."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(model_dir: str, out: str) -> None:
    from safetensors.torch import save_file

    from tr2m_cli.train import TrainOptions, train
    from tr2m_cli.train.synthetic import SyntheticScenes

    config = TrainOptions(
        out=str(Path(out) / "run"),
        datasets=("a", "b"),
        model=model_dir,
        input_size=(42, 56),
        epochs=1,
        batch_size=2,
        learning_rate=1e-3,
        num_workers=0,
        device="cpu",
        log_every=1,
        progress=False,
    )
    datasets = {"a": SyntheticScenes(8, size=(42, 56)), "b": SyntheticScenes(6, size=(42, 56), seed=1, name="b")}
    result = train(config, datasets=datasets)
    state = {k: v.contiguous() for k, v in result.model.head.state_dict().items()}
    save_file(state, str(Path(out) / f"rank-{os.environ['RANK']}.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
