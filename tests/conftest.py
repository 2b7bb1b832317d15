"""Shared fixtures: a copy of the workflow in a temp dir, and the tiny models built once per
session through the workflow's own rules."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo_runs import FreshCloneDemo, once, shared_dir

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "scripts", "presets", "profiles", "slurm", "envs", "report"]
SHARED_DATA = Path(os.environ.get("SCALEQUEST_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
SHARED_DATA_ENV = "SCALEQUEST_SHARED_DATA"  # the tiny preset's real benchmark files, where set
OPENAI_MODEL = "tiny-lm"
# A re-run up to the release and the shards, without the evaluation: it trains on the release (SFT) and
# answers the benchmarks, the slow part of what a re-made release re-makes.
NO_EVALUATION = ("--omit-from", "sft_data")
# One OpenMP thread per process, as Snakemake gives each job of a rule without `threads`: the two xdist
# workers and the background demo share 2 cores, and a torch process whose second thread waits on a core
# another process holds spins there (two 2-thread trainings side by side ran 8 times slower than one).
# Set before any test module imports torch; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def copy_workflow(dest: Path) -> Path:
    """The workflow's files (not results) in `dest`, so a test's run writes only there."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_symlink():  # `slurm` -> profiles/slurm, as in a clone
            (dest / name).symlink_to(os.readlink(source))
        elif source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def tiny_config() -> dict:
    """The demo's config: config.yaml with the tiny preset over it, validated (defaults filled)."""
    from scalequest.config import load_config_files, validate_config

    return validate_config(load_config_files(REPO / "config.yaml", REPO / "presets" / "tiny.yaml"))


def full_config() -> dict:
    """The full-scale run's config: config.yaml, validated."""
    from scalequest.config import load_config_files, validate_config

    return validate_config(load_config_files(REPO / "config.yaml"))


def shards_per_stage(config: dict) -> int:
    """How many shards each per-shard stage of a run of `config` has, over all generators."""
    from scalequest.shards import shard_count

    return sum(shard_count(g["questions"], config["generate"]["shard_size"]) for g in config["generators"].values())


def user_env(**extra: str) -> dict[str, str]:
    """This interpreter's environment as a user's shell would have it: no SCALEQUEST_SHARED_DATA
    (a user's clone has no ../shared) unless given."""
    env = {key: value for key, value in os.environ.items() if key != SHARED_DATA_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


NOT_COPIED = {".venv", ".cache"}  # what a fresh clone's `make demo` installed beside the run


def copy_run(source: Path, dest: Path) -> Path:
    """A copy of a finished workflow folder (results and .snakemake metadata, modification times kept,
    so nothing looks newer than it is; links such as `slurm` kept as links), without its NOT_COPIED
    folders."""
    source = Path(source)
    shutil.copytree(source, dest, symlinks=True,
                    ignore=lambda folder, names: NOT_COPIED & set(names) if Path(folder) == source else set())
    return dest


def run_snakemake(workdir: Path, *args: str, timeout: float = 900, check: bool = True,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real snakemake CLI in `workdir` with this interpreter's environment (user_env by default)."""
    env = env or user_env()
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env, text=True,
                            capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result


# ---------------------------------------------------------------- tiers and order

# The tiers: what a test needs, read from its fixtures (and its own markers: training, vllm, slurm,
# index). `make test-fast` runs the unit tier: tests that need none of the tiers below it.
NEEDS = {"tiny_models": "models", "demo_run": "workflow", "fresh_clone_demo": "workflow", "openai_server": "vllm"}
NOT_UNIT = ("models", "workflow", "training", "vllm", "slurm")
DEMO_FIXTURES = {"tiny_models", "demo_run", "fresh_clone_demo"}


def xdist_worker() -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER"))


def run_order(item: pytest.Item) -> tuple[int, int]:
    """Tests that need less run first, while the demo is made in the background. Under xdist the Slurm
    tests come first: one worker takes them all (they share one cluster) and waits for the demo while
    the other worker runs the rest; then the other worker's tests fill the time its jobs wait on Slurm."""
    need = 2 if item.get_closest_marker("workflow") else 1 if item.get_closest_marker("models") else 0
    if item.get_closest_marker("slurm"):
        return (-1 if xdist_worker() else 1), need
    return 0, need


@pytest.hookimpl(tryfirst=True)  # before -m selects, and before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in NEEDS.items():
            if fixture in item.fixturenames:
                item.add_marker(marker)
        if not any(item.get_closest_marker(name) for name in NOT_UNIT):
            item.add_marker("unit")
        # one Slurm cluster, one vLLM server: their tests stay on one xdist worker (--dist loadgroup)
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))
        elif "openai_server" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("vllm-server"))
    items.sort(key=run_order)


