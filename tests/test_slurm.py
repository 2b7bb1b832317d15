"""The workflow on a real Slurm: slurmctld and slurmd on localhost with two fake GPUs, driven by
`snakemake --profile profiles/slurm` and the real executor plugin. The synthesis run here starts
from a copy of the local demo (models and training done) and must give the same release."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import copy_workflow, job_counts, release_bytes
from scalequest.joblog import FAIL_ONCE_ENV
from slurm_cluster import SlurmCluster
from slurm_runs import copy_run, finished_outputs, profile_env, run_on_slurm, slurm_command

pytestmark = pytest.mark.slurm
RESULTS = "results/tiny"
# Everything from question generation on; the copied run keeps its models, training and benchmarks.
SYNTHESIS_OUTPUTS = ["generate", "filter", "difficulty", "sample", "respond", "reward", "best", "minhash",
                     "decontaminate", "dedup", "release", "report", "logs"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with SlurmCluster(tmp_path_factory.mktemp("slurm"), nodes=1, gpus_per_node=2) as running:
        yield running


@pytest.fixture(scope="module")
def slurm_synthesis(cluster, demo_run, tmp_path_factory):
    """The synthesis stages on Slurm, every `screen` job failing once (injected). The first controller
    is killed (SIGKILL) as soon as it reports a generate job finished; a second one, started after
    `--unlock`, finishes the run."""
    workdir = copy_run(demo_run, tmp_path_factory.mktemp("slurm-synthesis") / "wf")
    for stage in SYNTHESIS_OUTPUTS:
        shutil.rmtree(workdir / RESULTS / stage, ignore_errors=True)
    env = {**profile_env(), FAIL_ONCE_ENV: "screen"}
    log = workdir / "first-controller.log"
    with log.open("w") as out:
        first = subprocess.Popen(slurm_command(cluster, timeout=900), cwd=workdir, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    while first.poll() is None and time.monotonic() < deadline and not finished_outputs(log.read_text(), "generate"):
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    finished = finished_outputs(log.read_text(), "generate")
    assert finished, f"no generate job finished before the kill:\n{log.read_text()[-6000:]}\n{cluster.logs()}"
    before = {path: (workdir / path).stat().st_mtime_ns for path in finished}
    run_on_slurm(workdir, cluster, "--unlock", env=env)
    second = run_on_slurm(workdir, cluster, env=env, timeout=1500)
    return SimpleNamespace(workdir=workdir, before=before, output=second.stdout + second.stderr)


def test_synthesis_on_slurm_gives_the_local_release(slurm_synthesis, demo_run):
    assert release_bytes(slurm_synthesis.workdir / RESULTS / "release") == release_bytes(demo_run / RESULTS / "release")


def test_restart_after_killing_the_controller_reruns_only_unfinished_jobs(slurm_synthesis):
    for path, mtime in slurm_synthesis.before.items():
        assert (slurm_synthesis.workdir / path).stat().st_mtime_ns == mtime, f"{path} was made again"
    finished = sum(path.endswith(".parquet") for path in slurm_synthesis.before)
    assert job_counts(slurm_synthesis.output)["generate"] == 4 - finished


def test_gpu_rules_get_their_gpu_from_slurm(slurm_synthesis):
    logs = slurm_synthesis.workdir / RESULTS / "logs"
    for log in sorted((logs / "generate").glob("*/*.log")):
        header = log.read_text().splitlines()[0]
        assert re.fullmatch(r"== rule generate on \S+, Slurm job \d+, hub offline, CUDA_VISIBLE_DEVICES=[01]",
                            header), header
    for log in sorted((logs / "dedup").glob("*.log")):  # a CPU job: no GPU
        assert log.read_text().splitlines()[0].endswith("CUDA_VISIBLE_DEVICES=")


def test_a_failed_job_is_retried_with_more_time_and_memory(slurm_synthesis):
    output = slurm_synthesis.output
    assert len(re.findall(r"Error in rule screen:\n\s+message: SLURM-job '\d+' failed", output)) == 4
    attempts = set()  # (shard, mem_mb, runtime) of each submission; failed jobs' logs repeat their block
    for block in re.split(r"\n(?=rule |localrule )", output):
        if block.startswith("rule screen:"):
            found = [re.search(pattern, block) for pattern in (r"wildcards: (.+)", r"\bmem_mb=(\d+)", r"\bruntime=(\d+)")]
            attempts.add(tuple(match.group(1) for match in found))
    shards = {shard for shard, _, _ in attempts}
    assert len(shards) == 4 and attempts == {(shard, *asked) for shard in shards
                                             for asked in (("1000", "60"), ("2000", "120"))}, attempts
    # The first tries' logs are shown by the controller (the retry starts its log afresh).
    logs = sorted((slurm_synthesis.workdir / RESULTS / "logs" / "screen").glob("*/*.log"))
    assert len(logs) == 4
    for log in logs:
        shown = output.split(f"Logfile {log.relative_to(slurm_synthesis.workdir)}:", 1)
        assert len(shown) == 2 and "failure injected by SCALEQUEST_FAIL_ONCE=screen" in shown[1].split("Logfile", 1)[0]
        assert Path(f"{log}.failed-once").exists() and "failure injected" not in log.read_text()


def test_bad_requests_fail_at_submission_while_the_rest_goes_on(cluster, demo_run, tmp_path):
    """Two CPU jobs whose re-run triggers nothing else (the keep rates are read as ancient): one
    asks for more than the cluster has, the other runs (keep-going)."""
    workdir = copy_run(demo_run, tmp_path / "wf")
    refused, kept = f"{RESULTS}/minhash/deepseek-math/00000.parquet", f"{RESULTS}/difficulty/keep_rates.json"
    for resource, message in (("gpu=4", "Batch job submission failed: Requested node configuration is not available"),
                              ("slurm_partition=nope", "invalid partition specified: nope")):
        for path in (refused, kept):
            (workdir / path).unlink(missing_ok=True)
        result = run_on_slurm(workdir, cluster, refused, kept, "--set-resources", f"screen:{resource}",
                              check=False, timeout=300)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-4000:]
        assert "Error in rule screen" in output and message in output, output[-4000:]
        assert (workdir / kept).is_file() and not (workdir / refused).exists(), output[-4000:]


SLURM_COMMANDS = {"sbatch", "srun", "squeue", "sinfo", "sacct", "scancel", "scontrol", "sacctmgr", "salloc"}


def test_profile_plans_without_slurm(tmp_path):
    """A dry run needs no Slurm command: PATH has the system's tools but none of Slurm's."""
    workdir = copy_workflow(tmp_path / "wf")
    tools = tmp_path / "bin"
    tools.mkdir()
    for folder in (Path("/usr/bin"), Path("/bin")):
        for tool in folder.iterdir():
            if tool.name not in SLURM_COMMANDS and not (tools / tool.name).exists():
                (tools / tool.name).symlink_to(tool)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{tools}"}
    for profile in (["--profile", "profiles/slurm"], ["--workflow-profile", "slurm"]):
        result = subprocess.run([sys.executable, "-m", "snakemake", *profile, "-n"], cwd=workdir, env=env, text=True,
                                capture_output=True, timeout=300)
        assert result.returncode == 0, result.stderr[-4000:]
        counts = job_counts(result.stdout)
        assert counts["generate"] == 200 and counts["qft"] == 2
