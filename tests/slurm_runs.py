"""Running the workflow through `snakemake --profile slurm` (the checkout's `slurm` link to
profiles/slurm, as a user types it) against a test cluster (slurm_cluster), for the Slurm test modules."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import user_env
from scalequest.chunks import chunks_dir
from slurm_cluster import Partition, SlurmCluster, SlurmJob

STEADY_SNAKEMAKE = Path(__file__).with_name("steady_snakemake.py")
STAND_IN_TOOLS = Path(__file__).with_name("bin")  # nvidia-smi
GPUS = 4  # fake GPUs per node of the test cluster: the tiny preset's generate shards (4) run side by side
ONE_NODE, TWO_NODES = "debug", "twonodes"  # the test cluster's partitions
# What the profile's cluster settings become on the test cluster (8 CPUs, 19 GB per node).
TEST_CLUSTER_SETTINGS = {"partition": ONE_NODE, "gpus_per_node": 1, "cpus_per_gpu": 1, "gpu_mem_mb": 3000,
                         "node_mem_mb": 6000, "cpu_mem_mb": 1000, "merge_mem_mb": 2000}


def cluster_for_tests(root: Path) -> SlurmCluster:
    """The test run's one cluster (conftest: slurm_cluster), for every Slurm test module: two nodes of
    GPUS fake GPUs each, with accounting (slurmdbd + mariadb, associations enforced). Partition ONE_NODE,
    the default, is the first node alone (a job asking for GPUS + 1 GPUs is refused there); TWO_NODES
    spans both."""
    return SlurmCluster(root, nodes=2, gpus_per_node=GPUS, accounting=True,
                        partitions=[Partition(ONE_NODE, nodes=1), Partition(TWO_NODES)])


def profile_env(**settings: str | int) -> dict[str, str]:
    """The environment the demo ran in (conftest.user_env: this interpreter first on PATH, no
    SCALEQUEST_SHARED_DATA), with the profile's cluster settings for the test cluster (each
    overridable) as SCALEQUEST_SLURM_* variables, and the stand-in nvidia-smi (tests/bin) on PATH, which
    the jobs inherit: the nodes report H100 GPUs on driver 580 ($SCALEQUEST_FAKE_GPUS changes that)."""
    env = {key: value for key, value in user_env().items() if not key.startswith("SCALEQUEST_SLURM_")}
    env["PATH"] = f"{STAND_IN_TOOLS}{os.pathsep}{env['PATH']}"
    for name, value in {**TEST_CLUSTER_SETTINGS, **settings}.items():
        env[f"SCALEQUEST_SLURM_{name.upper()}"] = str(value)
    return env


def slurm_command(cluster: SlurmCluster, *args: str, timeout: float) -> list[str]:
    """`snakemake --profile slurm` (run from the checkout's root) on the tiny preset, killed after
    `timeout` seconds (a controller that lost its jobs can hang and ignore SIGTERM). Snakemake runs
    through tests/steady_snakemake.py, which keeps its checks of the test cluster's jobs at a steady pace."""
    return ["timeout", "-s", "KILL", str(int(timeout)), sys.executable, str(STEADY_SNAKEMAKE), "--profile",
            "slurm", "--configfile", "presets/tiny.yaml", "--jobs", "8", *cluster.status_args(), *args]


def run_on_slurm(workdir: Path, cluster: SlurmCluster, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(slurm_command(cluster, *args, timeout=timeout), cwd=workdir, text=True,
                            capture_output=True, env=env or profile_env())
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake on Slurm failed ({result.returncode}):\n{result.stdout[-6000:]}\n"
                             f"{result.stderr[-8000:]}\n{cluster.logs()}")
    return result


# A finished demo's own environment and caches (`make demo` installs one, ~4 GB): the Slurm runs
# use this interpreter's snakemake, so a copy of the run leaves them out.


def _announced_jobs(controller_output: str, rule: str) -> dict[str, dict[str, set[str]]]:
    """Snakemake job id -> {"output": paths, "log": paths}, for each `rule` job the controller announced."""
    jobs = {}
    for block in re.split(r"\n(?=\[.*\]\n|rule |localrule )", controller_output):
        header = re.match(rf"(?:local)?rule {re.escape(rule)}:", block.strip())
        jobid = re.search(r"\n\s*jobid: (\d+)", block)
        if header and jobid:
            paths = {}
            for key in ("output", "log"):
                found = re.search(rf"\n\s*{key}: (.+)", block)
                paths[key] = {path.strip() for path in found.group(1).split(",")} if found else set()
            jobs[jobid.group(1)] = paths
    return jobs


def finished_outputs(controller_output: str, rule: str) -> set[str]:
    """The outputs of the `rule` jobs the controller reported finished ("Finished jobid: N (Rule: x)")."""
    jobs, finished = _announced_jobs(controller_output, rule), set()
    for jobid in re.findall(rf"Finished jobid: (\d+) \(Rule: {re.escape(rule)}\)", controller_output):
        finished |= jobs.get(jobid, {}).get("output", set())
    return finished


def submitted_jobs(controller_output: str, rule: str) -> dict[str, dict[str, set[str]]]:
    """Slurm job id -> {"output": paths, "log": paths}, for each `rule` job the controller submitted
    ("Job N has been submitted with SLURM jobid M")."""
    jobs = _announced_jobs(controller_output, rule)
    return {slurm_id: jobs[jobid]
            for jobid, slurm_id in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", controller_output)
            if jobid in jobs}


def freeze_a_running_job(cluster: SlurmCluster, rule: str, controller: subprocess.Popen, log: Path,
                         workdir: Path, timeout: float = 600) -> tuple[SlurmJob, set[str]]:
    """Wait until squeue shows a `rule` job RUNNING (the plugin's --comment names the rule) that the
    controller logging to `log` submitted, whose script has started (its log file has a line) and
    none of whose outputs exists yet; suspend it (every process stopped) and check again that no
    output exists: it is then provably unfinished, and stays so until resumed or cancelled.
    Returns the job and its outputs (paths relative to `workdir`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and controller.poll() is None:
        submitted = submitted_jobs(log.read_text(), rule)
        for job in cluster.jobs():
            files = submitted.get(job.id)
            if job.rule != rule or job.state != "RUNNING" or not files or not files["output"]:
                continue
            started = all((workdir / path).is_file() and (workdir / path).stat().st_size for path in files["log"])
            if not started or any((workdir / path).exists() for path in files["output"]):
                continue  # not yet in its script (a step may still be launched), or writing its outputs
            cluster.suspend(job.id)
            if not any((workdir / path).exists() for path in files["output"]):
                return job, files["output"]
            cluster.resume(job.id)  # it wrote an output before the stop landed: try another
        time.sleep(0.5)
    raise AssertionError(f"no running {rule} job to suspend (controller exit status {controller.poll()}):\n"
                         f"{log.read_text()[-6000:]}\n{cluster.jobs()}\n{cluster.logs()}")


CHUNK_NAME = re.compile(r"(?P<call>.+)-(?P<start>\d{9})-(?P<stop>\d{9})\.json")


def chunks_done(out: Path) -> int:
    """How many prompts the finished chunks of a shard's job (one engine call) cover, from their names."""
    found = (CHUNK_NAME.fullmatch(path.name) for path in chunks_dir(out).glob("*.json"))
    return sum(int(match["stop"]) - int(match["start"]) for match in found if match)


def _mid_shard(out: Path, prompts: Callable[[Path], int]) -> bool:
    return not out.exists() and 0 < chunks_done(out) < prompts(out)


def freeze_jobs_mid_shard(cluster: SlurmCluster, rule: str, count: int, prompts: Callable[[Path], int],
                          controller: subprocess.Popen, log: Path, workdir: Path,
                          timeout: float = 600) -> list[tuple[SlurmJob, Path]]:
    """Wait until `count` running `rule` jobs that the controller logging to `log` submitted are each
    part-way through their shard: some chunks written (scalequest/chunks.py), not all of the shard's
    `prompts(out)`, no shard written; suspend each as soon as it is, and check again while it is frozen.
    Returns the frozen jobs and their shard outputs (absolute paths), in the order they were frozen."""
    frozen: list[tuple[SlurmJob, Path]] = []
    deadline = time.monotonic() + timeout
    while len(frozen) < count and time.monotonic() < deadline and controller.poll() is None:
        submitted = submitted_jobs(log.read_text(), rule)
        for job in cluster.jobs():
            files = submitted.get(job.id)
            if job.rule != rule or job.state != "RUNNING" or not files or any(job.id == f.id for f, _ in frozen):
                continue
            chunked = [workdir / path for path in sorted(files["output"]) if chunks_dir(workdir / path).is_dir()]
            if len(chunked) != 1:
                continue  # not yet in its engine call
            out = chunked[0]
            if not _mid_shard(out, prompts):
                continue
            cluster.suspend(job.id)
            if _mid_shard(out, prompts):
                frozen.append((job, out))
                if len(frozen) == count:
                    break
            else:
                cluster.resume(job.id)  # it finished its last chunk before the stop landed: try another
        time.sleep(0.2)
    if len(frozen) < count:
        for job, _ in frozen:
            cluster.resume(job.id)
        raise AssertionError(f"found {len(frozen)} of {count} {rule} jobs mid-shard (controller exit status "
                             f"{controller.poll()}):\n{log.read_text()[-6000:]}\n{cluster.jobs()}\n{cluster.logs()}")
    return frozen
