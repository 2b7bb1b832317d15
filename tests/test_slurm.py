"""The workflow on a real Slurm: slurmctld and slurmd on localhost with four fake GPUs, driven by
`snakemake --profile slurm` (the checkout's link to profiles/slurm) and the real executor plugin.
The synthesis run here starts from a copy of the local demo (models and training done) and must
give the same release."""
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

from conftest import copy_run, copy_workflow, full_config, job_counts, release_bytes, shards_per_stage, tiny_config
from scalequest.failure_injection import FAIL_ONCE_ENV
from slurm_cluster import SlurmCluster
from slurm_runs import finished_outputs, freeze_a_running_job, profile_env, run_on_slurm, slurm_command

pytestmark = pytest.mark.slurm
RESULTS = "results/tiny"
# Everything from question generation on; the copied run keeps its models, training and benchmarks.
SYNTHESIS_OUTPUTS = ["generate", "filter", "difficulty", "sample", "respond", "reward", "best", "minhash",
                     "matches", "dedup", "release", "report", "logs"]
GPUS = 4  # the fake node's GPUs: the tiny preset's generate shards (4) run side by side
GENERATE_SHARDS = shards_per_stage(tiny_config())  # presets/tiny.yaml: one generate job per shard


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One node, 8 CPUs, GPUS fake GPUs (CUDA_VISIBLE_DEVICES 0..GPUS-1)."""
    with SlurmCluster(tmp_path_factory.mktemp("slurm"), nodes=1, gpus_per_node=GPUS) as running:
        yield running


def generate_outputs(workdir: Path) -> set[str]:
    """The generate shards and sidecars on disk (a killed write leaves only a temporary name)."""
    return {str(path.relative_to(workdir)) for path in (workdir / RESULTS / "generate").glob("*/*")
            if path.name.endswith((".parquet", ".stats.json"))}


@pytest.fixture(scope="module")
def slurm_synthesis(cluster, demo_run, tmp_path_factory):
    """The synthesis stages on Slurm, every `screen` job failing once (injected), the controller
    killed mid-run. Once a generate job is running, the fixture freezes it (scontrol suspend) before
    it has written anything; once the controller has reported another generate job finished, the
    controller is killed (SIGKILL), the frozen job cancelled (it never writes its shard) and the
    other jobs the controller had submitted are left to end, as they would on a cluster (a restart
    while they still run would race them for their outputs). A second controller, started after
    `--unlock`, finishes the run."""
    workdir = copy_run(demo_run, tmp_path_factory.mktemp("slurm-synthesis") / "wf")
    for stage in SYNTHESIS_OUTPUTS:
        shutil.rmtree(workdir / RESULTS / stage, ignore_errors=True)
    env = {**profile_env(), FAIL_ONCE_ENV: "screen"}
    log = workdir / "first-controller.log"
    with log.open("w") as out:
        first = subprocess.Popen(slurm_command(cluster, timeout=900), cwd=workdir, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        frozen, unfinished = freeze_a_running_job(cluster, "generate", first, log, workdir, timeout=600)
        deadline = time.monotonic() + 600
        while (first.poll() is None and time.monotonic() < deadline
               and not finished_outputs(log.read_text(), "generate")):
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    reported = finished_outputs(log.read_text(), "generate")
    assert reported, f"no generate job reported finished before the kill:\n{log.read_text()[-6000:]}\n{cluster.logs()}"
    assert reported.isdisjoint(unfinished), (reported, unfinished)
    cluster.cancel(frozen.id)
    cluster.wait_until_no_jobs_run(timeout=600)
    finished = generate_outputs(workdir)  # reported, or ended after the kill: either way complete
    assert reported <= finished and finished.isdisjoint(unfinished), (reported, finished, unfinished)
    before = {path: (workdir / path).stat().st_mtime_ns for path in finished}
    run_on_slurm(workdir, cluster, "--unlock", env=env)
    second = run_on_slurm(workdir, cluster, env=env, timeout=1500)
    return SimpleNamespace(workdir=workdir, before=before, unfinished=unfinished, output=second.stdout + second.stderr)


def test_the_cluster_gives_a_job_every_gpu_it_asks_for(cluster):
    """The harness's fake GPUs: a job asking for all of them (whole job or per node) sees them all."""
    for ask in (f"--gpus={GPUS}", f"--gres=gpu:{GPUS}"):
        result = subprocess.run(["srun", ask, "-t", "1", "printenv", "CUDA_VISIBLE_DEVICES"], env=cluster.env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr + cluster.logs()
        assert result.stdout.strip() == ",".join(map(str, range(GPUS))), (ask, result.stdout)


def test_synthesis_on_slurm_gives_the_local_release(slurm_synthesis, demo_run):
    assert release_bytes(slurm_synthesis.workdir / RESULTS / "release") == release_bytes(demo_run / RESULTS / "release")


def test_restart_after_killing_the_controller_reruns_only_unfinished_jobs(slurm_synthesis):
    for path, mtime in slurm_synthesis.before.items():
        assert (slurm_synthesis.workdir / path).stat().st_mtime_ns == mtime, f"{path} was made again"
    finished = sum(path.endswith(".parquet") for path in slurm_synthesis.before)
    assert 0 < finished < GENERATE_SHARDS, slurm_synthesis.before
    # "Job stats" has no line for a rule with no jobs: zero generate jobs reads as 0, not a KeyError
    assert job_counts(slurm_synthesis.output).get("generate", 0) == GENERATE_SHARDS - finished
    assert finished_outputs(slurm_synthesis.output, "generate") == slurm_synthesis.unfinished


def test_gpu_rules_get_their_gpu_from_slurm(slurm_synthesis):
    logs = slurm_synthesis.workdir / RESULTS / "logs"
    for log in sorted((logs / "generate").glob("*/*.log")):
        header = log.read_text().splitlines()[0]
        assert re.fullmatch(rf"== rule generate on \S+, Slurm job \d+, hub offline, "
                            rf"CUDA_VISIBLE_DEVICES=[0-{GPUS - 1}]", header), header
    for log in sorted((logs / "dedup").glob("*.log")):  # a CPU job: no GPU
        assert log.read_text().splitlines()[0].endswith("CUDA_VISIBLE_DEVICES=")


def test_a_failed_job_is_retried_with_more_time_and_memory(slurm_synthesis):
    output = slurm_synthesis.output
    shards = GENERATE_SHARDS  # and as many screen jobs
    assert len(re.findall(r"Error in rule screen:\n\s+message: SLURM-job '\d+' failed", output)) == shards
    attempts = set()  # (shard, mem_mb, runtime) of each submission; failed jobs' logs repeat their block
    for block in re.split(r"\n(?=rule |localrule )", output):
        if block.startswith("rule screen:"):
            found = [re.search(pattern, block)
                     for pattern in (r"wildcards: (.+)", r"\bmem_mb=(\d+)", r"\bruntime=(\d+)")]
            attempts.add(tuple(match.group(1) for match in found))
    screened = {shard for shard, _, _ in attempts}
    assert len(screened) == shards and attempts == {(shard, *asked) for shard in screened
                                             for asked in (("1000", "60"), ("2000", "120"))}, attempts
    # The first tries' logs are shown by the controller (the retry starts its log afresh).
    logs = sorted((slurm_synthesis.workdir / RESULTS / "logs" / "screen").glob("*/*.log"))
    assert len(logs) == shards
    for log in logs:
        shown = output.split(f"Logfile {log.relative_to(slurm_synthesis.workdir)}:", 1)
        assert len(shown) == 2 and "failure injected by SCALEQUEST_FAIL_ONCE=screen" in shown[1].split("Logfile", 1)[0]
        assert Path(f"{log}.failed-once").exists() and "failure injected" not in log.read_text()


def test_a_model_on_four_gpus_makes_a_four_gpu_job(cluster, demo_run, tmp_path):
    """The judge's model asks for 4 GPUs (models.tiny-lm.gpus; a vLLM model would by its
    tensor_parallel_size): one shard's filter job is submitted as a 4-GPU job and sees all 4 (the
    hf engine then runs on the CPU here). mtime triggers only: nothing upstream is re-made."""
    workdir = copy_run(demo_run, tmp_path / "wf")
    target = f"{RESULTS}/filter/qwen2-math/00000.parquet"
    for path in (target, target.replace(".parquet", ".stats.json")):
        (workdir / path).unlink()
    (workdir / "gpus.yaml").write_text("models:\n  tiny-lm: {gpus: 4}\n")
    result = run_on_slurm(workdir, cluster, target, "--configfile", "presets/tiny.yaml", "gpus.yaml",
                          "--rerun-triggers", "mtime", timeout=600)
    assert job_counts(result.stdout + result.stderr) == {"filter": 1, "total": 1}
    assert re.search(r"resources: .*\bgpu=4\b", result.stdout + result.stderr)
    header = (workdir / RESULTS / "logs/filter/qwen2-math/00000.log").read_text().splitlines()[0]
    assert re.fullmatch(r"== rule filter on \S+, Slurm job \d+, hub offline, CUDA_VISIBLE_DEVICES=0,1,2,3",
                        header), header


def test_bad_requests_fail_at_submission_while_the_rest_goes_on(cluster, demo_run, tmp_path):
    """Two CPU jobs whose re-run triggers nothing else (the keep rates are read as ancient): one
    asks for more than the cluster has, the other runs (keep-going)."""
    workdir = copy_run(demo_run, tmp_path / "wf")
    refused, kept = f"{RESULTS}/minhash/deepseek-math/00000.parquet", f"{RESULTS}/difficulty/keep_rates.json"
    too_many = "Batch job submission failed: Requested node configuration is not available"  # GPUS + 1 GPUs
    for resource, message in ((f"gpu={GPUS + 1}", too_many),
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
    """`snakemake --profile slurm -n`, typed at the checkout's root, plans every job with no Slurm
    command on PATH (the system's tools, none of Slurm's). `slurm` is the checkout's link to the
    real folder profiles/slurm; where a copy has no link, `--workflow-profile slurm` reaches it."""
    workdir = copy_workflow(tmp_path / "wf")
    link, profile = workdir / "slurm", workdir / "profiles" / "slurm"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link)) and link.resolve() == profile.resolve()
    assert profile.is_dir() and not profile.is_symlink()
    tools = tmp_path / "bin"
    tools.mkdir()
    for folder in (Path("/usr/bin"), Path("/bin")):
        for tool in folder.iterdir():
            if tool.name not in SLURM_COMMANDS and not (tools / tool.name).exists():
                (tools / tool.name).symlink_to(tool)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCALEQUEST_SLURM_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{tools}"
    for args, used in ((["--profile", "slurm"], "Using profile slurm for"),
                       (["--workflow-profile", "slurm"], "Using workflow specific profile profiles/slurm for")):
        if args[0] == "--workflow-profile":
            link.unlink()  # a checkout without the link
        result = subprocess.run([sys.executable, "-m", "snakemake", *args, "-n"], cwd=workdir, env=env, text=True,
                                capture_output=True, timeout=300)
        assert result.returncode == 0, result.stderr[-4000:]
        assert used in result.stderr, result.stderr[-4000:]
        counts = job_counts(result.stdout)
        config = full_config()
        assert counts["generate"] == shards_per_stage(config) and counts["qft"] == len(config["generators"])
        assert "slurm_partition=" in result.stdout  # the profile's default resources reached the plan
