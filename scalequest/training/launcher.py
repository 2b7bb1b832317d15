"""One launcher for every training rule: a plain process, torchrun on one machine, or srun +
torchrun with a c10d rendezvous on the first node of a multi-node Slurm job."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..atomic import atomic_dir, write_json_atomic
from ..digests import digest, file_digest, model_fingerprint
from ..models import ModelSpec, check_weights
from .checkpoints import (
    STOP_SIGNALS,
    checkpoints_dir,
    choose_checkpoint,
    last_complete,
    record_failed_attempt,
    resume_line,
    time_spent,
)
from .enough import check_enough_data
from .job import METRICS_FILE, TrainJob

WORKER = "scalequest.training.worker"


class TrainingError(RuntimeError):
    """A training run failed; the message says how it was launched and its exit status."""


@dataclass(frozen=True)
class Launch:
    """Where the ranks run: `nodes` machines × `processes_per_node` ranks (None: one per visible
    GPU, or one on a machine without GPUs)."""

    nodes: int = 1
    processes_per_node: int | None = None

    def ranks_per_node(self) -> int:
        if self.processes_per_node:
            return self.processes_per_node
        import torch

        return max(1, torch.cuda.device_count())


DEFAULT_LAUNCH = Launch()


def _slurm(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def _slurm_head_address() -> str:
    """The address of this Slurm job's first node: the rendezvous point every node can reach.
    Asked of Slurm, since the jobstep plugin hides SLURM_JOB_NODELIST from the rule."""
    nodelist = (os.environ.get("SLURM_JOB_NODELIST")
                or _slurm("squeue", "-h", "-j", os.environ["SLURM_JOB_ID"], "-o", "%N"))
    head = _slurm("scontrol", "show", "hostnames", nodelist).split()[0]
    found = re.search(r"\bNodeAddr=(\S+)", _slurm("scontrol", "show", "node", head, "-o"))
    return found.group(1) if found else head


def launch_command(launch: Launch, job: TrainJob, job_file: str | Path) -> list[str]:
    """The command that starts every rank of `job`."""
    ranks = launch.ranks_per_node()
    worker = ["-m", WORKER, str(job_file)]
    if launch.nodes > 1:
        if "SLURM_JOB_ID" not in os.environ:
            raise TrainingError(f"{launch.nodes} nodes asked for, but this is not a Slurm job: multi-node "
                                "training runs through srun (set training.nodes, or evaluation.sft.nodes for the "
                                "evaluation's SFT, to 1 to train on one machine)")
        port = 20000 + int(os.environ["SLURM_JOB_ID"]) % 20000  # one rendezvous port per job
        return ["srun", f"--nodes={launch.nodes}", f"--ntasks={launch.nodes}", "--ntasks-per-node=1",
                sys.executable, "-m", "torch.distributed.run", f"--nnodes={launch.nodes}",
                f"--nproc_per_node={ranks}", "--rdzv_backend=c10d",
                f"--rdzv_endpoint={_slurm_head_address()}:{port}", f"--rdzv_id={os.environ['SLURM_JOB_ID']}", *worker]
    if ranks == 1 and job.deepspeed == "none":
        return [sys.executable, *worker]
    # DeepSpeed without a launcher looks for MPI, so even one rank goes through torchrun.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", *worker]


def run_settings(job: TrainJob, base: ModelSpec, world_size: int) -> dict[str, str]:
    """The digests of what defines a training run, recorded with its checkpoints: one resumes only a run
    with the same. Each hyper-parameter apart, so that the log can say which one differs."""
    data = [job.data] if isinstance(job.data, str) else list(job.data)
    return {"kind": digest(job.kind), "base_model": digest(model_fingerprint(base)),
            "data": digest([file_digest(path) for path in data]), "prompt_style": digest(job.prompt_style),
            "seed": digest(job.seed), "deepspeed": digest(job.deepspeed), "world_size": digest(world_size),
            **{f"hyper.{key}": digest(value) for key, value in sorted(job.hyper.items())}}


def run_ranks(command: list[str]) -> int:
    """Run the ranks' command and return its exit status. SIGUSR1 and SIGTERM are the ranks' to act on
    (save a checkpoint, then exit): this process and torchrun, which inherits it, ignore SIGUSR1 (its
    default would kill them, leaving the ranks without their launcher), and this one waits through
    SIGTERM for the ranks to end (torchrun passes it on to them)."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        return subprocess.run(command).returncode
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def train(job: TrainJob, out: str | Path, launch: Launch = DEFAULT_LAUNCH) -> dict:
    """Run `job` and move its model into `out` only if every rank succeeded; returns the metrics. The
    run's checkpoints (`<out>.checkpoints`) are removed once the model is in place."""
    checkpoints, started = Path(job.checkpoints or checkpoints_dir(out)), time.time()
    with atomic_dir(out) as tmp:
        job = replace(job, output_dir=str(tmp), checkpoints=str(checkpoints))
        job_file = tmp / "training_job.json"
        job.write(job_file)
        command = launch_command(launch, job, job_file)
        print("launch:", " ".join(command), flush=True)
        status = run_ranks(command)
        if status != 0:
            record_failed_attempt(checkpoints, job.checkpoint_settings, started)
            saved = last_complete(checkpoints, job.checkpoint_settings)
            resume = f"; the retry resumes from {saved}" if saved else ""
            raise TrainingError(f"{job.kind} training of {job.base_model} failed (exit {status}{resume}): "
                                f"{' '.join(command)}")
        metrics = {**json.loads((tmp / METRICS_FILE).read_text()), **time_spent(checkpoints, started)}
        write_json_atomic(tmp / METRICS_FILE, metrics)
    if checkpoints.is_dir():
        shutil.rmtree(checkpoints)
    return metrics


def training_job(*, kind: str, model: Mapping[str, Any], data: str | Sequence[str], prompt_style: str | None,
                 hyper: Mapping[str, Any], seed: int, deepspeed: str, min_examples: int | None,
                 launch: Mapping[str, Any], out: str | Path, checkpoint_minutes: float, rule: str = "") -> dict:
    """One training rule's job: refuse too little data, then train the base `model` (a model param:
    {key, entry}) on `data` into `out`, from its last checkpoint where a try left one; returns the metrics."""
    base = ModelSpec.from_entry(**model)
    check_weights(base)
    check_enough_data(kind, data, min_examples)
    launch = Launch(**launch)
    job = TrainJob(kind=kind, base_model=base.path, data=data, output_dir="", prompt_style=prompt_style,
                   hyper=dict(hyper), seed=seed, deepspeed=deepspeed, trust_remote_code=base.trust_remote_code,
                   checkpoint_seconds=60 * checkpoint_minutes)
    return train(resume_where_left(job, base, launch, out, rule or kind), out, launch)


def resume_where_left(job: TrainJob, base: ModelSpec, launch: Launch, out: str | Path, rule: str) -> TrainJob:
    """`job` with its checkpoints' folder and settings, resuming from the last checkpoint a try of the
    same settings left; the log says which, and what it set aside."""
    folder = checkpoints_dir(out)
    settings = run_settings(job, base, launch.nodes * launch.ranks_per_node())
    resume_from, lines = choose_checkpoint(folder, settings) if folder.is_dir() else (None, [])
    for line in [*lines, resume_line(rule, str(out), resume_from)]:
        print(line, flush=True)
    return replace(job, checkpoints=str(folder), checkpoint_settings=settings,
                   resume_from=str(resume_from) if resume_from else None)
