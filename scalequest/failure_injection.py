"""Rehearsing failures: the rules named in $SCALEQUEST_FAIL_ONCE (comma-separated) fail on their
first try and run normally when retried, so that users can watch retries on their cluster."""
from __future__ import annotations

import os
from pathlib import Path

FAIL_ONCE_ENV = "SCALEQUEST_FAIL_ONCE"


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
