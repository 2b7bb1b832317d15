"""Per-job log files for workflow scripts."""
from __future__ import annotations

import os
import socket
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .atomic import remove_stale_temporaries


@contextmanager
def job_log(path: str | Path | None, rule: str | None = None, outputs: Iterable[str | Path] = ()) -> Iterator[None]:
    """Send stdout and stderr of this process, including C-level output (vLLM, torch), to the
    job's log file, which starts with where the job ran; the temporary files an interrupted try
    left beside the job's `outputs` are removed (and listed); a failure's traceback is written
    there too and raised again."""
    if not path:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            print(where_it_runs(rule), flush=True)
            for stale in remove_stale_temporaries(outputs):
                print(f"removed {stale}, left by an interrupted try of this job", flush=True)
            yield
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def where_it_runs(rule: str | None) -> str:
    """One line for the top of a job's log: rule, host, Slurm job, whether it may reach the
    Hugging Face Hub, and the GPUs it was given."""
    slurm = os.environ.get("SLURM_JOB_ID")
    hub = "offline" if os.environ.get("HF_HUB_OFFLINE") == "1" else "online"
    return (f"== rule {rule or '?'} on {socket.gethostname()}{f', Slurm job {slurm}' if slurm else ''}, hub {hub}, "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')}")
