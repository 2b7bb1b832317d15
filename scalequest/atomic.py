"""Atomic file writes: a killed job never leaves a half file under the final name.

What they make gets the mode a plain open() or mkdir() would give under the process's umask (mkstemp
and mkdtemp make 0600 and 0700, which teammates on a shared project folder could not read)."""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

FULL = (errno.ENOSPC, errno.EDQUOT)


def process_umask() -> int:
    """The process's umask. Linux tells it in /proc (os.umask can only read it by setting it, which
    races with the process's other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_system_full(error: OSError, final: Path) -> OSError:
    """`error` (disk full or over quota, which names no path when pyarrow or a flush raise it) with the
    path being written, the space left there and what to do."""
    free = shutil.disk_usage(final.parent).free / 2**30
    return OSError(error.errno, f"{os.strerror(error.errno)} while writing {final} ({free:.1f} GiB free "
                   f"on its file system): free space there, or set `results` to a larger file system, then "
                   f"run again (finished jobs are kept)", str(final))


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~process_umask())
        os.replace(tmp, final)
    except OSError as error:
        if error.errno in FULL:
            raise _file_system_full(error, final) from error
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `final`; it replaces `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~process_umask())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as error:
        if error.errno in FULL:
            raise _file_system_full(error, final) from error
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove_stale_temporaries(outputs: Iterable[str | Path]) -> list[Path]:
    """Remove what atomic_path/atomic_dir left beside `outputs` when a job writing them was killed
    (`.<name>.*.tmp`), and return it. A job calls this when it starts: no other job writes its outputs."""
    removed = []
    for output in map(Path, outputs):
        for stale in sorted(output.parent.glob(f".{output.name}.*.tmp")):
            shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
            removed.append(stale)
    return removed


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
