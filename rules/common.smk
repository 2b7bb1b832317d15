# Shared naming for every stage's rules: validated config, shard ids, paths, seeds, model inputs,
# and each stage's input and param helpers (below, by stage: Snakemake's lint wants the functions
# apart from the rules). Naming only; the logic lives in the scalequest package.
import os
import re

from scalequest.config import ConfigError, validate_config
from scalequest.funnel import shard_stages
from scalequest.gpu_jobs import job_gpus
from scalequest.prefetch import OFFLINE_ENV, hub_items, is_hub_model
from scalequest.shards import SHARD_PATTERN, derive_seed, shard_ids, shard_slice

try:
    _validated = validate_config(config)
except ConfigError as error:
    raise WorkflowError(f"Configuration error: {error}") from None
config.clear()
config.update(_validated)

RESULTS = config["results"]
GENERATORS = sorted(config["generators"])
DIFFICULTY_ON = config["difficulty"]["enabled"]
STAGES = shard_stages(DIFFICULTY_ON)  # the per-shard stages of this run, in data-flow order

# Jobs import the package from this checkout, also inside per-rule conda envs. (Set here, not
# required from the user, so it is no `envvars:` entry.)
CHECKOUT = os.path.dirname(workflow.current_basedir)  # rules/.. (the main Snakefile may be presets/tiny.smk)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [CHECKOUT, os.environ.get("PYTHONPATH")])))
# Jobs read models and datasets from the cache the prefetch rule filled (compute nodes are often
# offline); a variable set in the environment wins.
for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)

HUB_ITEMS = hub_items(config)
PREFETCHED = f"{RESULTS}/prefetch.json" if HUB_ITEMS["models"] or HUB_ITEMS["datasets"] else None


def prefetched():
    """The prefetch's output as an input: whatever reads the hub runs after it. `ancient`, so that
    fetching a newly configured model does not re-run what used the others."""
    return [ancient(PREFETCHED)] if PREFETCHED else []


wildcard_constraints:
    gen="|".join(re.escape(name) for name in GENERATORS),
    shard=SHARD_PATTERN,


def shards_of(gen):
    return shard_ids(config["generators"][gen]["questions"], config["generate"]["shard_size"])


def shard_file(stage, gen="{gen}", shard="{shard}"):
    return f"{RESULTS}/{stage}/{gen}/{shard}.parquet"


def stats_file(stage, gen="{gen}", shard="{shard}"):
    return f"{RESULTS}/{stage}/{gen}/{shard}.stats.json"


def log_file(stage):
    return f"{RESULTS}/logs/{stage}/{{gen}}/{{shard}}.log"


def all_shard_files(stage):
    return [shard_file(stage, gen, shard) for gen in GENERATORS for shard in shards_of(gen)]


def all_stats_files(stage):
    return [stats_file(stage, gen, shard) for gen in GENERATORS for shard in shards_of(gen)]


def engine_resources(rule):
    """A job's GPUs, from the settings of the models it loads (scalequest/gpu_jobs.py): the Slurm
    request and the plan follow a model's tensor_parallel_size."""
    return {"gpu": lambda wildcards: job_gpus(config, rule, getattr(wildcards, "gen", None))}


def loads_no_model(rule):
    """Whether no job of an engine rule loads a model in this run (a filter without the solvability
    judge, QPO rewrites through an API): it then runs on the submitting node, which has the network."""
    return job_gpus(config, rule) == 0


def shard_seed(stage):
    return lambda wildcards: derive_seed(config["seed"], stage, wildcards.gen, wildcards.shard)


def model_params(key):
    """A model's config entry as a param: editing the entry re-runs the rules using it."""
    return {"key": key, "entry": config["models"][key]}


def model_inputs(key):
    """Models the workflow builds itself are inputs; hub models come from the prefetch's cache."""
    entry = config["models"][key]
    if entry.get("build"):
        return [entry["path"]]
    return prefetched() if is_hub_model(entry) else []


def built_model_path(build):
    return next((m["path"] for m in config["models"].values() if m.get("build") == build), None)


def trained_model_dir(kind, gen="{gen}"):
    """Where QFT or QPO saves a generator's model."""
    return f"{RESULTS}/train/{kind}/{gen}/model"


TRAINING_LABELS = {"qft": "QFT", "qpo": "QFT+QPO"}


def trained_params(base_key, path, key, what, **overrides):
    """A model the workflow trained, as a model entry: its base model's engine settings, the trained
    weights at `path`, and a label that names it independently of where `results` is (so outputs
    do not depend on it)."""
    entry = {k: v for k, v in config["models"][base_key].items() if k != "build"}
    label = f"{entry['path']} ({what}, seed {config['seed']})"
    return {"key": key, "entry": {**entry, **overrides, "path": path, "label": label}}


def trained_model_params(gen, kind):
    """A trained generator as a model entry."""
    return trained_params(config["generators"][gen]["model"], trained_model_dir(kind, gen), f"{gen}-{kind}",
                          f"{TRAINING_LABELS[kind]}, generator {gen}")


