"""The run's cost plan, from the config alone: per stage the jobs, samples, tokens, GPU-hours and
dollars, beside the paper's Table 3. No model, GPU or network is needed."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .atomic import write_json_atomic, write_text_atomic
from .config import contamination_embedder, contamination_judge, evaluation_rows, sft_hyper
from .gpu_jobs import job_gpus, model_gpus
from .registry import PER_GPU, PER_JOB, planned_stages
from .shards import shard_count

# The paper's Table 3 (GPU-hours and dollars on the authors' GPUs): QFT of two models on 15K seed
# questions each, QPO on 10K samples from each, then synthesis of 2M questions.
PAPER_TABLE = {
    "qft": {"samples": 30_000, "gpu_hours": 3.9, "usd": 5.1},
    "qpo_sample": {"samples": 20_000, "gpu_hours": 0.4, "usd": 0.5},
    "qpo_rewrite": {"samples": 20_000, "gpu_hours": 0.0, "usd": 6.2},  # API requests
    "qpo_train": {"samples": 20_000, "gpu_hours": 6.6, "usd": 8.5},
    "generate": {"samples": 2_000_000, "gpu_hours": 38.4, "usd": 49.5},
    "filter": {"samples": 2_000_000, "gpu_hours": 110.6, "usd": 142.7},  # solvability and difficulty
    "respond": {"samples": 5_000_000, "gpu_hours": 251.0, "usd": 323.8},
    "reward": {"samples": 5_000_000, "gpu_hours": 112.0, "usd": 144.5},
}
# Stages the paper's table has no row of their own for: the difficulty labels and the scorer's
# training are not in its code, and its "solvability & difficulty check" row is our filter row.
PAPER_NOTES = {"difficulty_labels": "not in the paper's table", "difficulty_train": "not in the paper's table",
               "difficulty": "in the paper's filter row", "model_matches": "not in the paper's table",
               "sft": "evaluation: not in the paper's table", "eval_answers": "evaluation: not in the paper's table"}
SYNTHESIS_STAGES = tuple(stage.name for stage in planned_stages(PER_JOB) if stage.chain)  # the per-shard rows


def _row(stage: str, jobs: int, samples: int, gpus: int, gpu_hours: float, job_hours: float,
         plan_config: Mapping[str, Any], usd: float | None = None, lost_hours: float | None = None,
         like: str | None = None) -> dict[str, Any]:
    """One row of the plan; the dollars are the GPU-hours' unless given (API requests). `lost_hours`: a
    chunked job's expected wall time lost per interruption, half a chunk's. `like`: the stage whose mean
    tokens it has (default its own)."""
    usd = gpu_hours * plan_config["gpu_hour_usd"] if usd is None else usd
    return {"stage": stage, "jobs": jobs, "samples": samples,
            "tokens": samples * plan_config["mean_tokens"][like or stage],
            "gpu_hours": round(gpu_hours, 1), "usd": round(usd, 1), "gpus_per_job": gpus,
            "hours_per_job": round(job_hours, 2),
            "hours_lost_per_interruption": None if lost_hours is None else round(lost_hours, 2),
            "paper": PAPER_TABLE.get(stage), "paper_note": PAPER_NOTES.get(stage)}


def _training_stage(stage: str, jobs: int, samples: int, plan_config: Mapping[str, Any],
                    nodes: int = 1) -> dict[str, Any]:
    """A training stage: data parallel over the job's GPUs (`nodes` x gpus_per_training_job), at a
    throughput per GPU."""
    gpus = plan_config["gpus_per_training_job"] * nodes
    gpu_hours = samples / plan_config[PER_GPU][stage]
    return _row(stage, jobs, samples, gpus, gpu_hours, gpu_hours / (jobs * gpus), plan_config)


def _engine_stage(stage: str, jobs: int, parts: list[tuple[int, int]], config: Mapping[str, Any], *,
                  api: bool = False, per_prompt: int = 1, like: str | None = None) -> dict[str, Any]:
    """An engine stage at a throughput per job, from (samples, GPUs per job) of each part with its own
    models (a generator's); an API optimizer costs dollars per request instead of GPUs. A chunk is
    `chunk_size` prompts of `per_prompt` samples each (respond: n responses). `like`: the stage whose
    throughput and mean tokens it has (default its own)."""
    plan_config = config["plan"]
    samples = sum(part for part, _ in parts)
    if api:
        return _row(stage, jobs, samples, 0, 0.0, 0.0, plan_config, usd=samples * plan_config["api_usd_per_request"])
    throughput = plan_config[PER_JOB][like or stage]
    gpu_hours = sum(part * gpus for part, gpus in parts) / throughput
    job_samples = samples / jobs if jobs else 0
    return _row(stage, jobs, samples, max((gpus for _, gpus in parts), default=0), gpu_hours,
                job_samples / throughput, plan_config,
                lost_hours=0.5 * min(config["chunk_size"] * per_prompt, job_samples) / throughput, like=like)


def _training_stages(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """QFT and QPO rows for the generators that train (none when every generator has training: none)."""
    plan_config = config["plan"]
    trained = {name: g for name, g in config["generators"].items() if g.get("training") in ("qft", "qpo")}
    optimized = {name: g for name, g in trained.items() if g["training"] == "qpo"}
    rows = []
    if trained:
        seeds = config["seeds"]["max_questions"] * config["qft"]["hyper"]["epochs"]
        rows.append(_training_stage("qft", len(trained), round(seeds * len(trained)), plan_config))
    if optimized:
        samples = config["qpo"]["samples"] * len(optimized)
        requests = samples * len(config["qpo"]["optimizer"]["prompts"])
        api = config["models"][config["qpo"]["optimizer"]["model"]]["engine"] == "openai"
        pairs = round(samples * plan_config["keep_rates"]["qpo_rewrite"] * config["qpo"]["hyper"]["epochs"])
        rows += [_engine_stage("qpo_sample", len(optimized),
                               [(config["qpo"]["samples"], job_gpus(config, "qpo_sample", name))
                                for name in sorted(optimized)],
                               config),
                 _engine_stage("qpo_rewrite", len(optimized), [(requests, job_gpus(config, "qpo_rewrite"))],
                               config, api=api),
                 _training_stage("qpo_train", len(optimized), pairs, plan_config)]
    return rows


def _difficulty_training_stages(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The scorer's labels (k solver answers per seed question) and its training."""
    difficulty, plan_config = config["difficulty"], config["plan"]
    seeds = config["seeds"]["max_questions"]
    label_jobs = shard_count(seeds, difficulty["labels"]["shard_size"])
    labels = seeds * difficulty["labels"]["k"]
    return [_engine_stage("difficulty_labels", label_jobs, [(labels, job_gpus(config, "difficulty_labels"))],
                          config, per_prompt=difficulty["labels"]["k"]),
            _training_stage("difficulty_train", 1, round(seeds * difficulty["scorer"]["hyper"]["epochs"]), plan_config)]


def _evaluation_stages(config: Mapping[str, Any], pairs: int) -> list[dict[str, Any]]:
    """SFT of each base model on each dataset (the release's expected `pairs`, another's `pairs` key),
    and the evaluation's answers: every row's items x samples, at respond's throughput and tokens."""
    evaluation, plan_config = config["evaluation"], config["plan"]
    sizes = [pairs if entry.get("release") else entry.get("pairs", pairs) for entry in evaluation["datasets"].values()]
    trained = sum(sft_hyper(config, key)["epochs"] * sum(sizes) for key in evaluation["base_models"])
    rows = []
    if trained:
        rows.append(_training_stage("sft", len(evaluation["base_models"]) * len(sizes), round(trained), plan_config,
                                    evaluation["sft"]["nodes"]))
    benchmarks = evaluation["benchmarks"]
    items = sum(plan_config["benchmark_items"].get(name, 1000) for name in benchmarks) * evaluation["samples"]
    jobs = sum(evaluation["shards"].get(name, 1) for name in benchmarks)
    evaluated = evaluation_rows(config)
    if items and evaluated:
        rows.append(_engine_stage("eval_answers", jobs * len(evaluated),
                                  [(items, model_gpus(config["models"][row["label"]])) for row in evaluated],
                                  config, per_prompt=evaluation["samples"], like="respond"))
    return rows


def build_plan(config: Mapping[str, Any]) -> dict[str, Any]:
    """Per-stage estimates for the validated `config`; sizes after a filter use its expected keep rate."""
    keep = config["plan"]["keep_rates"]
    difficulty_on = config["difficulty"]["enabled"]
    shard_size = config["generate"]["shard_size"]
    model_generators = [g for g in config["generators"].values() if "model" in g]
    questions = sum(g["questions"] for g in config["generators"].values())
    shards = sum(shard_count(g["questions"], shard_size) for g in config["generators"].values())
    solvable = round(questions * keep["filter"])
    answered = round(solvable * keep["sample"]) if difficulty_on else solvable
    samples = {
        "generate": sum(g["questions"] for g in model_generators),
        "filter": questions if config["filter"]["solvability"]["enabled"] else 0,
        "difficulty": solvable,
        "respond": answered * config["respond"]["n"],
        "reward": round(answered * config["respond"]["n"] * keep["respond"]),
    }
    generate_jobs = sum(shard_count(g["questions"], shard_size) for g in model_generators)
    synthesis = [stage for stage in SYNTHESIS_STAGES if difficulty_on or stage != "difficulty"]
    parts = {stage: [(samples[stage], job_gpus(config, stage))] for stage in synthesis}
    parts["generate"] = [(g["questions"], job_gpus(config, "generate", name))  # each generator's own model
                         for name, g in sorted(config["generators"].items()) if "model" in g]
    stages = _training_stages(config) + (_difficulty_training_stages(config) if difficulty_on else []) + [
        _engine_stage(stage, generate_jobs if stage == "generate" else shards, parts[stage], config,
                      per_prompt=config["respond"]["n"] if stage == "respond" else 1)
        for stage in synthesis
    ]
    if contamination_embedder(config) or contamination_judge(config):  # the screens with models: every best pair
        stages.append(_engine_stage("model_matches", shards, [(answered, job_gpus(config, "model_screen"))], config))
    evaluation = _evaluation_stages(config, answered)
    return {
        "questions": questions,
        "expected_pairs": answered,
        "stages": stages,
        "total": {**_sum(stages), "paper_gpu_hours": round(sum(p["gpu_hours"] for p in PAPER_TABLE.values()), 1),
                  "paper_usd": round(sum(p["usd"] for p in PAPER_TABLE.values()), 1)},
        "evaluation": evaluation,  # apart: the paper's Table 3 is the synthesis alone
        "total_with_evaluation": _sum(stages + evaluation),
    }


def _sum(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"jobs": sum(s["jobs"] for s in rows), "gpu_hours": round(sum(s["gpu_hours"] for s in rows), 1),
            "usd": round(sum(s["usd"] for s in rows), 1)}


def _stage_line(s: Mapping[str, Any]) -> str:
    paper = f"{s['paper']['gpu_hours']} | {s['paper']['usd']}" if s["paper"] else f"– ({s['paper_note']}) | –"
    return (f"| {s['stage']} | {s['jobs']:,} | {s['samples']:,} | {s['tokens']:,} | {s['gpu_hours']:,} "
            f"| {s['usd']:,} | {s['hours_per_job']} ({s['gpus_per_job']}) "
            f"| {'–' if s['hours_lost_per_interruption'] is None else s['hours_lost_per_interruption']} | {paper} |")


def render_plan(plan: Mapping[str, Any]) -> str:
    """The plan as a Markdown table."""
    lines = [
        f"Plan: {plan['questions']:,} questions -> about {plan['expected_pairs']:,} pairs (before dedup)",
        "",
        "| stage | jobs | samples | tokens | GPU-h | $ | h/job (GPUs) | h lost/stop | paper GPU-h | paper $ |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    t = plan["total"]
    lines += [_stage_line(s) for s in plan["stages"]]
    lines.append(f"| total | {t['jobs']:,} | | | {t['gpu_hours']:,} | {t['usd']:,} | | | {t['paper_gpu_hours']} "
                 f"| {t['paper_usd']} |")
    if plan["evaluation"]:
        t = plan["total_with_evaluation"]
        lines += [_stage_line(s) for s in plan["evaluation"]]
        lines.append(f"| total with evaluation | {t['jobs']:,} | | | {t['gpu_hours']:,} | {t['usd']:,} | | | | |")
    lines += ["", "Throughput, keep rates, mean tokens, GPUs per job and prices come from the config's `plan` "
              "section (defaults: the paper's Table 3; `snakemake calibrate` measures them from a run); a job's GPUs "
              "come from its model (tensor_parallel_size), and at the same throughput per job a job of N GPUs costs "
              "N GPU-hours an hour. h/job is one job's wall time on its GPUs, model loading not included: keep the "
              "profile's runtime above it. h lost/stop is what one interruption of a GPU job (preemption, time "
              "limit, node failure) is expected to cost it: half a chunk of `chunk_size` prompts, the chunk in "
              "flight (plus the model's load); choose `chunk_size` so that a chunk takes a few minutes, and at least "
              "4x the engine's concurrent sequences. "
              "QFT samples are the seed-question cap times epochs; qpo_rewrite costs API dollars when the "
              "optimizer is an `openai` model. The evaluation: sft trains each base model on each dataset's pairs "
              "(the release's expected pairs) times epochs, at `samples_per_gpu_hour.sft`; eval_answers answers "
              "every evaluated model's benchmark items (`benchmark_items`) at respond's throughput and tokens."]
    return "\n".join(lines) + "\n"


def write_plan(plan: Mapping[str, Any], table_path: str | Path, json_path: str | Path) -> str:
    """Rule plan's job: the plan as JSON and as a Markdown table; returns the table."""
    table = render_plan(plan)
    write_json_atomic(json_path, plan)
    write_text_atomic(table_path, table)
    return table
