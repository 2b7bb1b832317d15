"""Workflow configuration: schema validation with defaults, and cross-key checks."""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

import jsonschema

from .gpu_jobs import GpuConfigError, check_model_gpus
from .keep_rule import RULE_READS, KeepRuleError, check_keep_rule
from .minhash import lsh_rows
from .models import is_local_model_path, local_folder_problem
from .schema import load_schema


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


def _is_integer(checker: jsonschema.TypeChecker, instance: Any) -> bool:
    # Draft 2020-12 counts 2.0 as an integer, but range() and the engines' APIs reject a float.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _validator_filling_defaults():
    base = jsonschema.Draft202012Validator

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": fill_defaults},
                                        type_checker=base.TYPE_CHECKER.redefine("integer", _is_integer))


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _error_message(error: jsonschema.ValidationError) -> str:
    """The schema error in the config's terms where jsonschema's own message is unclear."""
    if error.validator == "type" and isinstance(error.instance, float) and error.instance.is_integer() \
            and "integer" in _as_list(error.validator_value):
        return f"{error.instance!r} is not an integer (write {int(error.instance)})"
    if error.validator in ("oneOf", "anyOf") and isinstance(error.instance, dict):
        return _forms_message(error) or error.message
    if error.validator in ("type", "pattern") and isinstance(error.schema, Mapping) and "hint" in error.schema:
        return f"{error.message}: {error.schema['hint']}"  # a schema entry's own advice for its form
    return error.message


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _forms_message(error: jsonschema.ValidationError) -> str | None:
    """Which of the schema's titled forms (oneOf/anyOf branches, told apart by their first required
    key) an entry meant, and what it lacks or has too many of; None where the forms have no titles."""
    forms = error.validator_value
    if not all("title" in form and form.get("required") for form in forms):
        return None
    noun, keys = error.schema.get("title", "entry"), set(error.instance)
    described = [f"a {form['title']} ({', '.join(form['required'])})" for form in forms]
    either = f"a {noun} is {'either ' if len(forms) == 2 else ''}{_alternatives(described)}"
    meant = [form for form in forms if form["required"][0] in keys]
    if not meant:
        return f"needs {_alternatives([form['required'][0] for form in forms])}: {either}"
    if len(meant) > 1:
        return f"has both {' and '.join(form['required'][0] for form in meant)}: {either}"
    form = meant[0]
    missing = [key for key in form["required"] if key not in keys]
    if missing:
        options = [_with_choices(key, error.schema.get("properties", {}).get(key, {})) for key in missing]
        return f"a {form['title']} {noun} needs {' and '.join(options)}"
    extra = [key for key in _forbidden_keys(form) if key in keys]
    if extra:
        return f"a {form['title']} {noun} takes no {' or '.join(extra)}: {either}"
    return None


def _forbidden_keys(form: Mapping[str, Any]) -> list[str]:
    """The keys a form's `not` rules out: `not: {required: [...]}` or `not: {anyOf: [{required: [...]}]}`."""
    ruled_out = form.get("not", {})
    return [key for part in [ruled_out, *ruled_out.get("anyOf", [])] for key in part.get("required", [])]


def _with_choices(key: str, schema: Mapping[str, Any]) -> str:
    return f"{key} ({_alternatives(schema['enum'])})" if "enum" in schema else key


