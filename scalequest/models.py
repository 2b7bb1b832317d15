"""Model entries of the config as typed specs, and where a model path points: a hub id or a local folder."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .schema import model_entry_defaults

# A folder the Hugging Face loaders read a model from has its config and a tokenizer.
MODEL_CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def is_local_model_path(path: str) -> bool:
    """Whether a model path names a folder rather than a hub id (`name` or `owner/name`): an
    existing folder, a path in a folder that exists here (`models/mine` beside a `models` folder),
    or a path no hub id looks like (absolute, starting with . or ~, or with more than one /)."""
    parent = Path(path).parent
    return (Path(path).exists() or os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1
            or (parent != Path(".") and parent.is_dir()))


def is_hub_model(entry: Mapping[str, Any]) -> bool:
    """A model the engines load from the hub: not an API model, not built here, not a local folder."""
    return entry["engine"] != "openai" and not entry.get("build") and not is_local_model_path(entry["path"])


def model_config(path: str) -> dict[str, Any]:
    """A model's config.json: from its folder, or for a hub id from the Hugging Face cache (the prefetch
    filled it)."""
    config = Path(path) / MODEL_CONFIG_FILE
    if not config.is_file():
        from huggingface_hub import hf_hub_download

        config = Path(hf_hub_download(path, MODEL_CONFIG_FILE))
    return json.loads(config.read_text())


def local_folder_problem(path: str) -> str | None:
    """What keeps a local model path from loading (no folder, no config, no tokenizer), or None."""
    folder = Path(path)
    if not folder.exists():
        expanded = folder.expanduser()
        if expanded != folder and expanded.exists():  # the loaders do not expand ~
            return f"{path} does not exist as written: write it in full, {expanded}"
        return f"the model folder {path} does not exist (a path, not a hub id `owner/name`); fix the path"
    if not folder.is_dir():
        return f"{path} is a file; give the folder a model was saved to (save_pretrained)"
    if not (folder / MODEL_CONFIG_FILE).is_file():
        return (f"{path} has no {MODEL_CONFIG_FILE}: point the path at the folder a model was saved to "
                f"(save_pretrained writes {MODEL_CONFIG_FILE})")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return (f"{path} has no tokenizer files ({', '.join(TOKENIZER_FILES[:-1])} or {TOKENIZER_FILES[-1]}): "
                "save the tokenizer into it too (tokenizer.save_pretrained)")
    return None


def hf_home() -> str:
    return os.environ.get("HF_HOME") or str(Path("~/.cache/huggingface").expanduser())


def hub_cache() -> str:
    """The hub cache as the loaders find it now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_HUB_CACHE") or os.path.join(hf_home(), "hub")


class WeightsError(RuntimeError):
    """A model's weights file cannot be read; the message names the model key, the file and what to do."""


# Snakemake writes this into every folder it makes as a rule's directory() output: the built and trained models.
SNAKEMAKE_DIR_MARK = ".snakemake_timestamp"


def check_weights(spec: ModelSpec) -> None:
    """Raise WeightsError if a safetensors file of the model (a folder, or a hub id in the cache) is
    damaged, e.g. cut short by an interrupted download, copy or save: the loaders (transformers, vLLM)
    then raise `SafetensorError`, naming neither the model nor the file. Only the files' headers are
    read (safetensors checks that they cover each file exactly). A model not on disk (an API model, a
    hub id not in the cache) is left to its loader, which says so."""
    from safetensors import SafetensorError, safe_open

    folder, repo = _weights_folder(spec.path) if spec.engine != "openai" else (None, None)
    for file in sorted(folder.glob("*.safetensors")) if folder else []:
        try:
            with safe_open(str(file), "np"):  # numpy: no torch import, nothing but the header is read
                pass
        except (SafetensorError, OSError) as err:
            raise WeightsError(f"model '{spec.key}': cannot read its weights file {file} ({file.stat().st_size:,} "
                               f"bytes: {err}); it is cut short or damaged, e.g. by an interrupted download, copy or "
                               f"save. {_refetch(repo, spec.path) if repo else _remake(folder, spec.key)}") from None