def generator_model(wildcards):
    """The model entry that writes a generator's questions: the trained model (qpo, qft), or
    the configured model itself (training: none)."""
    generator = config["generators"][wildcards.gen]
    if generator["training"] == "none":
        return model_params(generator["model"])
    return trained_model_params(wildcards.gen, generator["training"])


def generator_model_inputs(wildcards):
    generator = config["generators"][wildcards.gen]
    if generator["training"] == "none":
        return model_inputs(generator["model"])
    return [trained_model_dir(generator["training"], wildcards.gen)]


# ---- rules/seeds.smk


def local_source_files(sources):
    """Seed files on disk are inputs (editing one re-runs what uses them); hub datasets are fetched."""
    return [source["path"] for source in sources if "path" in source]


def training_launch():
    return {"nodes": config["training"]["nodes"], "processes_per_node": config["training"]["processes_per_node"]}


def training_resources():
    """A multi-node training job asks Slurm for its nodes and one launcher task per node, and runs
    its own srun (mpi); GPUs, memory and time per node come from the profile."""
    nodes = config["training"]["nodes"]
    return {"nodes": nodes, "tasks": nodes, "tasks_per_gpu": 0, "mpi": "srun"} if nodes > 1 else {}


# ---- rules/qft.smk


def base_model(wildcards):
    return config["generators"][wildcards.gen]["model"]


# ---- rules/qpo.smk


def optimizer_check(wildcards):
    """QFT of a QPO generator waits for the API optimizer's check, so that no GPU job is
    submitted while the endpoint cannot serve (no key, unreachable, model not served)."""
    qpo = config["generators"][wildcards.gen]["training"] == "qpo"
    return [OPTIMIZER_CHECK] if qpo and API_OPTIMIZER else []


# ---- rules/generate.smk


def generation_slice(wildcards):
    """The generator-wide question indices this shard owns."""
    return shard_slice(wildcards.shard, config["generators"][wildcards.gen]["questions"],
                       config["generate"]["shard_size"])


# ---- rules/difficulty.smk


def label_file(part="{part}"):
    return f"{DIFFICULTY_DIR}/labels/{part}.parquet"


def label_stats_file(part="{part}"):
    return f"{DIFFICULTY_DIR}/labels/{part}.stats.json"


def scorer_params():
    """The trained scorer as a model entry; it reads questions cut as in training."""
    return trained_params(DIFFICULTY["scorer"]["model"], SCORER_DIR, "difficulty-scorer", "difficulty scorer",
                          max_model_len=DIFFICULTY["scorer"]["hyper"]["max_length"])


# ---- rules/respond.smk


def questions_to_answer():
    """The filter's questions, or the scored questions and the keep rates to sample them with.
    The rates are `ancient`: gathering the same rates again after one shard re-ran must not re-draw
    every shard; a change of the keep rule does (params), and the release refuses shards drawn with
    other rates."""
    if DIFFICULTY_ON:
        return {"scored": shard_file("difficulty"), "keep_rates": ancient(KEEP_RATES)}
    return {"questions": shard_file("filter")}


def sampled_questions():
    return {"sampled": shard_file("sample"), "sampled_stats": stats_file("sample")} if DIFFICULTY_ON else {}


# ---- rules/dedup.smk


def band_file(band="{band}"):
    return f"{RESULTS}/dedup/bands/{band}.parquet"


# ---- rules/screen.smk


def benchmark_index_inputs():
    if not BENCHMARKS:
        return {}
    return {"benchmark_items": rules.benchmark_ngrams.output.benchmark_items, "index": rules.benchmark_ngrams.output.index}


def matches_output():
    return {"matches": shard_file("decontaminate")} if BENCHMARKS else {}


# ---- rules/release.smk


def release_inputs(wildcards):
    """The best pairs, the duplicates, the benchmark matches, and every stage's sidecars for the funnel."""
    inputs = {"best": all_shard_files("best"), "duplicates": DUPLICATES_FILE}
    if BENCHMARKS:
        inputs.update(contamination=all_shard_files("decontaminate"), benchmarks=BENCHMARK_SUMMARY)
    if DIFFICULTY_ON:
        inputs.update(keep_rates=KEEP_RATES, sampled=all_shard_files("sample"), scorer=SCORER_DIR)
    inputs.update({f"{stage}_stats": all_stats_files(stage) for stage in STAGES})
    return inputs


def release_settings():
    """What the card reports about how the data was made (no secrets live in the config)."""
    keys = ["seed", "generators", "generate", "filter", "difficulty", "respond", "reward"]
    settings = {key: config[key] for key in keys}
    settings["models"] = {key: config["models"][key]["path"] for key in sorted(config["models"])}
    settings["release"] = {key: config["release"][key] for key in ("near_dup", "decontamination")}
    return settings


# ---- rules/report.smk


def report_file(name, category, caption):
    return report(f"{REPORT_DIR}/{name}", caption=f"../report/{caption}", category=category)


# ---- rules/plan.smk


def calibration_inputs(wildcards):
    stats = {f"{stage}_stats": all_stats_files(stage) for stage in STAGES}
    if DIFFICULTY_ON:
        stats["difficulty_labels_stats"] = [label_stats_file(part) for part in LABEL_PARTS]
    return stats