SLOW = 60  # seconds: a test slower than this says why in its docstring, on a line starting "Slow:"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Name the tests that took more than SLOW seconds without saying why (CONTRIBUTING: the budget)."""
    unexplained = []
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        if report.when == "call" and report.duration > SLOW and "Slow:" not in (report.docstring or ""):
            unexplained.append(f"{report.duration:6.0f} s  {report.nodeid}")
    if unexplained:
        terminalreporter.write_sep("-", f"over {SLOW} s with no 'Slow:' line in the docstring")
        terminalreporter.write_line("\n".join(unexplained))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Each report carries its test's docstring for the summary above (xdist sends a report's
    attributes from the worker with it)."""
    report = yield
    function = getattr(item, "function", None)
    report.docstring = (function.__doc__ or "") if function else ""
    return report


# ---------------------------------------------------------------- the demo, made once

@pytest.fixture(scope="session")
def background_demo(tmp_path_factory) -> FreshCloneDemo:
    return FreshCloneDemo(shared_dir(tmp_path_factory))


@pytest.fixture(scope="session", autouse=True)
def demo_starts_at_once(request, background_demo):
    """The fresh clone's `make demo` starts as the test run begins when a selected test needs it (see
    fresh_clone_demo), so that the tests that do not need it run meanwhile. At the end, whatever still
    needs it has waited for it; one started only for its models is stopped."""
    needs = set().union(*(item.fixturenames for item in request.session.items)) & DEMO_FIXTURES
    if os.environ.get("SCALEQUEST_TINY_MODELS"):
        needs &= {"fresh_clone_demo"}
    if not needs:
        yield
        return
    background_demo.start({key: value for key, value in user_env().items() if key != "VIRTUAL_ENV"})
    yield
    if needs == {"tiny_models"}:
        background_demo.wait_for_models()
        background_demo.stop()
    else:  # another xdist worker may still be waiting for it
        background_demo.wait()


@pytest.fixture(scope="session")
def fresh_clone_demo(background_demo) -> subprocess.CompletedProcess:
    """The README's first command on a fresh clone, as a user types it: `git clone`, then `make demo`
    (it builds the tiny models, runs the demo and its report), with no ../shared and no
    SCALEQUEST_SHARED_DATA (tests/demo_runs.py). Its workdir is the result's `args` folder."""
    return background_demo.wait()


@pytest.fixture(scope="session")
def tiny_models(background_demo) -> Path:
    """The tiny LM and reward model, as the fresh clone's demo built them through the workflow's
    build rules (ready before that demo ends), or, to save time while developing, taken from
    $SCALEQUEST_TINY_MODELS: a folder of a previous build."""
    if os.environ.get("SCALEQUEST_TINY_MODELS"):
        return Path(os.environ["SCALEQUEST_TINY_MODELS"])
    return background_demo.wait_for_models()


def tiny_workflow(dest: Path, tiny_models: Path) -> Path:
    """A workflow copy whose tiny models are already built (copied in, LM first, so the reward
    model stays newer than its input and neither is rebuilt)."""
    workdir = copy_workflow(dest)
    target = workdir / "results" / "tiny" / "models"
    target.mkdir(parents=True)
    shutil.copytree(tiny_models / "tiny-lm", target / "tiny-lm")
    shutil.copytree(tiny_models / "tiny-reward", target / "tiny-reward")
    return workdir


