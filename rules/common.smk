# What the rule files share, and all that they share. The validated config and the names of its parts;
# paths of shards, sidecars, logs and each stage's files; seeds; the input and param helpers of each
# file below, by file (Snakemake's lint wants functions apart from the rules). Rule files read these
# and nothing of each other's, so they can be included in any order. The logic lives in the package.
import functools
import hashlib
import os
import re

from snakemake.io import IOFile, apply_wildcards

from scalequest.config import (
    NOT_FINE_TUNED,
    ConfigError,
    contamination_embedder,
    contamination_judge,
    contamination_screens,
    evaluation_rows,
    keep_optional_with_its_path,
    sft_hyper,
    trained_generators,
    validate_config,
)
from scalequest.decontam import benchmarks_in_use, question_sources
from scalequest.gpu_jobs import job_gpus, model_gpus
from scalequest.models import trained_generator, trained_model
from scalequest.prefetch import OFFLINE_ENV, hub_items, is_hub_model
from scalequest.preflight import ENVS as PREFLIGHT_ENVS
from scalequest.registry import ENGINE, JOBS, TRAINING, chain_stages, rule_family, rules_of, stage
from scalequest.shards import SHARD_PATTERN, derive_seed, shard_ids, shard_slice

keep_optional_with_its_path(config, workflow.config_settings.overwrite_config)
try:
    _validated = validate_config(config)
except ConfigError as error:
    raise WorkflowError(f"Configuration error: {error}") from None
config.clear()
config.update(_validated)

RESULTS = config["results"]
if config["umask"] is not None:  # here, so that the controller and every job (which reads this file) use it
    os.umask(int(config["umask"], 8))
GENERATORS = sorted(config["generators"])
DIFFICULTY_ON = config["difficulty"]["enabled"]
STAGES = chain_stages(DIFFICULTY_ON)  # the per-shard stages of this run, in data-flow order
MODEL_GENERATORS = [g for g in GENERATORS if "model" in config["generators"][g]]
FILE_GENERATORS = [g for g in GENERATORS if "questions_file" in config["generators"][g]]
TRAINED_GENERATORS = {kind: trained_generators(config, kind) for kind in ("qft", "qpo")}  # QFT of qft and qpo ones
SOLVABILITY = config["filter"]["solvability"]
DIFFICULTY = config["difficulty"]
NEAR_DUP = config["release"]["near_dup"]
# The decontamination's settings; its benchmarks without the evaluation's gold-answer keys (question_sources).
_DECONTAMINATION = config["release"]["decontamination"]
DECONTAMINATION = {**_DECONTAMINATION, "benchmarks": question_sources(_DECONTAMINATION["benchmarks"])}
# Benchmarks marked optional whose file is not there are left out, and the card says so.
BENCHMARKS, ABSENT_BENCHMARKS = benchmarks_in_use(DECONTAMINATION["benchmarks"]) if DECONTAMINATION["enabled"] else ({}, {})
# The screen jobs' settings: changing the model screens' (rule model_screen) re-runs none of them.
MODEL_FREE_SCREENS = {key: value for key, value in DECONTAMINATION.items() if key not in ("embedding", "judge")}
# The contamination screens with models (rule model_screen), by role; None where off.
CONTAMINATION_MODELS = {"embedding": contamination_embedder(config), "judge": contamination_judge(config)}
MODEL_SCREEN = bool(BENCHMARKS) and any(CONTAMINATION_MODELS.values())
EVALUATION = config["evaluation"]
EVALUATION_ROWS = evaluation_rows(config)  # every evaluated (model, dataset): the table's rows
# The evaluated benchmarks (release.decontamination.benchmarks entries); optional ones without a file are left out.
_EVALUATED = {name: _DECONTAMINATION["benchmarks"][name] for name in EVALUATION["benchmarks"]}
EVAL_BENCHMARKS, ABSENT_EVAL_BENCHMARKS = benchmarks_in_use(_EVALUATED)
OPTIMIZER = config["qpo"]["optimizer"]["model"]
API_OPTIMIZER = config["models"][OPTIMIZER]["engine"] == "openai"

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


