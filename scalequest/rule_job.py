"""Where every rule's job starts: its log file, then the failure a user asked to rehearse."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .failure_injection import fail_once_if_asked
from .joblog import job_log


@contextmanager
def rule_job(sm: Any) -> Iterator[None]:
    """Run the body as the job of Snakemake's `snakemake` object `sm`: output to its log (which says
    where it ran), stale temporaries of an interrupted try removed, an asked-for first failure."""
    with job_log(sm.log[0], sm.rule, sm.output):
        fail_once_if_asked(sm.rule, f"{sm.log[0]}.failed-once")
        yield
