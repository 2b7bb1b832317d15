"""One controller per results folder (scalequest/controller_lock.py): the lock itself, between processes,
and through the real snakemake CLI with the local profile."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import copy_workflow, run_snakemake, user_env
from scalequest.controller_lock import LOCK_NAME, ControllerBusy, ControllerLock

HOLD = textwrap.dedent("""
    import sys, time
    from scalequest.controller_lock import ControllerLock
    lock = ControllerLock(sys.argv[1])
    lock.acquire()
    lock.record_snakemake_locks(sys.argv[2:])
    print("held", flush=True)
    time.sleep(600)
""")


def hold_in_a_process(results: Path, *snakemake_locks: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(results), *map(str, snakemake_locks)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_holder_is_refused_with_who_holds_it(tmp_path):
    holder = hold_in_a_process(tmp_path / "results")
    try:
        with pytest.raises(ControllerBusy) as refused:
            ControllerLock(tmp_path / "results").acquire()
        message = str(refused.value)
        for part in (f"on {tmp_path / 'results'}: process {holder.pid} on host {socket.gethostname()}, since ",
                     f"its lock: {tmp_path / 'results' / LOCK_NAME}", "no --unlock needed", "A dry run (-n) works"):
            assert part in message, message
        ControllerLock(tmp_path / "other").acquire()  # another results folder is another lock
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_frees_the_folder_and_its_snakemake_locks_go(tmp_path):
    """SIGKILL leaves no chance to clean up: the kernel drops the lock, and the next holder removes the
    Snakemake lock files the dead one recorded, unless somebody wrote them anew since."""
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    stale, rewritten = locks / "0.input.lock", locks / "0.output.lock"
    stale.write_text("results/a\n")
    rewritten.write_text("results/b\n")
    holder = hold_in_a_process(tmp_path / "results", stale, rewritten)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    time.sleep(0.01)
    rewritten.unlink()
    rewritten.write_text("another run's\n")  # a new file of the same name: not the dead holder's
    lock = ControllerLock(tmp_path / "results")
    lock.acquire()
    assert not stale.exists() and rewritten.exists()
    record = json.loads((tmp_path / "results" / LOCK_NAME).read_text())
    assert record["pid"] == os.getpid() and record["snakemake_locks"] == []
    lock.release()
    ControllerLock(tmp_path / "results").acquire()  # released: free again in this process too


def test_the_lock_file_takes_the_umask_mode(tmp_path):
    previous = os.umask(0o002)
    try:
        ControllerLock(tmp_path / "results").acquire()
    finally:
        os.umask(previous)
    assert (tmp_path / "results" / LOCK_NAME).stat().st_mode & 0o777 == 0o664  # teammates can take it too


def snakemake_process(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "profiles/local", *args], cwd=workdir,
                            env=user_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_for_holder(lock_file: Path, pid: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(lock_file.read_text()).get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{lock_file} never named process {pid}")


def test_one_controller_at_a_time_through_snakemake(tmp_path):
    """A controller (stopped mid-run, so that it holds the folder) refuses a second one; a run on another
    results folder in the same checkout ends without removing the first one's Snakemake lock files, so
    the next try is still refused; after a SIGKILL of the first, the folder runs again without --unlock."""
    workdir = copy_workflow(tmp_path / "workflow")
    target = "results/tiny/tiny-benchmark/heldout.jsonl"
    first = snakemake_process(workdir, target, "--cores", "1")
    try:
        wait_for_holder(workdir / "results" / "tiny" / LOCK_NAME, first.pid)
        os.killpg(first.pid, signal.SIGSTOP)
        own_locks = sorted((workdir / ".snakemake" / "locks").iterdir())
        assert own_locks

        second = run_snakemake(workdir, "--profile", "profiles/local", target, check=False, timeout=300)
        assert second.returncode != 0
        assert f"Another controller is running this workflow on results/tiny: process {first.pid}" in second.stderr

        # Snakemake alone would let this run's end remove the lock folder, the first run's files included.
        elsewhere = run_snakemake(workdir, "--profile", "profiles/local", "plan", "--config",
                                  "results=results/other", check=False, timeout=300)
        assert elsewhere.returncode == 0, elsewhere.stderr[-3000:]
        assert sorted((workdir / ".snakemake" / "locks").iterdir()) == own_locks
        assert (workdir / "results" / "other" / LOCK_NAME).exists()

        third = run_snakemake(workdir, "--profile", "profiles/local", target, check=False, timeout=300)
        assert "Another controller is running this workflow" in third.stderr, third.stderr[-3000:]
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    again = run_snakemake(workdir, "--profile", "profiles/local", target, check=False, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (workdir / target).exists()
    assert not (workdir / ".snakemake" / "locks").exists() or not any((workdir / ".snakemake" / "locks").iterdir())
