"""Every stage of the workflow, declared once: what it writes, its record schema, what its sidecars
count for the funnel, the job that writes it (rule and resource family), and its row in the cost
plan. The rule files, the funnel, the plan, the calibration, the release and the Slurm profile read
it; the Snakefile refuses a rule that is not declared here (see CONTRIBUTING.md)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

# Resource families. An engine job loads models on GPUs (its GPUs: the models', scalequest/gpu_jobs.py),
# a training job takes whole GPU nodes, a CPU job a few cores; a local job runs on the submitting node.
ENGINE, TRAINING, CPU, LOCAL = "engine", "training", "cpu", "local"
GPU_FAMILIES = (ENGINE, TRAINING)
# The environments that hold a GPU stack: a rule running in one of them must be of a GPU family.
GPU_ENVS = ("vllm.yaml", "train.yaml")
# Plan throughput keys (`plan.<key>.<stage>` in the config): per job on its model's GPUs, or per GPU.
PER_JOB, PER_GPU = "samples_per_job_hour", "samples_per_gpu_hour"

ModelKeys = Callable[[Mapping[str, Any], Optional[str]], list]


@dataclass(frozen=True)
class Job:
    """A rule and the resources its jobs get."""

    rule: str
    family: str
    minutes: int | None = None  # a GPU job's first-attempt time limit (engines: a 10,000-question shard of a
    #                              7B model on one A100/H100, with room)
    models: ModelKeys | None = None  # the model keys one job loads (a generator's job when `gen` is given);
    #                                  training: the base models it trains


@dataclass(frozen=True)
class Plan:
    """A stage's row in the cost plan, and how the calibration measures its throughput."""

    throughput: str  # PER_JOB or PER_GPU
    unit: str | None = None  # the funnel unit whose `in` counts the stage's samples: calibrated from the sidecars
    tokens: bool = False  # its sidecars count generated tokens (plan.mean_tokens)


@dataclass(frozen=True)
class Stage:
    """One stage: results/<name>/... files written by `job`'s rule (or by the job of stage `with_job`)."""

    name: str
    job: Job | None = None
    with_job: str | None = None  # the stage whose job writes this one too (a few seconds of work: no job of its own)
    schema: str | None = None  # its record layout: "module:NAME", a StageSchema in the scalequest package
    units: tuple[str, ...] = ()  # what its sidecars count ("questions", "responses")
    chain: bool = False  # a per-shard stage of the funnel: its `in` is the previous chain stage's `kept`
    difficulty: bool = False  # only with difficulty sampling on
    plan: Plan | None = None
    keep_rate: str | None = None  # the unit whose kept/in is the plan's keep rate for this stage
    also: tuple[Job, ...] = ()  # other rules that write this stage (a file generator's import)
    chunks: str | None = None  # a GPU stage's job checkpoints its shard in chunks (scalequest/chunks.py): what
    #                            a chunk's results count ("questions", "responses")


def _generator_model(config: Mapping[str, Any], gen: str | None) -> list[str]:
    """A generator's own model: trained models keep their base model's engine settings."""
    generators = config["generators"]
    names = [gen] if gen else sorted(generators)
    return [generators[name]["model"] for name in names if "model" in generators[name]]


def _solvability_judge(config: Mapping[str, Any], gen: str | None) -> list[str]:
    solvability = config["filter"]["solvability"]
    return [solvability["model"]] if solvability["enabled"] else []


def _optimizer(config: Mapping[str, Any], gen: str | None) -> list[str]:
    """The QPO optimizer when it is a local model, and the judge of its rewrites when that is on."""
    optimizer = config["qpo"]["optimizer"]["model"]
    local = [optimizer] if config["models"][optimizer]["engine"] != "openai" else []
    return local + ([config["filter"]["solvability"]["model"]] if config["qpo"]["judge"] else [])


def _contamination_models(config: Mapping[str, Any], gen: str | None) -> list[str]:
    """The model screens' local models: the embedding model, and the judge unless it is an API model."""
    from .config import contamination_embedder, contamination_judge  # config imports this module (gpu_jobs)

    judge = contamination_judge(config)
    local_judge = [judge] if judge and config["models"][judge]["engine"] != "openai" else []
    return [key for key in [contamination_embedder(config)] if key] + local_judge


