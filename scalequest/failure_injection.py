"""Rehearsing failures, so that users can watch retries and resumes on their cluster:
- the rules named in $SCALEQUEST_FAIL_ONCE (comma-separated) fail on their first try and run
  normally when retried;
- $SCALEQUEST_KILL_AFTER_CHUNKS=respond:2 (comma-separated `stage:chunks`) kills a GPU job of that
  stage with SIGKILL, as a node failure would, once it has written that many chunks; only its
  first try: the retry (or the next run) resumes from the chunks on disk."""
from __future__ import annotations

import os
import signal
from pathlib import Path

FAIL_ONCE_ENV = "SCALEQUEST_FAIL_ONCE"
KILL_AFTER_CHUNKS_ENV = "SCALEQUEST_KILL_AFTER_CHUNKS"
KILLED_MARKER = "killed-once"


def fail_once_if_asked(rule: str | None, marker: str | Path) -> None:
    """Raise on the first try of a rule named in $SCALEQUEST_FAIL_ONCE; the `marker` file (beside
    the job's log) remembers that first try."""
    if not rule or rule not in os.environ.get(FAIL_ONCE_ENV, "").split(","):
        return
    marker = Path(marker)
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    raise RuntimeError(f"failure injected by {FAIL_ONCE_ENV}={os.environ[FAIL_ONCE_ENV]}: the first try of rule "
                       f"{rule} fails, its retry runs")


def kill_after_chunks_if_asked(stage: str, written: int, chunks_dir: str | Path) -> None:
    """SIGKILL this process when $SCALEQUEST_KILL_AFTER_CHUNKS asks for it after `written` chunks of
    `stage`, once per shard (a marker in the shard's chunk folder remembers it)."""
    asked = dict(entry.split(":", 1) for entry in os.environ.get(KILL_AFTER_CHUNKS_ENV, "").split(",") if ":" in entry)
    if asked.get(stage) != str(written):
        return
    marker = Path(chunks_dir) / KILLED_MARKER
    if marker.exists():
        return
    marker.touch()
    print(f"killing this job with SIGKILL after {written} chunks, as {KILL_AFTER_CHUNKS_ENV}="
          f"{os.environ[KILL_AFTER_CHUNKS_ENV]} asks", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
