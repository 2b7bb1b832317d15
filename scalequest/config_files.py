"""Reading config files strictly: every problem names the file and, where it has one, the line and
column. Snakemake's own loader names neither for a YAML error, and keeps the last of two equal keys."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import yaml

from .config import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigFileError(ConfigError):
    """A config file cannot be read as a mapping of settings; the message names file and line."""


class _UniqueKeys:
    """A loader mixin that rejects a key given twice in one mapping (SafeLoader keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # keys merged in with `<<: *anchor` may be overridden on purpose
                continue
            key = self.construct_object(key_node, deep=False)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in first_lines:
                raise ConfigFileError(f"{key_node.start_mark.name}:{line}: duplicate key '{key}' (first at line "
                                      f"{first_lines[key]}): YAML would keep only the last value; remove one of them")
            first_lines.setdefault(key, line)
        return super().construct_mapping(node, deep=deep)


class UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """yaml.SafeLoader that rejects a key given twice in one mapping; its marks name the file."""


# libyaml's parser, where PyYAML has it: about 8x faster on config.yaml. A file it rejects (or that
# has a duplicate key) is read again with UniqueKeyLoader, whose messages name file, line and column.
_FastUniqueKeyLoader = type("_FastUniqueKeyLoader", (_UniqueKeys, yaml.CSafeLoader), {}) \
    if hasattr(yaml, "CSafeLoader") else None


def load_config_file(path: str | Path) -> dict:
    """The settings in one YAML (or JSON) config file. Raises ConfigFileError naming the file, and
    the line and column of a syntax error or a duplicate key."""
    text = _read_text(path)
    try:
        loaded = _load_yaml(text, path)
    except yaml.YAMLError as err:
        try:  # JSON that PyYAML cannot read (JSON may indent with tabs), as Snakemake accepts it
            loaded = json.loads(text, object_pairs_hook=lambda pairs: _unique_json_object(pairs, path))
        except json.JSONDecodeError:
            raise _syntax_error(err, text, path) from None
    if loaded is None:
        raise ConfigFileError(f"{path}: the file is empty (or only comments); a config file holds settings "
                              "as `key: value` lines: add some, or leave the file out")
    if not isinstance(loaded, dict):
        kind = "list" if isinstance(loaded, list) else f"single value ({loaded!r})"
        raise ConfigFileError(f"{path}: the top level is a {kind}; a config file holds settings as "
                              "`key: value` lines (not `- item` lines)")
    return loaded


def check_config_files(workflow_files: Iterable[str | Path], command_line: Iterable[str | Path] = ()) -> None:
    """Raise ConfigFileError for the first file load_config_file rejects: of the Snakefile's
    `configfile:` files those that exist (Snakemake names a missing one itself), then the
    --configfile files."""
    for path in [*(path for path in workflow_files if Path(path).exists()), *command_line]:
        load_config_file(path)


def _read_text(path: str | Path) -> str:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such config file (relative paths start in {Path.cwd()}); "
                              "check the path") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{path}: is a folder, not a config file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigFileError(f"{path}:{line}: byte 0x{data[err.start]:02x} is not valid UTF-8; save the file "
                              "as UTF-8") from None


def _load_yaml(text: str, path: str | Path) -> Any:
    if _FastUniqueKeyLoader is not None:
        fast = _FastUniqueKeyLoader(text)
        try:
            return fast.get_single_data()
        except (yaml.YAMLError, ConfigFileError):
            pass  # read it again below, for the message
        finally:
            fast.dispose()
    loader = UniqueKeyLoader(text)
    loader.name = str(path)  # the marks of errors and keys name the file (PyYAML names a string "<unicode string>")
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _syntax_error(err: yaml.YAMLError, text: str, path: str | Path) -> ConfigFileError:
    if isinstance(err, yaml.reader.ReaderError):  # a control character, found before any parsing
        line = text.count("\n", 0, err.position) + 1
        return ConfigFileError(f"{path}:{line}: not valid YAML: character #x{err.character:02x} is not allowed "
                               "(a control character); remove it")
    mark, start = err.problem_mark, err.context_mark
    # The context says where the construct the parser gave up on began (an unclosed bracket or quote).
    context = f" ({err.context} at line {start.line + 1}, column {start.column + 1})" if err.context and start else ""
    hint = "; indent with spaces: YAML does not allow tabs" if "'\\t'" in err.problem else ""
    return ConfigFileError(f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {err.problem}{context}{hint}")


def _unique_json_object(pairs: list[tuple[str, Any]], path: str | Path) -> dict:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ConfigFileError(f"{path}: duplicate key '{duplicates[0]}' in a JSON object: JSON would keep only "
                              "the last value; remove one of them")
    return dict(pairs)
