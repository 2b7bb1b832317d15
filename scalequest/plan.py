"""The run's cost plan, from the config alone: per stage the jobs, samples, tokens, GPU-hours and
dollars, beside the paper's Table 3. No model, GPU or network is needed."""
from __future__ import annotations

from typing import Any, Mapping

from .shards import shard_count

# The paper's Table 3 (GPU-hours and dollars on the authors' GPUs) for the stages planned here.
PAPER_TABLE = {
    "generate": {"samples": 2_000_000, "gpu_hours": 38.4, "usd": 49.5},
    "filter": {"samples": 2_000_000, "gpu_hours": 110.6, "usd": 142.7},  # solvability and difficulty
    "respond": {"samples": 5_000_000, "gpu_hours": 251.0, "usd": 323.8},
    "reward": {"samples": 5_000_000, "gpu_hours": 112.0, "usd": 144.5},
}
GPU_STAGES = ("generate", "filter", "respond", "reward")


def build_plan(config: Mapping[str, Any]) -> dict[str, Any]:
    """Per-stage estimates for the validated `config`; sizes after a filter use its expected keep rate."""
    plan_config = config["plan"]
    shard_size = config["generate"]["shard_size"]
    model_generators = [g for g in config["generators"].values() if "model" in g]
    questions = sum(g["questions"] for g in config["generators"].values())
    shards = sum(shard_count(g["questions"], shard_size) for g in config["generators"].values())
    solvable = round(questions * plan_config["keep_rates"]["filter"])
    samples = {
        "generate": sum(g["questions"] for g in model_generators),
        "filter": questions if config["filter"]["solvability"]["enabled"] else 0,
        "respond": solvable * config["respond"]["n"],
        "reward": round(solvable * config["respond"]["n"] * plan_config["keep_rates"]["respond"]),
    }
    stages = []
    for stage in GPU_STAGES:
        rate = plan_config["samples_per_gpu_hour"][stage]
        gpu_hours = samples[stage] / rate
        stages.append({
            "stage": stage,
            "jobs": sum(shard_count(g["questions"], shard_size) for g in model_generators) if stage == "generate" else shards,
            "samples": samples[stage],
            "tokens": samples[stage] * plan_config["mean_tokens"][stage],
            "gpu_hours": round(gpu_hours, 1),
            "usd": round(gpu_hours * plan_config["gpu_hour_usd"], 1),
            "paper": PAPER_TABLE[stage],
        })
    total_hours = sum(s["gpu_hours"] for s in stages)
    return {
        "questions": questions,
        "expected_pairs": solvable,
        "stages": stages,
        "total": {"jobs": sum(s["jobs"] for s in stages), "gpu_hours": round(total_hours, 1),
                  "usd": round(total_hours * plan_config["gpu_hour_usd"], 1),
                  "paper_gpu_hours": round(sum(p["gpu_hours"] for p in PAPER_TABLE.values()), 1),
                  "paper_usd": round(sum(p["usd"] for p in PAPER_TABLE.values()), 1)},
    }


def render_plan(plan: Mapping[str, Any]) -> str:
    """The plan as a Markdown table."""
    lines = [
        f"Plan: {plan['questions']:,} questions -> about {plan['expected_pairs']:,} pairs (before dedup)",
        "",
        "| stage | GPU jobs | samples | tokens | GPU-h | $ | paper GPU-h | paper $ |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in plan["stages"]:
        lines.append(f"| {s['stage']} | {s['jobs']:,} | {s['samples']:,} | {s['tokens']:,} | {s['gpu_hours']:,} "
                     f"| {s['usd']:,} | {s['paper']['gpu_hours']} | {s['paper']['usd']} |")
    t = plan["total"]
    lines.append(f"| total | {t['jobs']:,} | | | {t['gpu_hours']:,} | {t['usd']:,} | {t['paper_gpu_hours']} "
                 f"| {t['paper_usd']} |")
    lines += ["", "Throughput, keep rates and mean tokens come from the config's `plan` section (defaults: the "
              "paper's Table 3, which leaves out QFT/QPO training)."]
    return "\n".join(lines) + "\n"
