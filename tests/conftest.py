"""Shared fixtures: a copy of the workflow in a temp dir, and the tiny models built once per
session through the workflow's own rules."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "scripts", "presets", "profiles", "envs"]
SHARED_DATA = Path(os.environ.get("SCALEQUEST_SHARED_DATA", REPO.parent / "shared" / "data"))


def copy_workflow(dest: Path) -> Path:
    """The workflow's files (not results) in `dest`, so a test's run writes only there."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def run_snakemake(workdir: Path, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real snakemake CLI in `workdir` with this interpreter's environment."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env, text=True,
                            capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """The tiny LM and reward model, built once by the workflow's build rules."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny-build"))
    run_snakemake(workdir, "--profile", "profiles/local", "build_tiny_reward")
    models = workdir / "results" / "tiny" / "models"
    assert (models / "tiny-lm" / "config.json").is_file() and (models / "tiny-reward" / "config.json").is_file()
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