def shard_file(name, gen="{gen}", shard="{shard}"):
    """A shard of a stage declared in scalequest/registry.py (a KeyError names the declared ones)."""
    return f"{RESULTS}/{stage(name).name}/{gen}/{shard}.parquet"


def stats_file(name, gen="{gen}", shard="{shard}"):
    return f"{RESULTS}/{stage(name).name}/{gen}/{shard}.stats.json"


def log_file(rule):
    return f"{RESULTS}/logs/{rule}/{{gen}}/{{shard}}.log"


def all_shard_files(name):
    return [shard_file(name, gen, shard) for gen in GENERATORS for shard in shards_of(gen)]


def all_stats_files(name):
    return [stats_file(name, gen, shard) for gen in GENERATORS for shard in shards_of(gen)]


def engine_rule(rule):
    """The rule's name, once it is sure the registry declares it an engine rule (else its jobs would
    get no GPU)."""
    if rule_family(rule) != ENGINE:
        raise WorkflowError(f"rule {rule} asks for a model engine's GPUs, but scalequest/registry.py declares it "
                            f"{rule_family(rule)}: its jobs would get no GPU")
    return rule


def engine_resources(rule):
    """A job's GPUs, from the settings of the models it loads (scalequest/gpu_jobs.py): the Slurm
    request and the plan follow a model's tensor_parallel_size."""
    engine_rule(rule)
    # Worked out here, once per generator: a function would be called again for each of the rule's jobs.
    by_gen = {gen: job_gpus(config, rule, gen) for gen in GENERATORS}
    gpus = job_gpus(config, rule)
    if all(count == gpus for count in by_gen.values()):
        return {"gpu": gpus}
    return {"gpu": lambda wildcards: by_gen[wildcards.gen] if hasattr(wildcards, "gen") else gpus}


def loads_no_model(rule):
    """Whether no job of an engine rule loads a model in this run (a filter without the solvability
    judge, QPO rewrites through an API): it then runs on the submitting node, which has the network."""
    return job_gpus(config, engine_rule(rule)) == 0


def shard_seed(name):
    return lambda wildcards: derive_seed(config["seed"], name, wildcards.gen, wildcards.shard)


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


def trained_model_params(gen, kind):
    """A trained generator as a model param."""
    return trained_generator(config, gen, kind, trained_model_dir(kind, gen))


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


# Each stage's files that are not shards, by the rule file that writes them.
SEED_QUESTIONS = f"{RESULTS}/train/seed_questions.jsonl"  # seed_questions.smk
QPO_DIR = f"{RESULTS}/train/qpo/{{gen}}"  # qpo.smk
OPTIMIZER_CHECK = f"{RESULTS}/train/qpo/optimizer_check.json"
DIFFICULTY_DIR = f"{RESULTS}/train/difficulty"  # difficulty.smk
SCORER_DIR = f"{DIFFICULTY_DIR}/scorer"
KEEP_RATES = f"{RESULTS}/difficulty/keep_rates.json"
LABEL_PARTS = shard_ids(config["seeds"]["max_questions"], DIFFICULTY["labels"]["shard_size"])
LSH_BANDS = [f"{band:02d}" for band in range(NEAR_DUP["bands"])] if NEAR_DUP["enabled"] else []  # dedup.smk
MINHASH_LIST = f"{RESULTS}/dedup/minhash_shards.json"
DUPLICATES_FILE = f"{RESULTS}/dedup/duplicates.parquet"
BENCHMARK_DIR = f"{RESULTS}/benchmarks"  # benchmark_index.smk
BENCHMARK_ITEMS = f"{BENCHMARK_DIR}/items.parquet"
BENCHMARK_INDEX = f"{BENCHMARK_DIR}/ngrams.npz"
BENCHMARK_LEXICAL = f"{BENCHMARK_DIR}/lexical.npz"
BENCHMARK_SUMMARY = f"{BENCHMARK_DIR}/benchmarks.json"
RELEASE_DIR = f"{RESULTS}/release"  # release.smk
RELEASE_DATA = f"{RELEASE_DIR}/data"
RELEASE_FUNNEL = f"{RELEASE_DIR}/funnel.json"
REPORT_DIR = f"{RESULTS}/report"  # report.smk
RELEASE_CARD = f"{RELEASE_DIR}/README.md"  # release.smk (the card rule), with the evaluation when on
EVAL_DIR = f"{RESULTS}/evaluation"  # evaluation.smk
SCORES = f"{EVAL_DIR}/scores.json"
SCORES_TABLE = f"{EVAL_DIR}/table.md"