def _evaluated_models(config: Mapping[str, Any], gen: str | None) -> list[str]:
    """The evaluation's models (SFT'd base models keep their engine settings); one job's is the first
    part of its label `<model>/<dataset>/<benchmark>`."""
    from .config import reference_models  # config imports this module (gpu_jobs)

    if gen:
        return [gen.split("/")[0]]
    return sorted({*config["evaluation"]["base_models"], *reference_models(config)})


def _model_at(*keys: str) -> ModelKeys:
    """The model key, or list of keys, that is the config value at `keys`."""
    def models(config: Mapping[str, Any], gen: str | None) -> list[str]:
        value: Any = config
        for key in keys:
            value = value[key]
        return list(value) if isinstance(value, list) else [value]
    return models


STAGES: tuple[Stage, ...] = (
    # Stage 1-2: QFT and QPO of the generators that train.
    Stage("seed_questions", Job("seed_questions", CPU)),
    Stage("qft", Job("qft", TRAINING, 240, _generator_model), plan=Plan(PER_GPU)),
    Stage("qpo_sample", Job("qpo_sample", ENGINE, 60, _generator_model), schema="records:QUESTIONS",
          plan=Plan(PER_JOB), chunks="questions"),
    Stage("qpo_rewrite", Job("qpo_rewrite", ENGINE, 120, _optimizer), schema="records:PAIRS", plan=Plan(PER_JOB),
          chunks="questions"),
    Stage("qpo_train", Job("qpo_train", TRAINING, 240, _generator_model), plan=Plan(PER_GPU)),
    # The difficulty scorer: solver fail rates on the seed questions, and a regression head trained on them.
    Stage("difficulty_labels", Job("difficulty_labels", ENGINE, 120, _model_at("difficulty", "labels", "solver")),
          schema="records:LABELS", units=("questions", "responses"), difficulty=True,
          plan=Plan(PER_JOB, "responses", tokens=True), chunks="responses"),
    Stage("difficulty_train", Job("difficulty_train", TRAINING, 240, _model_at("difficulty", "scorer", "model")),
          difficulty=True, plan=Plan(PER_GPU)),
    # Stage 3-5, per (generator, shard), in data-flow order.
    Stage("generate", Job("generate", ENGINE, 60, _generator_model), schema="records:QUESTIONS", units=("questions",),
          chain=True, plan=Plan(PER_JOB, "questions", tokens=True),
          also=(Job("import_questions", CPU),), chunks="questions"),
    Stage("filter", Job("filter", ENGINE, 120, _solvability_judge), schema="records:SOLVABLE", units=("questions",),
          chain=True, plan=Plan(PER_JOB, "questions", tokens=True), keep_rate="questions", chunks="questions"),
    Stage("difficulty", Job("difficulty", ENGINE, 30, _model_at("difficulty", "scorer", "model")),
          schema="records:SCORED", units=("questions",), chain=True, difficulty=True, plan=Plan(PER_JOB, "questions"),
          chunks="questions"),
    Stage("keep_rates", Job("difficulty_gather", CPU), difficulty=True),
    Stage("sample", with_job="respond", schema="records:SAMPLED", units=("questions",), chain=True, difficulty=True,
          keep_rate="questions"),
    Stage("respond", Job("respond", ENGINE, 180, _model_at("respond", "model")), schema="records:RESPONSES",
          units=("questions", "responses"), chain=True,
          plan=Plan(PER_JOB, "responses", tokens=True), keep_rate="responses", chunks="responses"),
    Stage("reward", Job("reward", ENGINE, 120, _model_at("reward", "model")), schema="records:REWARDED",
          units=("questions", "responses"), chain=True, plan=Plan(PER_JOB, "responses"), chunks="responses"),
    Stage("best", with_job="reward", schema="records:BEST", units=("questions",), chain=True),
    # Stage 6: the release's checks, then the release.
    Stage("minhash", Job("screen", CPU)),  # one column per LSH band: stages/dedup.py minhash_schema
    Stage("matches", with_job="minhash", schema="stages.decontaminate:MATCHES"),
    Stage("model_matches", Job("model_screen", ENGINE, 60, _contamination_models),  # only with a model screen on
          schema="stages.decontaminate:MODEL_MATCHES", plan=Plan(PER_JOB, "questions", tokens=True),
          chunks="questions"),
    Stage("minhash_list", Job("minhash_list", LOCAL)),  # one input for the band jobs, not every shard
    Stage("bands", Job("lsh_band", CPU)),
    Stage("duplicates", Job("dedup", CPU)),
    Stage("benchmarks", Job("benchmark_index", LOCAL)),
    Stage("release", Job("release", CPU), schema="records:RELEASE"),
    # What the data is worth: SFT of base models on the release (or other datasets), scored on the benchmarks.
    Stage("sft_data", Job("sft_data", CPU)),  # evaluation/datasets: each dataset's pairs as JSONL
    # evaluation/sft/<model>/<dataset>/model
    Stage("sft", Job("sft", TRAINING, 2880, _model_at("evaluation", "base_models")), plan=Plan(PER_GPU)),
    Stage("eval_items", Job("eval_items", CPU)),  # evaluation/benchmarks: items with gold answers
    Stage("eval_answers", Job("eval_answers", ENGINE, 120, _evaluated_models), schema="evaluation.records:EVAL_ANSWERS",
          chunks="questions"),  # evaluation/answers/<model>/<dataset>/<benchmark>/<shard>
    Stage("evaluation", Job("evaluate", LOCAL)),  # evaluation/scores.json and table.md
)
# Rules that write no stage: the target, model and benchmark builds, fetching, checks, plan and report.
SUPPORT_RULES = {"all": LOCAL, "prefetch": LOCAL, "preflight": ENGINE, "check_optimizer": LOCAL,
                 "build_tiny_lm": CPU,
                 "build_tiny_reward": CPU, "build_tiny_benchmark": CPU, "plan": LOCAL, "calibrate": LOCAL,
                 "build_llama_twin": CPU, "build_mistral_twin": CPU, "build_internlm2_reward_twin": CPU,
                 "report_files": LOCAL, "card": LOCAL, "report_evaluation": LOCAL}

