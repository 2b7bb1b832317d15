"""Training checkpoints, so that a training job killed by its time limit, a preemption or a node failure
resumes where it was instead of at step 0.

Every `training.checkpoint_minutes` of wall clock, and at the next step after SIGUSR1 (the profile's
warning before the time limit) or SIGTERM (preemption, scancel), every rank saves a checkpoint through
the Trainer: model, optimizer, scheduler, RNG states and the step (so the data position), with
DeepSpeed's ZeRO shards where DeepSpeed is on. They go to `<output>.checkpoints/checkpoint-<step>`.
Once every rank has saved, rank 0 writes the checkpoint's record (MARKER): a checkpoint without one
was cut short and is never used. The last KEEP complete ones are kept; the launcher removes the folder
once the final model is in place.

The record holds the digests of what defines the run (base model, data, hyper-parameters, seed,
DeepSpeed, world size): a try resumes from the last complete checkpoint with the same digests, and
sets the others aside (`<output>.checkpoints/set-aside/`), saying so in its log."""
from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Mapping

from ..atomic import write_json_atomic

CHECKPOINTS_SUFFIX = ".checkpoints"
PREFIX = "checkpoint-"  # the Trainer's (transformers' PREFIX_CHECKPOINT_DIR)
MARKER = "scalequest_checkpoint.json"
SET_ASIDE = "set-aside"
KEEP = 2
# SIGTERM: Slurm's preemption, time limit and scancel; SIGUSR1: the profile's warning before the time limit.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
INTERRUPTED_EXIT = 75  # a rank's exit status after it saved a checkpoint on a signal (EX_TEMPFAIL: try again)


ATTEMPTS = "attempts.json"  # in the checkpoints' folder: the tries that ended without a model


class TrainingInterrupted(RuntimeError):
    """A signal stopped the training after every rank saved a checkpoint: the retry resumes from it."""


_stop_signal: list[str] = []  # the first stop signal this rank got (listen_for_stop)


def listen_for_stop() -> None:
    """Note SIGUSR1 and SIGTERM instead of dying of them: a rank calls this first thing, so that a signal
    while the model loads is acted on at the first step (the Trainer's checkpoint callback reads it)."""
    def note(signum: int, frame: Any) -> None:
        if not _stop_signal:
            _stop_signal.append(signal.Signals(signum).name)

    for signum in STOP_SIGNALS:
        signal.signal(signum, note)


def checkpoints_dir(out: str | Path) -> Path:
    return Path(f"{out}{CHECKPOINTS_SUFFIX}")


def checkpoint_step(folder: Path) -> int:
    return int(folder.name[len(PREFIX):])


def _checkpoints(folder: Path) -> list[Path]:
    found = [path for path in folder.glob(f"{PREFIX}*") if path.is_dir() and path.name[len(PREFIX):].isdigit()]
    return sorted(found, key=checkpoint_step)


def read_record(checkpoint: Path) -> dict[str, Any] | None:
    """A checkpoint's record, or None for one cut short (no record, or a broken one)."""
    try:
        record = json.loads((checkpoint / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("settings"), dict) else None


def last_complete(folder: Path, settings: Mapping[str, str]) -> Path | None:
    """The last complete checkpoint in `folder` made with `settings`, touching nothing."""
    found = [path for path in _checkpoints(folder) if (read_record(path) or {}).get("settings") == dict(settings)]
    return found[-1] if found else None


def choose_checkpoint(folder: Path, settings: Mapping[str, str]) -> tuple[Path | None, list[str]]:
    """The last complete checkpoint in `folder` made with `settings` (or None), and a log line for each
    other one: those cut short are removed, those of other settings moved to `folder`/set-aside."""
    chosen, lines = None, []
    for checkpoint in _checkpoints(folder):
        record = read_record(checkpoint)
        if record is None:
            shutil.rmtree(checkpoint)
            lines.append(f"{checkpoint}: cut short (no record of every rank's save), removed")
            continue
        differ = sorted(key for key in {*settings, *record["settings"]}
                        if settings.get(key) != record["settings"].get(key))
        if differ:
            aside = folder / SET_ASIDE / f"{checkpoint.name}-{int(record.get('time', 0))}"
            aside.parent.mkdir(exist_ok=True)
            checkpoint.rename(aside)
            lines.append(f"{checkpoint}: made with other settings ({', '.join(differ)} differ), set aside in {aside}")
        else:
            chosen = checkpoint
    return chosen, lines


def resume_line(rule: str, target: str, checkpoint: Path | None) -> str:
    """The log's line on where training starts."""
    if checkpoint is None:
        return f"training {rule} {target}: from step 0 (no checkpoint to resume)"
    record = read_record(checkpoint) or {}
    made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.get("time", 0)))
    of = f" of {record['max_steps']}" if record.get("max_steps") else ""
    return f"resuming {rule} {target}: step {checkpoint_step(checkpoint)}{of} (checkpoint of {made}, {checkpoint})"