# ---- rules/preflight.smk, and the GPU rules it goes before


PREFLIGHT = f"{RESULTS}/preflight/{{partition}}/{{env}}.json"


def slurm_setting(job_rule, resource):
    """A Slurm resource of `job_rule` as the profile writes it (set-resources, else default-resources): None
    without a Slurm profile."""
    settings = workflow.resource_settings
    for resources in (settings.overwrite_resources.get(job_rule, {}), settings.default_resources):
        if hasattr(resources, "items") and dict(resources.items()).get(resource) is not None:
            return dict(resources.items())[resource].raw
    return None


@functools.cache
def preflight_groups():
    """{(partition, env): [rules]}: the run's GPU rules by the Slurm partition the profile sends them to
    and their environment (scalequest/preflight.py ENVS). Empty without a Slurm partition (profiles/local)."""
    groups, defined = {}, {defined_rule.name for defined_rule in workflow.rules}
    for name in (*rules_of(ENGINE), *rules_of(TRAINING)):
        if name not in defined or JOBS[name].family == ENGINE and loads_no_model(name):
            continue
        partition = slurm_setting(name, "slurm_partition")
        if partition:
            groups.setdefault((str(partition), PREFLIGHT_ENVS[JOBS[name].family]), []).append(name)
    return groups


def preflight_file(name, wildcards):
    """The preflight report a job of `name` waits for, `ancient` (a preflight run again re-runs nothing).
    A job that already ran keeps the inputs it ran with, as Snakemake recorded them: Snakemake re-runs a job
    whose set of input files changed, so adding a report to a finished job (a run begun before the
    preflight, or on another partition) would re-run it."""
    partition = slurm_setting(name, "slurm_partition")
    if not partition or name not in [member for members in preflight_groups().values() for member in members]:
        return []
    outputs = [apply_wildcards(str(pattern), wildcards) for pattern in workflow.get_rule(name).output]
    if all(os.path.exists(output) for output in outputs):
        recorded = workflow.persistence.input(IOFile(outputs[0])) if workflow.persistence else None
        return [ancient(path) for path in recorded or [] if path.startswith(f"{RESULTS}/preflight/")]
    return [ancient(PREFLIGHT.format(partition=partition, env=PREFLIGHT_ENVS[JOBS[name].family]))]


def preflight_gate(name):
    """The input of every GPU rule: the preflight of its partition goes first (see preflight_file)."""
    return lambda wildcards: preflight_file(name, wildcards)


def preflight_rules(wildcards):
    return preflight_groups().get((wildcards.partition, wildcards.env), [])


def preflight_need(wildcards):
    """What the preflight job checks (scalequest/preflight.py Need): a param, so that other models or
    datasets run it again."""
    rules = preflight_rules(wildcards)
    return {"rules": rules, "gpus": preflight_gpus(wildcards), "datasets": HUB_ITEMS["datasets"],
            "models": {key: config["models"][key] for name in rules for key in JOBS[name].models(config, None)},
            "cuda": config["preflight"]["cuda"]}


