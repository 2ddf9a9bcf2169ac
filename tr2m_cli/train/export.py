"""From a training checkpoint to a model folder that `convert`, `eval` and `load_model` use.

    tr2m train export runs/exp1 --out models/exp1            # the best checkpoint
    tr2m train export runs/exp1 --which last --out models/exp1-last
    tr2m train export runs/exp1/checkpoints/epoch-007.safetensors --out models/exp1-e7

The folder gets the trained head (our safetensors layout) and the run's encoders (Hugging Face
ids, or the absolute folders the run used), and records the run in its provenance. Trained heads
answer in metres on every domain (training reads all depth in metres), so no domain conversion is
recorded, unlike the authors' released weights.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import WeightsError
from ..model.checkpoint import head_from_state
from ..model.config import HeadConfig
from .run_folder import RunFolder, find_checkpoint
from .state import read_checkpoint


def export_model(
    source: str | Path,
    out: str | Path,
    *,
    which: str = "best",
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the model folder `out` from a run folder's best/last checkpoint or a checkpoint file."""
    from ..weights.folder import save_model_folder

    path = find_checkpoint(source, which)
    state = read_checkpoint(path)
    try:
        config = HeadConfig.from_dict(state["head_config"])
        encoders = state["encoders"]
        progress = state["progress"]
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: incomplete training checkpoint ({exc})") from None
    head = head_from_state(state["head"], config, path)
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    record = RunFolder(run).read_record()
    training = state.get("config", {})
    provenance = {
        "trained_with": "tr2m train",
        "run": str(run.resolve()),
        "checkpoint": path.name,
        "epochs_done": progress.get("epoch"),
        "global_step": progress.get("global_step"),
        "datasets": training.get("datasets"),
        "units": "metres",
    }
    best = record.get("best")
    if best and Path(path).name in (best.get("checkpoint"), "best.safetensors"):
        provenance["validation"] = {"metric": best.get("metric"), "value": best.get("value")}
    return save_model_folder(
        head,
        out,
        image_encoder=encoders["image"],
        text_encoder=encoders["text"],
        depth_model=encoders["relative_depth"],
        name=name,
        token_budget=state.get("token_budget"),
        provenance=provenance,
        overwrite=overwrite,
    )