def _alternatives(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def validate_config(config: Mapping[str, Any]) -> dict:
    """Return a validated copy of `config` with defaults filled, every mapping's keys in sorted
    order (canonical_order).

    Raises ConfigError naming the first bad key (schema errors, then cross-key checks such as
    a stage naming a model key that `models` does not define).
    """
    filled = copy.deepcopy(dict(config))
    for generator in (filled.get("generators") or {}).values():
        if isinstance(generator, dict) and "model" in generator:
            generator.setdefault("training", "qpo")  # the paper's generators; file generators have none
    validator = _validator_filling_defaults()(load_schema())
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise ConfigError(f"invalid config at '{_key_path(first)}': {_error_message(first)}")
    _check_model_references(filled)
    _check_api_models(filled)
    _check_builds_unique(filled)
    _check_local_models(filled)
    _check_evaluation(filled)
    try:
        check_model_gpus(filled)
    except GpuConfigError as error:
        raise ConfigError(str(error)) from None
    if filled["difficulty"]["enabled"]:
        _check_keep_rule(filled["difficulty"]["keep"])
    near_dup = filled["release"]["near_dup"]
    try:
        lsh_rows(near_dup["num_perm"], near_dup["bands"])
    except ValueError as error:
        raise ConfigError(f"invalid config at 'release.near_dup': {error}") from None
    return canonical_order(filled)


def canonical_order(value: Any) -> Any:
    """`value` with every mapping's keys sorted, recursively (lists keep their order). Snakemake
    compares params key order and all: the same settings must give the same params, and re-run
    nothing, whether a preset came by --configfile or by the Snakefile (they merge in other orders)."""
    if isinstance(value, Mapping):
        return {key: canonical_order(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical_order(item) for item in value]
    return value


def model_references(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(config key path, model key) for every place a generation or scoring stage names a model."""
    for name, generator in config["generators"].items():
        if "model" in generator:
            yield f"generators.{name}.model", generator["model"]
    if config["filter"]["solvability"]["enabled"] or uses_training(config, "qpo") and config["qpo"]["judge"]:
        yield "filter.solvability.model", config["filter"]["solvability"]["model"]
    if config["difficulty"]["enabled"]:
        yield "difficulty.labels.solver", config["difficulty"]["labels"]["solver"]
        yield "difficulty.scorer.model", config["difficulty"]["scorer"]["model"]
    yield "respond.model", config["respond"]["model"]
    yield "reward.model", config["reward"]["model"]
    embedder = contamination_embedder(config)
    if embedder:
        yield "release.decontamination.embedding.model", embedder
    evaluation = config["evaluation"]
    for number, key in enumerate(evaluation["base_models"]):
        yield f"evaluation.base_models[{number}]", key
    for number, key in enumerate(reference_models(config)):
        yield (f"evaluation.reference_models[{number}]" if evaluation["reference_models"] is not None
               else "evaluation.reference_models (null: respond.model)"), key


def reference_models(config: Mapping[str, Any]) -> list[str]:
    """The model keys the evaluation scores as they are: `evaluation.reference_models`, or the solver."""
    references = config["evaluation"]["reference_models"]
    return [config["respond"]["model"]] if references is None else list(references)


NOT_FINE_TUNED = "none"  # the dataset name of a model scored as it is


def evaluation_rows(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every evaluated (model, dataset) row, in table order: each base model fine-tuned on each
    dataset, then the reference models as they are (dataset "none"). `release`: the dataset is this
    run's release (the paper's Table 1 stands beside such a row)."""
    evaluation, models = config["evaluation"], config["models"]
    rows = [{"label": key, "dataset": name, "base_path": models[key]["path"], "release": bool(entry.get("release"))}
            for key in evaluation["base_models"] for name, entry in evaluation["datasets"].items()]
    return rows + [{"label": key, "dataset": NOT_FINE_TUNED, "base_path": models[key]["path"], "release": False}
                   for key in reference_models(config)]


def sft_hyper(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The SFT hyper-parameters of a base model: `evaluation.sft.hyper` with its own `models.<key>`
    values over them, and `packing`."""
    sft = config["evaluation"]["sft"]
    return {**sft["hyper"], **sft["models"].get(key, {}), "packing": sft["packing"]}


def _check_evaluation(config: Mapping[str, Any]) -> None:
    """Evaluated benchmarks are decontamination benchmarks with gold answers; per-model SFT settings
    name a base model and hold valid hyper-parameters."""
    evaluation = config["evaluation"]
    declared = config["release"]["decontamination"]["benchmarks"]
    for name in evaluation["benchmarks"]:
        if name not in declared:
            raise ConfigError(f"invalid config at 'evaluation.benchmarks': no benchmark '{name}' in "
                              f"release.decontamination.benchmarks (declared: {', '.join(sorted(declared))})")
        if not declared[name].get("answer_field"):
            raise ConfigError(f"invalid config at 'release.decontamination.benchmarks.{name}.answer_field': the "
                              "evaluation scores this benchmark, so it needs the field that holds the gold answers")
    validator = jsonschema.Draft202012Validator(load_schema()["$defs"]["training_hyper"])
    for key, own in evaluation["sft"]["models"].items():
        if key not in evaluation["base_models"]:
            raise ConfigError(f"invalid config at 'evaluation.sft.models.{key}': not in evaluation.base_models")
        error = jsonschema.exceptions.best_match(validator.iter_errors({**evaluation["sft"]["hyper"], **own}))
        if error is not None:
            raise ConfigError(f"invalid config at 'evaluation.sft.models.{key}': {error.message}")


def contamination_embedder(config: Mapping[str, Any]) -> str | None:
    """The embedding screen's model key, None when that screen is off."""
    decontamination = config["release"]["decontamination"]
    return decontamination["embedding"]["model"] if decontamination["enabled"] else None


def contamination_screens(config: Mapping[str, Any]) -> list[str]:
    """The screens that drop benchmark matches in this run, in order (contamination.METHODS)."""
    decontamination = config["release"]["decontamination"]
    if not decontamination["enabled"]:
        return []
    return (["ngram"] + (["lexical"] if decontamination["lexical"]["enabled"] else [])
            + (["embedding"] if contamination_embedder(config) else [])
            + (["judge"] if contamination_judge(config) else []))


def contamination_judge(config: Mapping[str, Any]) -> str | None:
    """The contamination judge's model key (the solver unless set), None when the judge is off."""
    decontamination = config["release"]["decontamination"]
    if not (decontamination["enabled"] and decontamination["judge"]["enabled"]):
        return None
    return decontamination["judge"]["model"] or config["respond"]["model"]


TRAINED_UP_TO = {"qft": ("qft", "qpo"), "qpo": ("qpo",)}  # the generators' `training` values that train each kind


def trained_generators(config: Mapping[str, Any], kind: str) -> list[str]:
    """The generators trained up to `kind` (qft: those with training qft or qpo; qpo: training qpo), sorted."""
    return sorted(name for name, g in config["generators"].items() if g.get("training") in TRAINED_UP_TO[kind])


def uses_training(config: Mapping[str, Any], kind: str) -> bool:
    """Whether any generator is trained up to `kind`."""
    return bool(trained_generators(config, kind))


def all_model_references(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """model_references, and the QPO optimizer when a generator is trained with QPO."""
    yield from model_references(config)
    if uses_training(config, "qpo"):
        yield "qpo.optimizer.model", config["qpo"]["optimizer"]["model"]
    judge = contamination_judge(config)
    if judge:
        yield "release.decontamination.judge.model", judge


def _check_model_references(config: Mapping[str, Any]) -> None:
    known = config["models"]
    for where, key in all_model_references(config):
        if key not in known:
            raise ConfigError(
                f"invalid config at '{where}': unknown model key '{key}' "
                f"(models defines: {', '.join(sorted(known))})"
            )


def _check_api_models(config: Mapping[str, Any]) -> None:
    """An `openai` model only chats: it needs an endpoint and cannot serve a generation or
    scoring stage, which need token-level control."""
    models = config["models"]
    for key, model in models.items():
        if model["engine"] == "openai" and not model.get("base_url"):
            raise ConfigError(f"invalid config at 'models.{key}.base_url': engine openai needs the endpoint's base_url")
    for where, key in model_references(config):
        if key in models and models[key]["engine"] == "openai":
            raise ConfigError(f"invalid config at '{where}': model '{key}' uses engine openai, which only serves "
                              "chat (the QPO optimizer); use a vllm or hf model here")


def _check_builds_unique(config: Mapping[str, Any]) -> None:
    seen: dict[str, str] = {}
    for key, model in config["models"].items():
        build = model.get("build")
        if build is None:
            continue
        if build in seen:
            raise ConfigError(
                f"invalid config at 'models.{key}.build': '{build}' is already built by "
                f"models.{seen[build]}; one model per build kind"
            )
        seen[build] = key
    if "tiny-reward" in seen and "tiny-lm" not in seen:
        raise ConfigError(
            f"invalid config at 'models.{seen['tiny-reward']}.build': tiny-reward reuses the "
            "tiny-lm tokenizer, so a model with build: tiny-lm is required too"
        )


def _check_local_models(config: Mapping[str, Any]) -> None:
    """A used model whose path is a local folder must hold a model before any job loads it (a
    missing one would be taken for a hub id and fail there). Models the workflow builds are made
    later; an openai path is a model name at the endpoint."""
    for key in sorted({key for _, key in all_model_references(config)}):
        entry = config["models"][key]
        if entry["engine"] == "openai" or entry.get("build") or not is_local_model_path(entry["path"]):
            continue
        problem = local_folder_problem(entry["path"])
        if problem:
            raise ConfigError(f"invalid config at 'models.{key}.path': {problem}")


def _check_keep_rule(keep: Mapping[str, Any]) -> None:
    """Reject a keep rule that cannot be applied; warn (stderr) about a setting the rule does not read."""
    try:
        check_keep_rule(keep)
    except KeepRuleError as error:
        raise ConfigError(str(error)) from None
    defaults = load_schema()["properties"]["difficulty"]["properties"]["keep"]["properties"]
    read = RULE_READS[keep["rule"]]
    for key in sorted({key for keys in RULE_READS.values() for key in keys}):
        # A setting left at its default was not given (config.yaml spells the default min_score out).
        if key not in read and keep[key] != defaults[key].get("default"):
            reads = f" (it reads {', '.join(read)})" if read else ""
            print(f"Configuration warning: 'difficulty.keep.{key}' ({keep[key]}) is ignored: rule {keep['rule']} "
                  f"does not read it{reads}; remove it, or pick a rule that reads it", file=sys.stderr)


def load_config_files(*paths: str | Path) -> dict:
    """Merge YAML files (later ones override, recursively) and validate the result."""
    from .config_files import load_config_file  # it imports ConfigError from here

    merged: dict = {}
    for path in paths:
        override = load_config_file(path)
        merge_into(merged, override)
        keep_optional_with_its_path(merged, override)
    return validate_config(merged)


def keep_optional_with_its_path(merged: dict, override: Mapping[str, Any]) -> None:
    """A benchmark's `optional` holds for the path written beside it: where `override` (a file merged
    over `merged`, or the command line's settings) sets a benchmark's path without `optional`, that
    path is required, so a typo in it stops the run instead of leaving the benchmark out unseen."""
    for name, entry in _get(override, "release", "decontamination", "benchmarks").items():
        target = _get(merged, "release", "decontamination", "benchmarks").get(name)
        if isinstance(entry, Mapping) and "path" in entry and "optional" not in entry and isinstance(target, dict):
            target["optional"] = False


def _get(config: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    """The mapping at `keys`, or {} where a key is missing or holds no mapping (validation names those)."""
    for key in keys:
        config = config.get(key) if isinstance(config, Mapping) else None
    return config if isinstance(config, Mapping) else {}


def merge_into(target: dict, update: Mapping[str, Any]) -> dict:
    """Recursive dict update, as Snakemake applies --configfile over `configfile:`."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target
