"""The per-rank entry point: `python -m scalequest.training.worker JOB.json` (run by the launcher,
directly or under torchrun). Rank 0 writes training_metrics.json beside the saved model."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from ..atomic import write_json_atomic
from .checkpoints import INTERRUPTED_EXIT, TrainingInterrupted, listen_for_stop
from .distributed import finish_distributed
from .job import METRICS_FILE, TrainJob


def run(job: TrainJob) -> dict:
    """Train as the job says; returns the metrics (on every rank)."""
    if job.kind == "qft":
        from .qft import train_qft

        return train_qft(job)
    if job.kind == "qpo":  # QPO trains with the DPO loss
        from .dpo import train_dpo

        return train_dpo(job)
    if job.kind == "sft":
        from .sft import train_sft

        return train_sft(job)
    if job.kind == "scorer":
        from .scorer import train_scorer

        return train_scorer(job)
    raise ValueError(f"unknown training kind '{job.kind}' (qft, qpo, scorer or sft)")


def placement() -> str:
    """Where this rank runs, for the job's log: its rank, the world size and its (Slurm) node."""
    node = os.environ.get("SLURMD_NODENAME")
    where = f"Slurm node {node}" if node else f"host {socket.gethostname()}"
    return f"rank {os.environ.get('RANK', '0')} of {os.environ.get('WORLD_SIZE', '1')} on {where}"


def main(argv: list[str]) -> None:
    import torch.distributed as dist

    listen_for_stop()
    print(placement(), flush=True)
    job = TrainJob.read(argv[0])
    try:
        metrics = run(job)
    except TrainingInterrupted as interrupted:
        print(f"{placement()}: {interrupted}", flush=True)
        finish_distributed()
        end_process(INTERRUPTED_EXIT)
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    rank = dist.get_rank() if world > 1 else 0
    if rank == 0:
        write_json_atomic(Path(job.output_dir) / METRICS_FILE, {"kind": job.kind, "world_size": world,
                                                                "deepspeed": job.deepspeed, **metrics})
    finish_distributed()
    end_process()


def end_process(status: int = 0) -> None:
    """Exit (0: the model and metrics are saved) once every rank is past the barrier, without the
    interpreter's teardown: there a communication library's C++ thread can abort the process ("terminate
    called without an active exception", seen on one rank of a 2-rank ZeRO-3 run on CPU), and torchrun
    would report a finished training as failed."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
