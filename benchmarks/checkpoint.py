"""The cost of training checkpoints (scalequest/training/checkpoints.py): measured on the tiny model
through the launcher on CPU, and modelled for a 7B model under ZeRO-3 on 16 GPUs.

    .venv/bin/python benchmarks/checkpoint.py --model results/tiny/models/tiny-lm [--steps 40]

Runs, side by side in one process (each a real QFT through `train`, 1 rank):
  plain     --steps steps, no checkpoint
  every     the same with a checkpoint after every step (its folder kept, to measure a checkpoint)
  resume    from every's last checkpoint (the last step): loading it, then saving the model
  one-step  1 step, no checkpoint: the start-up and the model's save that every run pays
save per checkpoint = (every - plain) / steps; load = resume - one-step.

The 7B figure is bytes written / bandwidth: bf16 weights (2 B/param) + fp32 master weights (4) +
Adam's two moments (8), split over the ranks, plus the gathered 16-bit model rank 0 saves (2).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

from scalequest.training import launcher
from scalequest.training.checkpoints import checkpoints_dir
from scalequest.training.job import TrainJob
from scalequest.training.launcher import Launch, train

HYPER = dict(epochs=1, max_steps=40, learning_rate=1e-3, lr_scheduler="cosine", warmup=0.05, max_length=128,
             per_device_batch_size=8, gradient_accumulation_steps=1, bf16=False, eval_fraction=0.0,
             logging_steps=10, packing=False)
BYTES_PER_PARAM = {"bf16 weights": 2, "fp32 master weights": 4, "Adam moments (2 x fp32)": 8}


def seeds(path: Path, count: int) -> Path:
    rng = random.Random(0)
    with path.open("w") as out:
        for _ in range(count):
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            out.write(json.dumps({"question": f"Tom has {a} apples and buys {b} more. How many now?",
                                  "source": "bench"}) + "\n")
    return path


def timed(job: TrainJob, out: Path, keep_checkpoints: bool = False) -> float:
    started = time.perf_counter()
    if keep_checkpoints:  # the launcher removes them once the model is saved
        with mock.patch.object(launcher.shutil, "rmtree"):
            train(job, out, Launch(processes_per_node=1))
    else:
        train(job, out, Launch(processes_per_node=1))
    return time.perf_counter() - started


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the tiny LM's folder (make demo builds it)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--bandwidth", type=float, default=1.0, help="file-system GB/s for the 7B model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        job = TrainJob(kind="qft", base_model=str(Path(args.model).resolve()), data=str(seeds(tmp / "s.jsonl", 400)),
                       output_dir="", prompt_style="qwen2-math", hyper={**HYPER, "max_steps": args.steps}, seed=1,
                       checkpoint_seconds=1e9)
        plain = timed(job, tmp / "plain")
        every_job = replace(job, checkpoint_seconds=0, checkpoints=str(tmp / "every.checkpoints"))
        every = timed(every_job, tmp / "every", keep_checkpoints=True)
        last = max(checkpoints_dir(tmp / "every").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        size = folder_bytes(last)
        shutil.rmtree(tmp / "every")
        resume = timed(replace(every_job, resume_from=str(last), checkpoint_seconds=1e9), tmp / "every")
        one_step = timed(replace(job, hyper={**job.hyper, "max_steps": 1}), tmp / "one")
    save = (every - plain) / args.steps
    print(f"tiny model, {args.steps} steps on 1 CPU rank: plain {plain:.1f} s, a checkpoint every step {every:.1f} s, "
          f"resume from the last {resume:.1f} s, one step {one_step:.1f} s")
    print(f"  a checkpoint: {size / 2**20:.2f} MiB; save {save * 1000:.0f} ms; load {max(resume - one_step, 0):.1f} s")
    params = 7.0e9
    per_rank = sum(BYTES_PER_PARAM.values()) * params / 16
    total = sum(BYTES_PER_PARAM.values()) * params + 2 * params
    print(f"7B model, ZeRO-3 on 16 GPUs: {total / 1e9:.0f} GB a checkpoint ({per_rank / 1e9:.1f} GB of shards per "
          f"rank, and the 16-bit model {2 * params / 1e9:.0f} GB from rank 0); at {args.bandwidth:g} GB/s "
          f"{total / 1e9 / args.bandwidth:.0f} s, at 0.25 GB/s {total / 1e9 / 0.25:.0f} s")


if __name__ == "__main__":
    main()