def _weights_folder(path: str) -> tuple[Path | None, Path | None]:
    """(the folder a model's weights are read from, the hub cache's folder of its repository for a hub
    id); (None, None) when it is not on disk."""
    if is_local_model_path(path):
        return (Path(path), None) if Path(path).is_dir() else (None, None)
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(path, MODEL_CONFIG_FILE, cache_dir=hub_cache())
    if not isinstance(found, str):
        return None, None
    snapshot = Path(found).parent  # <cache>/models--owner--name/snapshots/<revision>/
    return snapshot, snapshot.parent.parent


def _refetch(repo: Path, hub_id: str) -> str:
    # Deleting the prefetch's output instead would re-run every job that reads the hub, not just the prefetch.
    return (f"Delete {repo} (the copy of {hub_id} in the Hugging Face cache), then run again adding `--forcerun "
            "prefetch`: the prefetch rule fetches it anew (it would not run again without it), and nothing that "
            "used the model re-runs.")


def _remake(folder: Path, key: str) -> str:
    if (folder / SNAKEMAKE_DIR_MARK).exists():
        return (f"The workflow made {folder} (a built or trained model): delete the folder and run again; Snakemake "
                "makes it anew, then re-runs the jobs that used it.")
    return (f"{folder} is a model folder of your own (models.{key}.path): save or copy the model into it again, "
            "in full, and run again.")


TRAINING_LABELS = {"qft": "QFT", "qpo": "QFT+QPO"}  # a trained generator's label, by its training


def trained_model(config: Mapping[str, Any], base_key: str, path: str, key: str, what: str,
                  **overrides: Any) -> dict[str, Any]:
    """A model the workflow trained, as a model param ({key, entry}): its base model's engine settings,
    the trained weights at `path`, and a label that names it independently of where `results` is (so
    outputs do not depend on it)."""
    entry = {k: v for k, v in config["models"][base_key].items() if k != "build"}
    label = f"{entry['path']} ({what}, seed {config['seed']})"
    return {"key": key, "entry": {**entry, **overrides, "path": path, "label": label}}


def trained_generator(config: Mapping[str, Any], gen: str, kind: str, path: str) -> dict[str, Any]:
    """A generator's model after its QFT or QPO (`kind`), saved at `path`, as a model param."""
    return trained_model(config, config["generators"][gen]["model"], path, f"{gen}-{kind}",
                         f"{TRAINING_LABELS[kind]}, generator {gen}")


_DEFAULTS = model_entry_defaults()  # the schema's: a spec built in code loads a model as a config entry would


@dataclass(frozen=True)
class ModelSpec:
    """How to load one model: where from, through which engine, with which options (the fields of
    a `models.<key>` entry, scalequest/config.schema.yaml)."""

    key: str
    path: str
    engine: str = _DEFAULTS["engine"]
    dtype: str = _DEFAULTS["dtype"]
    max_model_len: int = _DEFAULTS["max_model_len"]
    # Off unless the model's entry turns it on: remote code runs with the job's rights.
    trust_remote_code: bool = _DEFAULTS["trust_remote_code"]
    batch_size: int = _DEFAULTS["batch_size"]
    gpus: int = 1  # hf: more than 1 spreads the layers over the GPUs (no schema default: it depends on the engine)
    vllm_args: Mapping[str, Any] = field(default_factory=dict)
    base_url: str | None = None
    api_key_env: str = _DEFAULTS["api_key_env"]
    concurrency: int = _DEFAULTS["concurrency"]
    max_retries: int = _DEFAULTS["max_retries"]
    timeout: float = _DEFAULTS["timeout"]
    label: str | None = None  # the identity recorded in outputs, when the path is not one (a trained model)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], key: str) -> "ModelSpec":
        return cls.from_entry(key, config["models"][key])

    @classmethod
    def from_entry(cls, key: str, entry: Mapping[str, Any]) -> "ModelSpec":
        """From one `models.<key>` entry (settings it leaves out take the schema's defaults)."""
        settings = {name: entry[name] for name in _FIELDS if entry.get(name) is not None}
        settings["vllm_args"] = dict(settings.get("vllm_args", {}))  # a copy: the spec must not share the config's
        return cls(key=key, **settings)

    def describe(self) -> str:
        """The model's identity as recorded in shards and stats (never a key or credential)."""
        if self.label:
            return self.label
        if self.engine == "openai":
            return f"{self.path} @ {self.base_url}"
        return self.path


_FIELDS = [spec.name for spec in fields(ModelSpec) if spec.name != "key"]