BY_NAME = {stage.name: stage for stage in STAGES}
JOBS = {job.rule: job for s in STAGES for job in ((s.job,) if s.job else ()) + s.also}  # every rule writing a stage


def record_schema(name: str) -> Any:
    """A stage's StageSchema (imported on demand: the workflow's parse does not load pyarrow)."""
    module, attr = stage(name).schema.split(":")
    return getattr(importlib.import_module(f"scalequest.{module}"), attr)


def stage(name: str) -> Stage:
    """The stage of that name; a KeyError names the declared ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no stage '{name}' in scalequest/registry.py (declared: {', '.join(BY_NAME)})") from None


def chunked_stages() -> list[Stage]:
    """The stages whose jobs checkpoint in chunks: every stage an engine job writes."""
    return [s for s in STAGES if s.chunks]


def job_of(name: str) -> Job:
    """The job that writes a stage (its own, or the one it shares)."""
    declared = stage(name)
    return declared.job if declared.job else job_of(declared.with_job)


def rules_of(family: str) -> list[str]:
    """The rules of a resource family, in declaration order."""
    return [rule for rule, job in JOBS.items() if job.family == family]


def rule_family(rule: str) -> str | None:
    """A rule's resource family, None when the registry does not declare it."""
    job = JOBS.get(rule)
    return job.family if job else SUPPORT_RULES.get(rule)


def chain_stages(difficulty: bool) -> tuple[str, ...]:
    """The per-shard stages of a run, in data-flow order (the difficulty ones only when it is on)."""
    return tuple(s.name for s in STAGES if s.chain and (difficulty or not s.difficulty))


def planned_stages(throughput: str | None = None) -> list[Stage]:
    """The stages with a row in the cost plan (of one throughput key when given)."""
    return [s for s in STAGES if s.plan and throughput in (None, s.plan.throughput)]


def undeclared_rules(envs: Mapping[str, str | None], local: set[str]) -> list[str]:
    """What is wrong with the workflow's rules ({rule: its conda env file}; `local`: its local rules)
    against this registry, one line per rule: not declared, or run in a GPU environment without a
    GPU family (its jobs would get no GPU)."""
    problems = []
    for rule, env in sorted(envs.items()):
        family = rule_family(rule)
        if family is None:
            problems.append(f"rule {rule} is not declared in scalequest/registry.py (STAGES or SUPPORT_RULES)")
        elif env and env.rsplit("/", 1)[-1] in GPU_ENVS and family not in GPU_FAMILIES and rule not in local:
            problems.append(f"rule {rule} runs in the GPU environment {env.rsplit('/', 1)[-1]} but is declared "
                            f"{family} in scalequest/registry.py: its jobs would get no GPU")
    return problems