@pytest.fixture(scope="session")
def demo_run(request, tmp_path_factory, tiny_models) -> Path:
    """The demo as a user runs it (hf engine, no ../shared), once per test run: the fresh clone's
    `make demo`, or, with $SCALEQUEST_TINY_MODELS while developing, `snakemake --profile
    profiles/local` on those models. Tests read it and copy it (copy_run) before running anything in
    it: other tests, on other xdist workers too, copy it meanwhile."""
    if not os.environ.get("SCALEQUEST_TINY_MODELS"):
        demo = request.getfixturevalue("fresh_clone_demo")
        assert demo.returncode == 0, demo.stdout[-6000:] + demo.stderr[-6000:]
        return demo.args

    def run() -> dict:
        workdir = tiny_workflow(shared_dir(tmp_path_factory) / "demo-run", tiny_models)
        result = run_snakemake(workdir, "--profile", "profiles/local", check=False)
        output = result.stdout + result.stderr
        ok = result.returncode == 0 and "Dataset: results/tiny/release/data" in output
        return {"workdir": str(workdir), "error": None if ok else output[-8000:]}

    made = once(shared_dir(tmp_path_factory), "local-demo", run)
    assert made["error"] is None, made["error"]
    return Path(made["workdir"])


def release_bytes(release_dir: Path) -> dict[str, bytes]:
    """The release's Parquet files, card and funnel.json, by name."""
    files = sorted((release_dir / "data").glob("*.parquet"))
    return {f.name: f.read_bytes() for f in files} | {
        name: (release_dir / name).read_bytes() for name in ("README.md", "funnel.json")}


def sidecars(results_dir: Path) -> dict:
    """Every shard stage's stats sidecars under `results_dir`, by (generator, shard)."""
    from scalequest.funnel import SHARD_STAGES
    from scalequest.stats import read_stats

    return {stage: {(p.parent.name, p.name.split(".")[0]): read_stats(p)
                    for p in sorted((results_dir / stage).glob("*/*.stats.json"))}
            for stage in SHARD_STAGES}


def job_counts(snakemake_output: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake run or dry run, as {rule: count}."""
    lines = snakemake_output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    counts = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    port: int
    key: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def wait_until_serving(process: subprocess.Popen, server: Server, log: Path, limit: float = 240) -> None:
    request = urllib.request.Request(f"{server.base_url}/models", headers={"Authorization": f"Bearer {server.key}"})
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"vLLM server exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"vLLM server not ready after {limit:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def openai_server(tiny_models, tmp_path_factory):
    """vLLM's OpenAI-compatible server on the tiny LM (served as OPENAI_MODEL) on loopback, with a
    random API key: the `openai` engine's tests and the QPO workflow test talk to it."""
    srv = Server(port=free_port(), key=f"sk-test-{secrets.token_hex(16)}")
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
           "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_models / "tiny-lm"),
               "--served-model-name", OPENAI_MODEL, "--host", "127.0.0.1", "--port", str(srv.port),
               "--dtype", "float32", "--max-model-len", "1024", "--enforce-eager", "--api-key", srv.key]
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_serving(process, srv, log)
        yield srv
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def slurm_cluster(request, tmp_path_factory):
    """The test run's one Slurm on localhost (tests/slurm_runs.py: cluster_for_tests), started once for
    every Slurm test module; they run on one xdist worker (pytest_collection_modifyitems)."""
    from slurm_runs import cluster_for_tests

    if getattr(request.config.option, "loadgroup", False):  # what xdist sets in a worker for --dist loadgroup
        # xdist groups by a suffix it adds to the tests' ids: a pytest that makes ids anew drops it, and each
        # worker would start a cluster of its own
        ungrouped = [item.nodeid for item in request.session.items
                     if item.get_closest_marker("slurm") and not item.nodeid.endswith("@slurm")]
        assert not ungrouped, (f"xdist did not group {ungrouped[0]} (and {len(ungrouped) - 1} more Slurm tests): "
                               "this pytest drops the ids xdist gives; use the one envs/cpu-requirements.txt pins")

    with cluster_for_tests(tmp_path_factory.mktemp("slurm")) as running:
        yield running
