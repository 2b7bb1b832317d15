"""A training job as a JSON file: what the launcher hands to every rank."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_json_atomic

DEEPSPEED_DIR = Path(__file__).with_name("deepspeed")
# What rank 0 writes beside the saved model (the worker), read by the launcher and the release.
METRICS_FILE = "training_metrics.json"


@dataclass(frozen=True)
class TrainJob:
    """One QFT, QPO, difficulty-scorer or evaluation SFT run. `hyper`: the config's hyper-parameters for that kind."""

    kind: str                  # "qft", "qpo" (DPO on preference pairs), "scorer" or "sft" (evaluation)
    base_model: str            # the model to fine-tune (DPO: also its reference)
    data: str | list[str]      # seed questions (QFT, JSONL), preference pairs (DPO), label shards (scorer) or
    #                            question/response pairs (SFT, JSONL)
    output_dir: str            # where rank 0 saves the model and its tokenizer
    prompt_style: str | None   # the generator chat format (QFT, DPO); None for the scorer and SFT
    hyper: dict[str, Any]
    seed: int
    deepspeed: str = "none"    # none | zero2 | zero3
    trust_remote_code: bool = False
    # Checkpoints (training/checkpoints.py): their folder, the one to resume from, how often (seconds of wall
    # clock) and the digests of what defines the run, recorded with each.
    checkpoints: str = ""
    resume_from: str | None = None
    checkpoint_seconds: float = 1800.0
    checkpoint_settings: dict[str, str] = field(default_factory=dict)

    def deepspeed_config(self) -> str | None:
        """The DeepSpeed JSON ("auto" values filled by the Trainer), or None."""
        return None if self.deepspeed == "none" else str(DEEPSPEED_DIR / f"{self.deepspeed}.json")

    def write(self, path: str | Path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def read(cls, path: str | Path) -> "TrainJob":
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))
