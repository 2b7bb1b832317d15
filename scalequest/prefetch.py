"""Fetching every Hugging Face Hub model and dataset a run uses into the shared cache, once, on the
node that has the network (cluster nodes often have none), so that every job can run offline."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from .atomic import write_json_atomic
from .config import all_model_references, uses_training
from .models import is_hub_model

# Set for every job: models and datasets come from the cache the prefetch filled.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


class PrefetchError(RuntimeError):
    """A model or dataset could not be fetched; the message names it and says what to do."""


def hub_items(config: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The hub models (by repository id) and datasets (hub, subset, split) the run needs."""
    keys = {key for _, key in all_model_references(config)}
    models = sorted({config["models"][key]["path"]: config["models"][key].get("trust_remote_code", False)
                     for key in keys if key in config["models"] and is_hub_model(config["models"][key])}.items())
    sources = (list(config["seeds"]["sources"]) if uses_training(config, "qft") or config["difficulty"]["enabled"]
               else [])
    decontamination, evaluation = config["release"]["decontamination"], config["evaluation"]
    benchmarks = set(decontamination["benchmarks"]) if decontamination["enabled"] else set()
    benchmarks |= set(evaluation["benchmarks"])  # the evaluation reads its sets whether or not it decontaminates
    sources += [decontamination["benchmarks"][name] for name in sorted(benchmarks)]
    sources += list(evaluation["datasets"].values())
    datasets = {(s["hub"], s.get("subset"), s.get("split", "train")) for s in sources if "hub" in s and "path" not in s}
    return {"models": [{"repo": repo, "trust_remote_code": trust} for repo, trust in models],
            "datasets": [{"hub": hub, "subset": subset, "split": split} for hub, subset, split in sorted(
                datasets, key=lambda d: (d[0], d[1] or "", d[2]))]}


def prefetch(items: Mapping[str, list[Mapping[str, Any]]], out: str | Path) -> dict[str, Any]:
    """Download every item into the Hugging Face cache ($HF_HOME), then write `out` listing where
    each landed. Runs online whatever the job environment says."""
    for key in OFFLINE_ENV:
        os.environ[key] = "0"  # before huggingface_hub and datasets read it
    from huggingface_hub import snapshot_download

    fetched: dict[str, Any] = {"models": [], "datasets": []}
    for model in items["models"]:
        try:
            fetched["models"].append({"repo": model["repo"], "path": snapshot_download(model["repo"])})
        except Exception as err:  # network, auth, missing repository: all stop the run here
            raise PrefetchError(f"cannot fetch model {model['repo']} from the Hugging Face Hub ({type(err).__name__}: "
                                f"{err}). Run on a node with network access (log in with `hf auth login` for gated "
                                f"models), or set the model's path to a local folder. (If {model['repo']} is meant as "
                                f"a local folder: there is none at {Path.cwd() / model['repo']}; a path the hub's "
                                f"`owner/name` ids do not look like, such as ./{model['repo']}, is always read as a "
                                "folder, and a missing one stops the run before any job.)") from err
    for dataset in items["datasets"]:
        fetched["datasets"].append(_fetch_dataset(dataset))
    write_json_atomic(out, fetched)
    return fetched


def _fetch_dataset(dataset: Mapping[str, Any]) -> dict[str, Any]:
    import datasets

    name = f"{dataset['hub']}{'/' + dataset['subset'] if dataset.get('subset') else ''} (split {dataset['split']})"
    try:
        rows = datasets.load_dataset(dataset["hub"], dataset.get("subset"), split=dataset["split"]).num_rows
    except Exception as err:  # datasets raises many types (offline, missing, auth)
        raise PrefetchError(f"cannot fetch dataset {name} from the Hugging Face Hub ({type(err).__name__}: {err}). "
                            "Run on a node with network access, or give the source a local `path`.") from err
    return {**dataset, "rows": rows}
