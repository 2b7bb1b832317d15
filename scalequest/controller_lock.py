"""One controller per results folder: a run that executes jobs holds a lock on `<results>/.controller.lock`
for as long as it runs, and a second one is refused, naming the host, the process and since when.

Snakemake's own lock (files in .snakemake/locks listing each run's inputs and outputs) does not hold on
its own: a run that ends removes the whole folder, other runs' lock files included, and a killed run
leaves its files behind until `snakemake --unlock`. This lock is a POSIX record lock (fcntl), which the
kernel drops when its process dies, however it dies: a killed controller frees the folder at once.
Across nodes it needs a file system that shares locks (NFS with its lock manager, Lustre mounted with
`-o flock`, GPFS, BeeGFS): docs/cluster-requirements.md. Where locks are not supported at all, the run
goes on under Snakemake's lock alone, with a warning."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

LOCK_NAME = ".controller.lock"
# lockf's answers where the file system has no (shared) locks: Lustre without -o flock, some FUSE mounts.
UNSUPPORTED = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


class ControllerBusy(RuntimeError):
    """Another live controller holds the results folder; the message names it."""


class ControllerLock:
    """The lock on one results folder, held through an open descriptor of its lock file. The file says
    who holds it and which Snakemake lock files that run wrote, so that the next holder can remove
    them if the run was killed before it could."""

    def __init__(self, results: str | Path) -> None:
        self.results = Path(results)
        self.path = self.results / LOCK_NAME
        self._fd: int | None = None
        self._record: dict = {}

    def acquire(self) -> None:
        """Take the lock, or raise ControllerBusy naming its holder. Removes the Snakemake lock files
        of a previous holder that was killed (they would refuse this run until --unlock)."""
        self.results.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_record(fd)
            os.close(fd)
            if error.errno in (errno.EACCES, errno.EAGAIN):
                raise ControllerBusy(self._busy_message(holder)) from None
            if error.errno in UNSUPPORTED:
                print(f"Warning: the file system of {self.results} does not lock files ({os.strerror(error.errno)}): "
                      "only Snakemake's own lock keeps a second run out of this folder (docs/cluster-requirements.md, "
                      "\"One controller per results folder\")", file=sys.stderr)
                return
            raise
        self._fd = fd
        _remove_unchanged(_read_record(fd).get("snakemake_locks", []))
        self._record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "snakemake_locks": []}
        self._write()

    def record_snakemake_locks(self, paths: Iterable[str | Path]) -> None:
        """Note the Snakemake lock files this run wrote, with what identifies them (inode and mtime), so
        that a later holder removes them only if nobody wrote them anew."""
        if self._fd is None:
            return
        self._record["snakemake_locks"] = [_identity(Path(path)) for path in paths if Path(path).exists()]
        self._write()

    def release(self) -> None:
        if self._fd is not None:
            self._record["snakemake_locks"] = []
            self._write()
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def _write(self) -> None:
        data = (json.dumps(self._record) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def _busy_message(self, holder: dict) -> str:
        if {"host", "pid", "since"} <= holder.keys():
            since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(holder["since"]))
            who = f"process {holder['pid']} on host {holder['host']}, since {since}"
        else:
            who = "a process that has not said who it is yet"
        return (f"Another controller is running this workflow on {self.results}: {who} (its lock: {self.path}). "
                "Wait for it to end, or end it (Ctrl-C, or kill its process): a controller that has ended, "
                "killed or not, frees the folder at once, no --unlock needed. A dry run (-n) works meanwhile.")


def guard_snakemake_lock(results: str | Path) -> None:
    """Make Snakemake take the controller lock of `results` whenever it takes its own (a run that
    executes jobs: not a dry run, not --nolock, not a cluster job's snakemake, which runs with
    --nolock), and remove only its own lock files when it ends, so that other runs' locks hold.

    This wraps internals of Snakemake 9 (PersistenceBase.lock; FilePersistence._lockfile): the tests
    of the controller lock fail if they change."""
    from snakemake.exceptions import WorkflowError
    from snakemake.persistence import PersistenceBase

    snakemake_lock = PersistenceBase.lock

    @contextmanager
    def lock(persistence: PersistenceBase) -> Iterator[None]:
        controller = ControllerLock(results)
        try:
            controller.acquire()
        except ControllerBusy as busy:
            raise WorkflowError(str(busy)) from None
        try:
            own = getattr(persistence, "_lockfile", None)  # FilePersistence: {"input": path, "output": path}
            if own is not None:
                persistence.unlock = lambda: _remove_own(own)
            with snakemake_lock(persistence):
                controller.record_snakemake_locks(own.values() if own else ())
                yield
        finally:
            controller.release()

    PersistenceBase.lock = lock


def _remove_own(own: dict) -> None:
    """Snakemake's unlock without removing the lock folder (other runs' lock files are in it)."""
    for path in own.values():
        Path(path).unlink(missing_ok=True)
    own.clear()


def _identity(path: Path) -> dict:
    info = path.stat()
    return {"path": str(path.resolve()), "inode": info.st_ino, "mtime_ns": info.st_mtime_ns}


def _remove_unchanged(recorded: list[dict]) -> None:
    """Remove the recorded files that are still the ones recorded (a killed holder's Snakemake locks)."""
    for entry in recorded:
        path = Path(entry.get("path", ""))
        try:
            if path.is_file() and _identity(path) == entry:
                path.unlink()
        except OSError:
            pass  # gone already, or not ours to remove: Snakemake names what still refuses the run


def _read_record(fd: int) -> dict:
    try:
        record = json.loads(os.pread(fd, 1 << 16, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
