"""What a dry run can tell about an API model before any job, in at most a second spent beside the
planning: whether the variable that holds its key is set, and whether its endpoint accepts a connection. (The real run
checks the endpoint fully in rule check_optimizer, before any job is submitted.)"""
from __future__ import annotations

import atexit
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from .models import ModelSpec


def missing_key_message(spec: ModelSpec) -> str | None:
    """Why the key cannot be read, or None when its variable is set."""
    if os.environ.get(spec.api_key_env, "").strip():
        return None
    return (f"model '{spec.key}': the environment variable {spec.api_key_env}, which holds its API key, is not set "
            "or empty (for a server without a key, set any value)")


def _connects(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection opens within `timeout` seconds, name lookup included."""
    opened = threading.Event()

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                opened.set()
        except OSError:
            pass

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return opened.is_set()


def api_warnings(spec: ModelSpec, timeout: float = 1.0) -> list[str]:
    """What will stop the run at check_optimizer: an unset key variable, an endpoint that does not
    accept a connection within `timeout` seconds."""
    warnings = [message] if (message := missing_key_message(spec)) else []
    url = urlsplit(spec.base_url or "")
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.hostname and not _connects(url.hostname, port, timeout):
        warnings.append(f"model '{spec.key}': {spec.base_url} did not accept a connection within {timeout:g} s")
    return warnings


def warn_at_exit(spec: ModelSpec, then: str) -> None:
    """Look for api_warnings in a thread while the workflow plans, and print them to stderr (each
    followed by `then`) when this process exits: waiting on an endpoint that does not answer then
    costs the dry run nothing (a run stops at rule check_optimizer anyway, and says why)."""
    found: list[str] = []
    thread = threading.Thread(target=lambda: found.extend(api_warnings(spec)), daemon=True)
    thread.start()

    def report() -> None:
        thread.join(timeout=5)
        for warning in found:
            print(f"Warning: {warning}; {then}", file=sys.stderr)

    atexit.register(report)


def check_optimizer_job(optimizer: Mapping[str, Any], out: str | Path) -> None:
    """Rule check_optimizer's job: the API optimizer (a model param, {key, entry}) has its key and
    its endpoint serves the model (else an error saying which), recorded in `out`."""
    from .atomic import write_json_atomic
    from .engines.openai_engine import check_endpoint  # the OpenAI client: only in the job's environment

    spec = ModelSpec.from_entry(**optimizer)
    check_endpoint(spec)
    write_json_atomic(out, {"model": spec.key, "serves": spec.describe()})
