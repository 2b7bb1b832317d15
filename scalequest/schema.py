"""The config's JSON schema (scalequest/config.schema.yaml): the one place every default is written."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The config's JSON schema (YAML on disk). Read with libyaml where PyYAML has it: the pure-Python
    loader takes a tenth of a second on it, at the start of every Snakemake run."""
    return yaml.load(SCHEMA_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def model_entry_defaults() -> dict[str, Any]:
    """The defaults of a `models.<key>` entry's settings."""
    settings = load_schema()["properties"]["models"]["additionalProperties"]["properties"]
    return {key: spec["default"] for key, spec in settings.items() if "default" in spec}