def preflight_gpus(wildcards):
    """GPUs of the preflight job: an engine job's largest request, or a node's (training takes whole nodes:
    the profile's gres, gpu:<n> or gpu:<type>:<n>)."""
    rules = preflight_rules(wildcards)
    if wildcards.env == PREFLIGHT_ENVS[TRAINING]:
        gres = next((slurm_setting(name, "gres") for name in rules if slurm_setting(name, "gres")), None)
        return int(str(gres).rsplit(":", 1)[-1]) if gres else 1
    return max((job_gpus(config, name) for name in rules), default=1)


def preflight_gpu_model(wildcards):
    """The GPU type the group's jobs ask for (the profile's gpu_model, or the type in a training gres
    gpu:<type>:<n>), None for any: the preflight must land on the GPUs the jobs will."""
    for member in preflight_rules(wildcards):
        gres = str(slurm_setting(member, "gres") or "").split(":")
        model = slurm_setting(member, "gpu_model") or (gres[1] if len(gres) == 3 else None)
        if model:
            return str(model)
    return None


def preflight_inputs(wildcards):
    """The models the jobs load, built or prefetched, and the prefetched datasets: the preflight checks
    them where the jobs will."""
    keys = {key for name in preflight_rules(wildcards) for key in JOBS[name].models(config, None)}
    return list(dict.fromkeys([*prefetched(), *(path for key in sorted(keys) for path in model_inputs(key))]))


def preflight_reports():
    """Every preflight report of the run, for the run report (`ancient`: a new one re-runs nothing else)."""
    return [ancient(PREFLIGHT.format(partition=partition, env=env)) for partition, env in sorted(preflight_groups())]


