"""Training runs in a process of their own, as a training job runs them (so that a test can kill or signal
them), and the comparison of two trained models' weights."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from scalequest.training.checkpoints import checkpoints_dir, read_record
from scalequest.training.job import TrainJob

# What scripts/train.py does through training_job: resume where a try left, train, move the model in place.
RESUMABLE_RUN = textwrap.dedent("""
    import json, sys
    from scalequest.models import ModelSpec
    from scalequest.training.job import TrainJob
    from scalequest.training.launcher import Launch, resume_where_left, train
    fields, ranks, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    job, launch = TrainJob(**fields), Launch(processes_per_node=ranks)
    train(resume_where_left(job, ModelSpec(key="base", path=job.base_model), launch, out, job.kind), out, launch)
""")


def start_training(job: TrainJob, ranks: int, out: Path, log: Path) -> subprocess.Popen:
    """The training in its own process group (a test signals all of it, as Slurm signals a job's
    processes), its output in `log`."""
    with log.open("w") as handle:
        return subprocess.Popen([sys.executable, "-c", RESUMABLE_RUN, json.dumps(asdict(job)), str(ranks), str(out)],
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(ready: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"training ended (exit {process.returncode}) or timed out first:\n"
                                 f"{log.read_text()[-4000:]}")
        time.sleep(0.05)


def signal_every_process(process: subprocess.Popen, signum: int) -> None:
    """Send `signum` to the process and all its descendants, as Slurm signals every process of a job's
    step (torchrun starts each rank in a session of its own, which a process-group signal misses)."""
    import psutil

    root = psutil.Process(process.pid)
    for member in [root, *root.children(recursive=True)]:
        try:
            member.send_signal(signum)
        except psutil.NoSuchProcess:
            pass


def complete_checkpoints(out: Path) -> list[Path]:
    """The checkpoints of the training into `out` that every rank finished saving, oldest first."""
    folder = checkpoints_dir(out)
    found = [path for path in folder.glob("checkpoint-*") if read_record(path)] if folder.is_dir() else []
    return sorted(found, key=lambda path: int(path.name.split("-")[1]))


def weight_difference(first: Path, second: Path) -> float:
    """The largest absolute difference between the two models' tensors (0.0: equal), which must have the
    same tensor names."""
    from safetensors.numpy import load_file

    a, b = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    assert a.keys() == b.keys()
    return max(float(abs(a[name].astype("float64") - b[name].astype("float64")).max()) for name in a)
