"""The workflow on a real Slurm: slurmctld and slurmd on localhost with fake GPUs (conftest:
slurm_cluster), driven by `snakemake --profile slurm` (the checkout's link to profiles/slurm) and the
real executor plugin. The synthesis run here is the demo's second run from its trained models: it
starts from a copy of the local demo (models and training kept; tests/test_workflow.py trains them a
second time) and must give the same release and evaluation, byte for byte."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from conftest import copy_run, copy_workflow, full_config, job_counts, release_bytes, shards_per_stage, tiny_config
from scalequest.chunks import ATTEMPTS_FILE, chunks_dir
from scalequest.failure_injection import FAIL_ONCE_ENV
from scalequest.registry import ENGINE, JOBS, TRAINING, rules_of
from slurm_cluster import SlurmCluster
from slurm_runs import (
    GPUS,
    TEST_CLUSTER_SETTINGS,
    finished_outputs,
    freeze_a_running_job,
    freeze_jobs_mid_shard,
    profile_env,
    run_on_slurm,
    slurm_command,
)

pytestmark = pytest.mark.slurm
RESULTS = "results/tiny"
# Everything from question generation on, and the evaluation's answers of the tiny LM as it is (those of
# the model fine-tuned on the release are made again anyway); the copied run keeps its models, training,
# benchmarks and the evaluation's items.
SYNTHESIS_OUTPUTS = ["generate", "filter", "difficulty", "sample", "respond", "reward", "best", "minhash",
                     "matches", "dedup", "release", "report", "logs", "evaluation/answers/tiny-lm/none"]
EVALUATION = ("scores.json", "table.md")  # the evaluation's table, from SFT on the release and the answers
GENERATE_SHARDS = shards_per_stage(tiny_config())  # presets/tiny.yaml: one generate job per shard
# The smallest chunks the models allow (hf rounds chunk_size up to their batch_size, which decides the
# results: the local demo's release stays the reference), so that a respond job has several.
SMALL_CHUNKS = ("--config", "chunk_size=1")
# How the synthesis run interrupts three respond jobs mid-shard, and the signal the rule's Python gets:
# scancel (as a time limit or a preemption that cancels: SIGTERM to every process of the job, SIGKILL
# KillWait seconds later), SIGUSR1 to the job's steps (what the profile's `sbatch --signal=USR1@...`
# sends before the time limit), a requeue (preemption on a partition that requeues; the profile's
# `preemptible` submits with --requeue, without which the test cluster refuses it). Not `scancel
# --signal=TERM --full`: the batch script's srun then kills the step at once, too soon for any handler.
INTERRUPTS = {"cancel": "SIGTERM", "USR1": "SIGUSR1", "requeue": "SIGTERM"}


def generate_outputs(workdir: Path) -> set[str]:
    """The generate shards and sidecars on disk (a killed write leaves only a temporary name)."""
    return {str(path.relative_to(workdir)) for path in (workdir / RESULTS / "generate").glob("*/*")
            if path.name.endswith((".parquet", ".stats.json"))}


def sampled_questions(out: Path) -> int:
    """A respond shard's prompts: the questions its job drew first (stage sample; difficulty sampling is
    on in the tiny preset)."""
    return pq.ParquetFile(out.parents[2] / "sample" / out.parent.name / out.name).metadata.num_rows


def interrupt_respond_jobs(cluster: SlurmCluster, controller: subprocess.Popen, log: Path,
                           workdir: Path) -> dict[str, SimpleNamespace]:
    """Freeze as many respond jobs as INTERRUPTS, each with some chunks written and more to come, then
    thaw and interrupt each its way. A requeued job starts its log afresh under the same Slurm id: what
    its interrupted try recorded is read from its chunk folder while it waits to run again."""
    frozen = freeze_jobs_mid_shard(cluster, "respond", len(INTERRUPTS), sampled_questions, controller, log,
                                   workdir, timeout=1200)  # generate to difficulty run first
    interrupted = {}
    for how, (job, out) in zip(INTERRUPTS, frozen):
        cluster.resume(job.id)
        attempts = None
        if how == "requeue":
            cluster.requeue(job.id)
            attempts = json.loads((chunks_dir(out) / ATTEMPTS_FILE).read_text())
            cluster.release(job.id)  # not the two minutes Slurm holds a requeued job
        elif how == "cancel":
            cluster.cancel(job.id)
        else:
            cluster.signal(job.id, how)
        interrupted[how] = SimpleNamespace(job=job, out=out, attempts=attempts)
    return interrupted


@pytest.fixture(scope="module")
def slurm_synthesis(slurm_cluster, demo_run, tmp_path_factory):
    """The demo's second run, on Slurm, from its trained models: the synthesis, the release and the
    evaluation, with the profile's `preemptible` on, every `screen` job failing once (injected), the
    controller killed mid-run, three respond jobs interrupted mid-shard. Once a generate job is running,
    the fixture freezes it (scontrol suspend) before it has written anything; once the controller has
    reported another generate job finished, the controller is killed (SIGKILL), the frozen job cancelled
    (it never writes its shard) and the other jobs the controller had submitted are left to end, as they
    would on a cluster (a restart while they still run would race them for their outputs). A second
    controller, started without `--unlock` (the killed one's lock died with it), finishes the run, its
    respond jobs interrupted as INTERRUPTS says. (About 6 minutes on 2 cores.)"""
    cluster = slurm_cluster
    workdir = copy_run(demo_run, tmp_path_factory.mktemp("slurm-synthesis") / "wf")
    for stage in SYNTHESIS_OUTPUTS:
        shutil.rmtree(workdir / RESULTS / stage, ignore_errors=True)
    env = {**profile_env(preemptible="true"), FAIL_ONCE_ENV: "screen"}
    log = workdir / "first-controller.log"
    with log.open("w") as out:
        first = subprocess.Popen(slurm_command(cluster, *SMALL_CHUNKS, timeout=900), cwd=workdir, env=env,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
    log = workdir / "second-controller.log"
    with log.open("w") as out:
        second = subprocess.Popen(slurm_command(cluster, *SMALL_CHUNKS, timeout=1500), cwd=workdir, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        interrupted = interrupt_respond_jobs(cluster, second, log, workdir)
        second.wait(timeout=1500)  # the command's own `timeout -s KILL` ends it by then
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
    output = log.read_text()
    assert second.returncode == 0, f"second controller: exit {second.returncode}\n{output[-8000:]}\n{cluster.logs()}"
    return SimpleNamespace(workdir=workdir, before=before, unfinished=unfinished, output=output,
                           interrupted=interrupted)


def test_the_cluster_gives_a_job_every_gpu_it_asks_for(slurm_cluster):
    """The harness's fake GPUs: a job asking for all of a node's (whole job or per node) sees them all."""
    for ask in (f"--gpus={GPUS}", f"--gres=gpu:{GPUS}"):
        result = subprocess.run(["srun", ask, "-t", "1", "printenv", "CUDA_VISIBLE_DEVICES"], env=slurm_cluster.env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr + slurm_cluster.logs()
        assert result.stdout.strip() == ",".join(map(str, range(GPUS))), (ask, result.stdout)


def test_a_second_run_on_slurm_gives_the_local_release_and_evaluation(slurm_synthesis, demo_run):
    """Byte for byte: the release, its card and funnel, and the evaluation's table (the same SFT on it,
    the same answers), though chunked, interrupted and resumed otherwise. (With the second training in
    tests/test_workflow.py, a second run from the same models makes the same release and scores.)"""
    second, first = slurm_synthesis.workdir / RESULTS, demo_run / RESULTS
    assert release_bytes(second / "release") == release_bytes(first / "release")
    for name in EVALUATION:
        assert (second / "evaluation" / name).read_bytes() == (first / "evaluation" / name).read_bytes()


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


def submissions(controller_output: str, rule: str) -> set[tuple[str, ...]]:
    """(wildcards, mem_mb_per_cpu, runtime, slurm_extra) of each `rule` job the controller submitted (a
    failed job's log repeats its block, hence a set)."""
    found = set()
    for block in re.split(r"\n(?=rule |localrule )", controller_output):
        if block.startswith(f"rule {rule}:"):
            fields = [re.search(pattern, block) for pattern in
                      (r"wildcards: (.+)", r"\bmem_mb_per_cpu=(\d+)", r"\bruntime=(\d+)", r"\bslurm_extra=([^,\s]+)")]
            found.add(tuple(match.group(1) if match else None for match in fields))
    return found


def test_interrupted_gpu_jobs_resume_from_their_chunks(slurm_synthesis):
    """Each interrupted respond job handled its signal (the chunk in flight abandoned, a non-zero exit),
    and its next try (a retry, or Slurm's own run of a requeued job) resumed from the chunks on disk."""
    workdir, output = slurm_synthesis.workdir, slurm_synthesis.output
    for how, interrupted in slurm_synthesis.interrupted.items():
        job, out = interrupted.job, interrupted.out
        label = re.escape(f"respond {out.parent.name}/{out.stem}")
        log = workdir / RESULTS / "logs" / "respond" / out.parent.name / f"{out.stem}.log"
        final = log.read_text()
        assert re.search(rf"\nresuming {label}: [1-9]\d* of \d+ chunks done", final), (how, final)
        stats = json.loads(out.with_name(f"{out.stem}.stats.json").read_text())["interruptions"]
        assert stats["attempts"] == 2 and stats["resumed_chunks"] >= 1, (how, stats)
        assert not chunks_dir(out).exists()
        failed = f"SLURM-job '{job.id}' failed"
        if how == "requeue":  # the plugin waited while Slurm ran the same job again
            assert interrupted.attempts[-1]["outcome"] == f"interrupted by {INTERRUPTS[how]}", interrupted.attempts
            assert interrupted.attempts[-1]["slurm_job"] == job.id, interrupted.attempts
            assert failed not in output and f", Slurm job {job.id}," in final.splitlines()[0], final
            continue
        assert failed in output, output[-6000:]
        shown = output.split(f"Logfile {log.relative_to(workdir)}:", 1)  # the failed try's log
        assert len(shown) == 2, output[-6000:]
        first_try = shown[1].split("Logfile", 1)[0]
        assert re.search(rf"{label}: interrupted by {INTERRUPTS[how]}; [1-9]\d* chunk\(s\) written by this attempt "
                         rf"are on disk in .*, the chunk in flight is abandoned\. Exiting non-zero: the retry "
                         rf"resumes\.", first_try), (how, first_try)


def test_a_gpu_job_is_retried_with_the_same_time_limit_and_more_memory(slurm_synthesis):
    """A GPU job's retry resumes, so it asks for the time limit of its first try (and more memory:
    the retry cannot know that its first try did not run out of it); every try of it carries the
    profile's warning signal. A requeued job is no retry: the controller submitted it once."""
    per_cpu = TEST_CLUSTER_SETTINGS["gpu_mem_mb"] // TEST_CLUSTER_SETTINGS["cpus_per_gpu"]
    minutes = str(JOBS["respond"].minutes)
    asked = submissions(slurm_synthesis.output, "respond")
    assert all(re.fullmatch(r"--signal=USR1@[1-9]\d*", extra or "") for *_, extra in asked), asked
    retried = {f"gen={i.out.parent.name}, shard={i.out.stem}" for how, i in slurm_synthesis.interrupted.items()
               if how != "requeue"}
    shards = {wildcards for wildcards, *_ in asked}
    assert retried < shards, (retried, asked)
    assert {attempt[:3] for attempt in asked} == {
        *((shard, str(per_cpu), minutes) for shard in shards),
        *((shard, str(2 * per_cpu), minutes) for shard in retried)}, asked


def test_a_model_on_four_gpus_makes_a_four_gpu_job(slurm_cluster, demo_run, tmp_path):
    """The judge's model asks for 4 GPUs (models.tiny-lm.gpus; a vLLM model would by its
    tensor_parallel_size): one shard's filter job is submitted as a 4-GPU job and sees all 4 (the
    hf engine then runs on the CPU here), after the partition's preflight, which asked for 4 GPUs too
    and saw them. mtime triggers only: nothing upstream is re-made."""
    workdir = copy_run(demo_run, tmp_path / "wf")
    target = f"{RESULTS}/filter/qwen2-math/00000.parquet"
    for path in (target, target.replace(".parquet", ".stats.json")):
        (workdir / path).unlink()
    (workdir / "gpus.yaml").write_text("models:\n  tiny-lm: {gpus: 4}\n")
    result = run_on_slurm(workdir, slurm_cluster, target, "--configfile", "presets/tiny.yaml", "gpus.yaml",
                          "--rerun-triggers", "mtime", timeout=600)
    assert job_counts(result.stdout + result.stderr) == {"preflight": 1, "filter": 1, "total": 2}
    assert len(re.findall(r"resources: .*\bgpu=4\b", result.stdout + result.stderr)) == 2  # the preflight too
    preflight = json.loads((workdir / RESULTS / "preflight/debug/vllm.json").read_text())
    assert preflight["gpus_asked"] == 4 and len(preflight["facts"]["gpus"]) == 4, preflight
    header = (workdir / RESULTS / "logs/filter/qwen2-math/00000.log").read_text().splitlines()[0]
    assert re.fullmatch(r"== rule filter on \S+, Slurm job \d+, hub offline, CUDA_VISIBLE_DEVICES=0,1,2,3",
                        header), header


def test_bad_requests_fail_at_submission_while_the_rest_goes_on(slurm_cluster, demo_run, tmp_path):
    """Two CPU jobs whose re-run triggers nothing else (the keep rates are read as ancient): one
    asks for more than the cluster has, the other runs (keep-going).

    Slow: two runs on Slurm, each waiting for the one job that runs (about 1.5 minutes)."""
    workdir = copy_run(demo_run, tmp_path / "wf")
    refused, kept = f"{RESULTS}/minhash/deepseek-math/00000.parquet", f"{RESULTS}/difficulty/keep_rates.json"
    too_many = "Batch job submission failed: Requested node configuration is not available"  # GPUS + 1 GPUs
    for resource, message in ((f"gpu={GPUS + 1}", too_many),
                              ("slurm_partition=nope", "invalid partition specified: nope")):
        for path in (refused, kept):
            (workdir / path).unlink(missing_ok=True)
        result = run_on_slurm(workdir, slurm_cluster, refused, kept, "--set-resources", f"screen:{resource}",
                              check=False, timeout=300)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-4000:]
        assert "Error in rule screen" in output and message in output, output[-4000:]
        assert (workdir / kept).is_file() and not (workdir / refused).exists(), output[-4000:]