def env_digest(path):
    """An environment file's content digest: a changed environment runs the preflight again."""
    with open(os.path.join(CHECKOUT, path), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


# ---- rules/seed_questions.smk


def local_source_files(sources):
    """Seed files on disk are inputs (editing one re-runs what uses them); hub datasets are fetched."""
    return [source["path"] for source in sources if "path" in source]


def training_launch(nodes=None):
    """Where a training job's ranks run: `nodes` (default training.nodes) x training.processes_per_node."""
    return {"nodes": nodes or config["training"]["nodes"], "processes_per_node": config["training"]["processes_per_node"]}


def training_resources(nodes=None):
    """A multi-node training job (`nodes`, default training.nodes) asks Slurm for its nodes and one launcher
    task per node, and runs its own srun (mpi); GPUs, memory and time per node come from the profile."""
    nodes = nodes or config["training"]["nodes"]
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
    return trained_model(config, DIFFICULTY["scorer"]["model"], SCORER_DIR, "difficulty-scorer", "difficulty scorer",
                         max_model_len=DIFFICULTY["scorer"]["hyper"]["max_length"])


# ---- rules/respond.smk


def questions_to_answer():
    """The filter's questions, or the difficulty stage's scored questions and the keep rates to sample them with.
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
    return {"benchmark_items": BENCHMARK_ITEMS, "index": BENCHMARK_INDEX, "lexical": BENCHMARK_LEXICAL} if BENCHMARKS else {}


def matches_output():
    return {"matches": shard_file("matches")} if BENCHMARKS else {}


# ---- rules/release.smk


def release_inputs(wildcards):
    """The best pairs, the duplicates, the benchmark matches, and every stage's sidecars for the funnel."""
    inputs = {"best": all_shard_files("best"), "duplicates": DUPLICATES_FILE}
    if BENCHMARKS:
        inputs.update(contamination=all_shard_files("matches"), benchmarks=BENCHMARK_SUMMARY)
    if MODEL_SCREEN:
        inputs.update(model_matches=all_shard_files("model_matches"))
    if DIFFICULTY_ON:
        inputs.update(keep_rates=KEEP_RATES, sampled=all_shard_files("sample"), scorer=SCORER_DIR)
    inputs.update({f"{name}_stats": all_stats_files(name) for name in STAGES})
    return inputs


def release_settings():
    """What the card reports about how the data was made (no secrets live in the config)."""
    keys = ["seed", "generators", "generate", "filter", "difficulty", "respond", "reward"]
    settings = {key: config[key] for key in keys}
    settings["models"] = {key: config["models"][key]["path"] for key in sorted(config["models"])}
    settings["release"] = {"near_dup": NEAR_DUP, "decontamination": DECONTAMINATION}
    return settings


# ---- rules/evaluation.smk


def sft_pairs_file(dataset="{dataset}"):
    return f"{EVAL_DIR}/datasets/{dataset}.jsonl"


def sft_model_dir(model="{model}", dataset="{dataset}"):
    return f"{EVAL_DIR}/sft/{model}/{dataset}/model"


def eval_items_file(bench="{bench}"):
    return f"{EVAL_DIR}/benchmarks/{bench}.parquet"


def eval_answers_file(model="{model}", dataset="{dataset}", bench="{bench}", shard="{shard}"):
    return f"{EVAL_DIR}/answers/{model}/{dataset}/{bench}/{shard}.parquet"


def eval_shards(bench):
    return shard_ids(EVALUATION["shards"].get(bench, 1), 1)


def all_eval_answers():
    return [eval_answers_file(row["label"], row["dataset"], bench, shard) for row in EVALUATION_ROWS
            for bench in EVAL_BENCHMARKS for shard in eval_shards(bench)]


def sft_data_inputs(wildcards):
    """The release's files, a stage's shards, a local file, or the prefetched hub dataset."""
    entry = EVALUATION["datasets"][wildcards.dataset]
    if entry.get("release"):
        return [RELEASE_DATA]
    if entry.get("stage"):
        return all_shard_files(entry["stage"])
    return [entry["path"]] if entry.get("path") else prefetched()


def sft_dataset_entry(wildcards):
    """A dataset's entry without `pairs`, its size for the plan: setting that re-runs no SFT."""
    return {key: value for key, value in EVALUATION["datasets"][wildcards.dataset].items() if key != "pairs"}


def eval_items_inputs(wildcards):
    entry = EVAL_BENCHMARKS[wildcards.bench]
    return [entry["path"]] if entry.get("path") else prefetched()


def evaluated_model(wildcards):
    """The evaluated model as a model param: a base model after its SFT on the dataset, or a reference
    model as it is."""
    if wildcards.dataset == NOT_FINE_TUNED:
        return model_params(wildcards.model)
    return trained_model(config, wildcards.model, sft_model_dir(wildcards.model, wildcards.dataset),
                         f"{wildcards.model}-sft-{wildcards.dataset}", f"SFT on {wildcards.dataset}")


def evaluated_model_inputs(wildcards):
    if wildcards.dataset == NOT_FINE_TUNED:
        return model_inputs(wildcards.model)
    return [sft_model_dir(wildcards.model, wildcards.dataset)]


def evaluated_model_gpus():
    """An evaluation job's GPUs: its own model's (scalequest/gpu_jobs.py)."""
    engine_rule("eval_answers")
    return {"gpu": lambda wildcards: model_gpus(config["models"][wildcards.model])}


def eval_seed(wildcards):
    return derive_seed(config["seed"], "eval_answers", f"{wildcards.model}/{wildcards.dataset}/{wildcards.bench}",
                       wildcards.shard)


def evaluation_targets():
    """The default target's evaluation files when the evaluation is on: the scores and their report page."""
    return [SCORES, SCORES_TABLE, f"{REPORT_DIR}/evaluation.html"] if EVALUATION["enabled"] else []


# ---- rules/report.smk


def report_file(name, category, caption):
    return report(f"{REPORT_DIR}/{name}", caption=f"../report/{caption}", category=category)


# ---- rules/plan.smk, rules/report.smk


def sidecar_inputs(wildcards):
    """Every per-shard stage's sidecars (and the difficulty labels'), as inputs named <stage>_stats."""
    stats = {f"{name}_stats": all_stats_files(name) for name in STAGES}
    if DIFFICULTY_ON:
        stats["difficulty_labels_stats"] = [label_stats_file(part) for part in LABEL_PARTS]
    return stats
