"""Workflow configuration: schema validation with defaults, and cross-key checks."""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import jsonschema
import yaml

from .gpu_jobs import GpuConfigError, check_model_gpus

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The config's JSON schema (YAML on disk)."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _validator_filling_defaults():
    base = jsonschema.Draft202012Validator

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": fill_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate_config(config: Mapping[str, Any]) -> dict:
    """Return a validated copy of `config` with defaults filled.

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
        raise ConfigError(f"invalid config at '{_key_path(first)}': {first.message}")
    _check_model_references(filled)
    _check_api_models(filled)
    _check_builds_unique(filled)
    try:
        check_model_gpus(filled)
    except GpuConfigError as error:
        raise ConfigError(str(error)) from None
    return filled


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


def uses_training(config: Mapping[str, Any], kind: str) -> bool:
    """Whether any generator is trained up to `kind` (qft: QFT or QPO; qpo: QPO)."""
    kinds = {"qft": ("qft", "qpo"), "qpo": ("qpo",)}[kind]
    return any(g.get("training") in kinds for g in config["generators"].values())


def all_model_references(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """model_references, and the QPO optimizer when a generator is trained with QPO."""
    yield from model_references(config)
    if uses_training(config, "qpo"):
        yield "qpo.optimizer.model", config["qpo"]["optimizer"]["model"]


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


def load_config_files(*paths: str | Path) -> dict:
    """Merge YAML files (later ones override, recursively) and validate the result."""
    merged: dict = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            merge_into(merged, yaml.safe_load(handle) or {})
    return validate_config(merged)


def merge_into(target: dict, update: Mapping[str, Any]) -> dict:
    """Recursive dict update, as Snakemake applies --configfile over `configfile:`."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target
