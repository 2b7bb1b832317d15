"""The snakemake command line's config arguments, checked before Snakemake reads them.

Snakemake reads the --configfile files before the Snakefile runs, and names neither file nor line for
a YAML error; `--configfile my.yaml TARGET` reads the target as a second config file (the option takes
every word after it); `--config respond.n=3` stops with a traceback. profiles/default, the workflow
profile Snakemake loads for every run in the checkout (beside a --profile), calls
stop_on_bad_command_line when it loads, which is before Snakemake reads the files."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from .config import ConfigError
from .config_files import load_config_file

CONFIG_FILE_OPTIONS = ("--configfile", "--configfiles")
CONFIG_OPTIONS = ("--config", "-C")
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def option_values(argv: Sequence[str], options: Sequence[str]) -> list[tuple[str, str]]:
    """(option, value) for each value of `options` in `argv`, as argparse reads a list option: every
    word after it up to the next option, or the part after `=`."""
    values, current = [], None
    for word in argv:
        if word == "--":
            current = None
        elif word.startswith("-"):
            name, equals, value = word.partition("=")
            current = name if name in options and not equals else None
            if name in options and equals:
                values.append((name, value))
        elif current:
            values.append((current, word))
    return values


def command_line_problems(argv: Sequence[str]) -> list[str]:
    """What is wrong with the config files and settings of a snakemake command line, each naming the
    word, file or line and saying what to do."""
    problems = []
    for option, path in option_values(argv, CONFIG_FILE_OPTIONS):
        if Path(path).suffix not in CONFIG_SUFFIXES and not Path(path).is_file():
            problems.append(f"'{path}' follows {option}, which reads every word after it as a config file: "
                            f"put targets before it (snakemake {path} {option} my.yaml), or write "
                            f"{option}=my.yaml")
            continue
        try:
            load_config_file(path)
        except ConfigError as error:
            target = "" if Path(path).exists() else f"; if {path} is a target, put targets before {option}"
            problems.append(f"{error}{target}")
    for option, setting in option_values(argv, CONFIG_OPTIONS):
        key, equals, value = setting.partition("=")
        if not equals:
            problems.append(f"'{setting}' follows {option}, which reads every word after it as a key=value "
                            f"setting: put targets before it, or write a --configfile")
        elif "." in key or _nested_with_numbers(value):
            problems.append(f"{option} {setting}: --config sets top-level keys only, and reads a nested value's "
                            f"numbers and booleans as text. Write the setting in a YAML file (e.g. my.yaml: "
                            f"`{key.split('.')[0]}: {{...}}`) and pass it with --configfile my.yaml")
    return problems


def _nested_with_numbers(value: str) -> bool:
    """Whether a --config value is a mapping or list holding a number or boolean, which Snakemake would
    hand on as text (`respond={n: 3}`: n is '3'); nested text is read as written."""
    if not value.lstrip().startswith(("{", "[")):
        return False
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return False  # Snakemake names it

    def leaves(node: Any) -> list:
        if isinstance(node, dict):
            return [leaf for item in node.values() for leaf in leaves(item)]
        if isinstance(node, list):
            return [leaf for item in node for leaf in leaves(item)]
        return [node]

    return any(isinstance(leaf, (int, float, bool)) for leaf in leaves(parsed))


def stop_on_bad_command_line(argv: Sequence[str]) -> None:
    """Print the command line's problems and exit 1, before Snakemake reads anything."""
    problems = command_line_problems(argv)
    if problems:
        print("\n".join(f"Configuration error: {problem}" for problem in problems), file=sys.stderr)
        sys.exit(1)
