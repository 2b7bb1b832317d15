"""The demo runs that a test run makes once and every test reads.

- The README's first command on a fresh clone: `git clone` into a folder with no ../shared, then
  `make demo`. It starts in the background as the test run begins (conftest: when a selected test
  needs it), so that the tests that need neither it nor its models run meanwhile. Its tiny models
  are ready minutes before the demo ends; `wait_for_models` returns then.
- While developing, with $SCALEQUEST_TINY_MODELS: the demo run locally on those models.

Under pytest-xdist, the worker that asks first makes each run; the others find it through a lock and a
state file in the folder all workers of the test run share (`shared_dir`), and wait for it.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
DEMO_LIMIT = 2700  # seconds for `make demo` (about 6 minutes on 2 cores)
# Snakemake's line once a job's outputs are in place; the tiny reward model is built from the tiny LM.
MODELS_BUILT = re.compile(r"Finished jobid: \d+ \(Rule: build_tiny_reward\)")


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of this test run that every xdist worker sees (the session's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(folder: Path, name: str, make: Callable[[], dict]) -> dict:
    """What `make()` returned (a JSON object), made by the first caller of this test run; the others,
    in any worker, wait for it and read it."""
    state = folder / f"{name}.json"
    with FileLock(folder / f"{name}.lock"):
        if not state.exists():
            partial = state.with_suffix(".partial")
            partial.write_text(json.dumps(make()))
            partial.replace(state)
        return json.loads(state.read_text())


def fresh_clone(dest: Path) -> Path:
    """`git clone` of this repository into `dest` (a folder with no ../shared beside it), with the
    working tree's uncommitted changes laid over it while developing (none in CI's clean clone)."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True)
    changed = subprocess.run(["git", "ls-files", "-z", "--modified", "--others", "--exclude-standard"], cwd=REPO,
                             check=True, capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, changed):
        source = REPO / name
        if source.is_symlink() or source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name, follow_symlinks=False)
    return dest


def make_demo_command() -> list[str]:
    """`make demo`. In the environment this test run was installed into by `make install` (CI's clean
    clone runs it first, so the install from a fresh clone is tested there), that environment is
    reused: `make -o` keeps make from installing it again. Otherwise the clone installs its own."""
    venv = Path(sys.executable).parent.parent
    stamp = venv / ".installed"
    if stamp.is_file():
        return ["make", "demo", f"VENV={venv}", "-o", str(stamp)]
    return ["make", "demo"]


class FreshCloneDemo:
    """`make demo` on a fresh clone under `folder`, run once per test run in the background."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.clone = folder / "user" / "scalequest"
        self.log = folder / "make-demo.log"
        self.exit_file = folder / "make-demo.exit"
        self.process: subprocess.Popen | None = None  # in the worker that started it

    def start(self, env: dict[str, str]) -> None:
        """Clone and start `make demo` (output to `log`, exit status to `exit_file`), unless this test
        run has already."""
        def begin() -> dict:
            assert not (self.clone.parent / "shared").exists()
            fresh_clone(self.clone)
            # umask 0022, a user's usual: tests/test_fresh_clone.py checks the release's modes under it
            command = f"umask 022; {shlex.join(make_demo_command())} >{shlex.quote(str(self.log))} 2>&1; " \
                      f"echo $? >{shlex.quote(str(self.exit_file))}.tmp && mv {shlex.quote(str(self.exit_file))}.tmp " \
                      f"{shlex.quote(str(self.exit_file))}"
            # its own process group, so that stop() ends make, snakemake and its jobs together
            self.process = subprocess.Popen(["sh", "-c", command], cwd=self.clone, env=env, start_new_session=True)
            return {"started": time.time(), "command": make_demo_command()}

        self.started = once(self.folder, "make-demo", begin)["started"]

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        while not ready():
            if time.time() - self.started > DEMO_LIMIT:
                pytest.fail(f"`make demo` on the fresh clone: {what} not there after {DEMO_LIMIT} s:\n"
                            f"{self.output()[-4000:]}")
            time.sleep(1)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait(self) -> subprocess.CompletedProcess:
        """The finished `make demo`: its output, exit status, and the clone as `args`."""
        self._wait(self.exit_file.exists, "the end")
        return subprocess.CompletedProcess(args=self.clone, returncode=int(self.exit_file.read_text()),
                                           stdout=self.output(), stderr="")

    def wait_for_models(self) -> Path:
        """The clone's tiny models, once the demo has built them."""
        self._wait(lambda: self.exit_file.exists() or MODELS_BUILT.search(self.output()) is not None,
                   "the tiny models")
        models = self.clone / "results" / "tiny" / "models"
        assert (models / "tiny-lm" / "config.json").is_file() and (models / "tiny-reward" / "config.json").is_file(), \
            self.output()[-6000:]
        return models

    def stop(self) -> None:
        """End the demo if this worker started it and it still runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait()