def _any_rank(flags: list[bool]) -> list[bool]:
    """Each flag, true if it is true on any rank (one all-reduce: every rank must save together)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flags
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    values = torch.tensor([float(flag) for flag in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(value) for value in values.tolist()]


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def checkpoint_callback(folder: str | Path, settings: Mapping[str, str], seconds: float) -> Any:
    """A TrainerCallback that saves a checkpoint every `seconds` of wall clock (rank 0's clock decides, for
    every rank) and, after SIGUSR1 or SIGTERM on any rank, saves one and stops the training."""
    from transformers import TrainerCallback

    class Checkpoints(TrainerCallback):
        def __init__(self) -> None:
            self.folder, self.settings, self.seconds = Path(folder), dict(settings), seconds
            self.stopped = False  # a stop signal reached some rank, and every rank saved the checkpoint
            self.last = time.monotonic()

        @property
        def signal(self) -> str | None:
            return _stop_signal[0] if _stop_signal else None

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            due = state.is_world_process_zero and time.monotonic() - self.last >= self.seconds
            due, stop = _any_rank([due, self.signal is not None])
            if due or stop:
                control.should_save = True
            if stop:
                control.should_training_stop = self.stopped = True
            return control

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            _barrier()  # every rank's part (ZeRO shards) is written
            if state.is_world_process_zero:
                checkpoint = self.folder / f"{PREFIX}{state.global_step}"
                write_json_atomic(checkpoint / MARKER, {"settings": self.settings, "time": time.time(),
                                                        "step": state.global_step, "max_steps": state.max_steps,
                                                        "signal": self.signal})
                for old in [path for path in _checkpoints(self.folder) if read_record(path)][:-KEEP]:
                    shutil.rmtree(old)
            _barrier()
            self.last = time.monotonic()
            return control

    return Checkpoints()


def train_resumable(trainer: Any, job: Any) -> Any:
    """`trainer.train()`, checkpointed as the job says and resumed from `job.resume_from`; raises
    TrainingInterrupted when a stop signal ended it (after the checkpoint)."""
    callback = checkpoint_callback(job.checkpoints, job.checkpoint_settings, job.checkpoint_seconds)
    trainer.add_callback(callback)
    result = trainer.train(resume_from_checkpoint=job.resume_from)
    if callback.stopped:
        raise TrainingInterrupted(f"interrupted by {callback.signal or 'a stop signal on another rank'} at step "
                                  f"{trainer.state.global_step}: checkpoint saved in {job.checkpoints}; the retry "
                                  "resumes from it")
    return result


def record_failed_attempt(folder: Path, settings: Mapping[str, str], started: float) -> None:
    """Note a try that ended without a model: its time, and the part of it lost (after its last checkpoint)."""
    saved = [record["time"] for path in _checkpoints(folder) if (record := read_record(path))
             and record["settings"] == dict(settings) and record.get("time", 0) >= started]
    ended = time.time()
    attempts = read_attempts(folder)
    attempts.append({"started": started, "ended": ended, "lost_seconds": ended - max([started, *saved])})
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / ATTEMPTS, attempts)


def read_attempts(folder: Path) -> list[dict[str, float]]:
    try:
        attempts = json.loads((folder / ATTEMPTS).read_text())
    except (OSError, ValueError):
        return []
    return attempts if isinstance(attempts, list) else []


def time_spent(folder: Path, started: float) -> dict[str, Any]:
    """The training's seconds (every try's, but what interruptions lost) and its interruptions (failed
    tries, seconds lost), for its metrics, as engine shards' sidecars count them."""
    attempts = read_attempts(folder)
    lost = sum(attempt["lost_seconds"] for attempt in attempts)
    total = time.time() - started + sum(attempt["ended"] - attempt["started"] for attempt in attempts)
    return {"seconds": round(total - lost, 3),
            "interruptions": {"attempts": len(attempts) + 1, "lost_seconds": round(lost, 3)}}