def submitted_rules(cluster: SlurmCluster, since: str) -> list[str]:
    """The rule of every job submitted since `since` (sacct's start format), from the accounting records:
    the Snakemake plugin's --comment names the rule."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-S", since, "--format=JobIDRaw,Comment%200"], env=cluster.env,
                         capture_output=True, text=True, check=True).stdout
    return [re.sub(r"^rule_(\w+?)(_wildcards_.*)?$", r"\1", line.split("|", 1)[1]) for line in out.splitlines()]


def test_an_old_driver_stops_the_run_in_the_preflight(slurm_cluster, demo_run, tmp_path):
    """The nodes report driver 550.54.15 (the stand-in nvidia-smi): `snakemake --profile slurm` fails within
    the preflight of the engine jobs' partition, whose message names the node, the driver, the minimum
    the environment's torch needs and the route; Slurm's accounting shows no job but the preflight."""
    workdir = copy_run(demo_run, tmp_path / "wf")
    for path in (f"{RESULTS}/filter/qwen2-math/00000.parquet", f"{RESULTS}/filter/qwen2-math/00000.stats.json"):
        (workdir / path).unlink()
    gpus = tmp_path / "gpus.json"
    gpus.write_text(json.dumps({"driver": "550.54.15"}))
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = run_on_slurm(workdir, slurm_cluster, env={**profile_env(), "SCALEQUEST_FAKE_GPUS": str(gpus)},
                          check=False, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "Error in rule preflight" in output, output[-6000:]
    problem = re.search(r"- node (\S+): NVIDIA driver 550\.54\.15 is older than 580\.65\.06, which torch \S+ \(its "
                        r"PyPI wheel: CUDA 13\.0\) needs: install the CUDA 12 environment instead \(pip install -r "
                        r"envs/gpu-requirements-cu12\.txt", output)
    assert problem and problem[1] in slurm_cluster.node_names, output[-6000:]
    assert set(submitted_rules(slurm_cluster, since)) == {"preflight"}, submitted_rules(slurm_cluster, since)
    assert json.loads((workdir / RESULTS / "preflight/debug/vllm.failed.json").read_text())["node"] == problem[1]
    assert not (workdir / RESULTS / "preflight/debug/vllm.json").exists()


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
    # profiles/default, the workflow profile, checks the command line's config files (scalequest/command_line.py)
    for args, used in ((["--profile", "slurm"], "Using profiles slurm and workflow specific profile profiles/default"),
                       (["--workflow-profile", "slurm"], "Using workflow specific profile profiles/slurm for")):
        if args[0] == "--workflow-profile":
            link.unlink()  # a checkout without the link
            env["SCALEQUEST_SLURM_GPU_MODEL"] = "a100"  # and a GPU type: the preflight asks for it too
        result = subprocess.run([sys.executable, "-m", "snakemake", *args, "-n"], cwd=workdir, env=env, text=True,
                                capture_output=True, timeout=300)
        assert result.returncode == 0, result.stderr[-4000:]
        assert used in result.stderr, result.stderr[-4000:]
        counts = job_counts(result.stdout)
        config = full_config()
        assert counts["generate"] == shards_per_stage(config) and counts["qft"] == len(config["generators"])
        assert "slurm_partition=" in result.stdout  # the profile's default resources reached the plan
        # One preflight per GPU environment on the profile's partition, listed before any GPU job.
        assert counts["preflight"] == 2 and {"gpu/vllm.json", "gpu/train.json"} == set(
            re.findall(r"output: results/preflight/(\S+)", result.stdout)), result.stdout[-4000:]
        preflight_asks = re.findall(r"rule preflight:(?:\n {4}.*)*?\n {4}resources: (.*)", result.stdout)
        typed = "SCALEQUEST_SLURM_GPU_MODEL" in env
        assert len(preflight_asks) == 2 and all(("gpu_model=a100" in asked) == typed for asked in preflight_asks)
        blocks = re.findall(r"^(?:local)?rule (\w+):", result.stdout, re.MULTILINE)
        gpu_rules = set(rules_of(ENGINE)) | set(rules_of(TRAINING))
        assert blocks.index("preflight") < min(i for i, rule in enumerate(blocks) if rule in gpu_rules), blocks
