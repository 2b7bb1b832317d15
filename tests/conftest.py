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

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "scripts", "presets", "profiles", "slurm", "envs", "report"]
SHARED_DATA = Path(os.environ.get("SCALEQUEST_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
SHARED_DATA_ENV = "SCALEQUEST_SHARED_DATA"  # the tiny preset's real benchmark files, where set
OPENAI_MODEL = "tiny-lm"


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


@pytest.fixture(scope="session")
def fresh_clone_demo(tmp_path_factory) -> subprocess.CompletedProcess:
    """The README's first command on a fresh clone, as a user types it: `make demo` (it installs its
    own environment, builds the tiny models, runs the demo and its report), with no ../shared and no
    SCALEQUEST_SHARED_DATA. Its workdir is the result's `args` folder."""
    top = tmp_path_factory.mktemp("user")
    assert not (top / "shared").exists()
    clone = fresh_clone(top / "scalequest")
    result = subprocess.run(["make", "demo"], cwd=clone, text=True, capture_output=True, timeout=2700,
                            env={key: value for key, value in user_env().items() if key != "VIRTUAL_ENV"})
    result.args = clone
    return result


@pytest.fixture(scope="session")
def tiny_models(request) -> Path:
    """The tiny LM and reward model, as the fresh clone's demo built them through the workflow's
    build rules (or, to save time while developing, taken from $SCALEQUEST_TINY_MODELS: a folder of
    a previous build)."""
    if os.environ.get("SCALEQUEST_TINY_MODELS"):
        return Path(os.environ["SCALEQUEST_TINY_MODELS"])
    demo = request.getfixturevalue("fresh_clone_demo")
    models = demo.args / "results" / "tiny" / "models"
    assert (models / "tiny-lm" / "config.json").is_file() and (models / "tiny-reward" / "config.json").is_file(), \
        demo.stdout[-4000:] + demo.stderr[-4000:]
    return models


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
    """The demo as a user runs it (hf engine, no ../shared), once per session: the fresh clone's
    `make demo`, or, with $SCALEQUEST_TINY_MODELS while developing, `snakemake --profile
    profiles/local` on those models. The workflow tests read it, the Slurm tests compare their
    release with it."""
    if not os.environ.get("SCALEQUEST_TINY_MODELS"):
        demo = request.getfixturevalue("fresh_clone_demo")
        assert demo.returncode == 0, demo.stdout[-6000:] + demo.stderr[-6000:]
        return demo.args
    workdir = tiny_workflow(tmp_path_factory.mktemp("demo-run"), tiny_models)
    result = run_snakemake(workdir, "--profile", "profiles/local")
    assert "Dataset: results/tiny/release/data" in result.stdout + result.stderr
    return workdir


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
