"""Running the workflow through `--profile profiles/slurm` against a test cluster (slurm_cluster),
for the Slurm test modules."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import SHARED_DATA
from slurm_cluster import SlurmCluster

# What the profile's cluster settings become on the test cluster (one node: 8 CPUs, 19 GB).
TEST_CLUSTER_SETTINGS = {"partition": "debug", "gpus_per_node": 1, "cpus_per_gpu": 1, "gpu_mem_mb": 3000,
                         "node_mem_mb": 6000, "cpu_mem_mb": 1000, "merge_mem_mb": 2000}


def profile_env(**settings: str | int) -> dict[str, str]:
    """This interpreter's environment, with the profile's cluster settings for the test cluster
    (each overridable) as SCALEQUEST_SLURM_* variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCALEQUEST_SLURM_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for name, value in {**TEST_CLUSTER_SETTINGS, **settings}.items():
        env[f"SCALEQUEST_SLURM_{name.upper()}"] = str(value)
    return env


def slurm_command(cluster: SlurmCluster, *args: str, timeout: float) -> list[str]:
    """`snakemake --profile profiles/slurm` on the tiny preset, killed after `timeout` seconds
    (a controller that lost its jobs can hang and ignore SIGTERM)."""
    return ["timeout", "-s", "KILL", str(int(timeout)), sys.executable, "-m", "snakemake", "--profile",
            "profiles/slurm", "--configfile", "presets/tiny.yaml", "--jobs", "8", *cluster.status_args(), *args]


def run_on_slurm(workdir: Path, cluster: SlurmCluster, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(slurm_command(cluster, *args, timeout=timeout), cwd=workdir, text=True,
                            capture_output=True, env=env or profile_env())
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake on Slurm failed ({result.returncode}):\n{result.stdout[-6000:]}\n"
                             f"{result.stderr[-8000:]}\n{cluster.logs()}")
    return result


def copy_run(source: Path, dest: Path) -> Path:
    """A copy of a finished workflow directory (results and .snakemake metadata, modification times
    kept, so nothing looks newer than it is), with the shared data beside it as the preset expects."""
    shared = dest.parent / "shared" / "data"
    if not shared.exists():
        shared.parent.mkdir(parents=True, exist_ok=True)
        shared.symlink_to(SHARED_DATA.resolve(), target_is_directory=True)
    shutil.copytree(source, dest, symlinks=True)
    return dest


def finished_outputs(controller_output: str, rule: str) -> set[str]:
    """The outputs of the `rule` jobs the controller reported finished ("Finished jobid: N (Rule: x)")."""
    outputs, finished = {}, set()
    for block in re.split(r"\n(?=\[.*\]\n|rule |localrule )", controller_output):
        header = re.match(rf"(?:local)?rule {re.escape(rule)}:", block.strip())
        jobid = re.search(r"\n\s*jobid: (\d+)", block)
        output = re.search(r"\n\s*output: (.+)", block)
        if header and jobid and output:
            outputs[jobid.group(1)] = {path.strip() for path in output.group(1).split(",")}
    for jobid in re.findall(rf"Finished jobid: (\d+) \(Rule: {re.escape(rule)}\)", controller_output):
        finished |= outputs.get(jobid, set())
    return finished
