"""What a node offers a GPU job, as the preflight sees it: the NVIDIA driver and the GPUs (from
`nvidia-smi`'s query output), the CUDA build of this environment's torch and whether it initialises,
and whether vLLM imports and which device it targets."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

# nvidia-smi fields, in order; compute_cap needs driver 510+ (older drivers refuse the whole query).
GPU_FIELDS = ("index", "name", "driver_version", "memory.total", "compute_cap")
# The oldest driver each CUDA major release runs on with minor-version compatibility (NVIDIA's CUDA
# Toolkit release notes, "CUDA Driver" table: >= 525.60.13 for 12.x, >= 580 for 13.x on Linux).
MIN_DRIVER = {12: "525.60.13", 13: "580.65.06"}
# The CUDA of the torch wheel that PyPI serves for Linux x86_64, by torch release: what a cluster
# environment pinned to that release installs (a CPU build here stands for it in a rehearsal).
PYPI_TORCH_CUDA = {"2.6": "12.4", "2.7": "12.6", "2.8": "12.8", "2.9": "12.8", "2.10": "12.8", "2.11": "13.0",
                   "2.12": "13.0", "2.13": "13.0"}


class NvidiaSmiError(RuntimeError):
    """nvidia-smi is missing, failed, or answered something this module cannot read."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    driver: str
    memory_mib: int | None  # None: [N/A] (e.g. a MIG parent)
    compute_capability: str | None  # "9.0"; None: the driver cannot tell (older than 510)


def parse_gpu_query(text: str) -> list[Gpu]:
    """Rows of `nvidia-smi --query-gpu=index,name,driver_version,memory.total[,compute_cap]
    --format=csv[,noheader][,nounits]`: with or without the header line and the " MiB" units."""
    gpus = []
    for line in text.strip().splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if not cells or cells[0] in ("index", "") or not cells[0].isdigit():
            continue  # the header line, or a blank one
        if len(cells) < 4:
            raise NvidiaSmiError(f"nvidia-smi answered a row with {len(cells)} fields: {line!r}")
        memory = re.match(r"(\d+)", cells[3])
        capability = cells[4] if len(cells) > 4 and re.fullmatch(r"\d+\.\d+", cells[4]) else None
        gpus.append(Gpu(int(cells[0]), cells[1], cells[2], int(memory[1]) if memory else None, capability))
    return gpus


def query_gpus(nvidia_smi: str = "nvidia-smi") -> list[Gpu]:
    """The GPUs this process may use, as nvidia-smi lists them (under Slurm's device cgroup, only the
    job's). A driver too old for compute_cap is asked again without it."""
    if not shutil.which(nvidia_smi):
        raise NvidiaSmiError(f"{nvidia_smi} is not on PATH: no NVIDIA driver on this node")
    for fields in (GPU_FIELDS, GPU_FIELDS[:-1]):
        result = subprocess.run([nvidia_smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return parse_gpu_query(result.stdout)
    raise NvidiaSmiError(f"{nvidia_smi} failed ({result.returncode}): {(result.stdout + result.stderr).strip()}")


def visible_gpus(gpus: list[Gpu]) -> list[Gpu]:
    """The GPUs of CUDA_VISIBLE_DEVICES (Slurm sets it to the job's), all when it is unset."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    wanted = [item.strip() for item in visible.split(",") if item.strip()]
    chosen = [gpu for gpu in gpus if str(gpu.index) in wanted]
    return chosen if len(chosen) == len(wanted) else gpus[:len(wanted)]  # UUIDs or renumbered under a cgroup


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def torch_cuda(torch_version: str, cuda: str | None) -> tuple[str | None, bool]:
    """The CUDA this torch needs, and whether it is the build's own (False: a CPU build, judged by the
    CUDA of the same release's PyPI wheel, which is what the cluster's environment installs)."""
    if cuda:
        return cuda, True
    release = ".".join(torch_version.split("+")[0].split(".")[:2])
    return PYPI_TORCH_CUDA.get(release), False


def min_driver(cuda: str) -> str:
    """The oldest driver a CUDA version runs on (minor-version compatibility within a major release)."""
    major = version_tuple(cuda)[0]
    return MIN_DRIVER.get(major, MIN_DRIVER[max(MIN_DRIVER)])


@dataclass
class NodeFacts:
    """Everything the checks read, gathered once; kept in the report as found."""

    node: str
    gpus: list[Gpu] = field(default_factory=list)
    nvidia_smi_error: str | None = None
    torch_version: str | None = None
    torch_cuda: str | None = None  # the build's own CUDA (None: a CPU build)
    cuda_devices: int | None = None  # torch.cuda.device_count() when CUDA initialised
    cuda_error: str | None = None
    vllm_version: str | None = None
    vllm_device: str | None = None  # vLLM's platform: cuda, cpu, ...
    vllm_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def node_name() -> str:
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def gather(nvidia_smi: str = "nvidia-smi", vllm: bool = False) -> NodeFacts:
    """The node's facts: its GPUs, this environment's torch (and vLLM when asked). Failures are facts too."""
    facts = NodeFacts(node_name())
    try:
        facts.gpus = visible_gpus(query_gpus(nvidia_smi))
    except (NvidiaSmiError, OSError, subprocess.SubprocessError) as error:
        facts.nvidia_smi_error = str(error)
    _gather_torch(facts)
    if vllm:
        _gather_vllm(facts)
    return facts


def _gather_torch(facts: NodeFacts) -> None:
    try:
        import torch
    except Exception as error:  # a broken install raises anything
        facts.cuda_error = f"torch does not import: {type(error).__name__}: {error}"
        return
    facts.torch_version, facts.torch_cuda = torch.__version__, torch.version.cuda
    if not facts.torch_cuda:
        return
    try:
        torch.cuda.init()
        facts.cuda_devices = torch.cuda.device_count()
    except Exception as error:  # "driver too old", "no CUDA-capable device", ...
        facts.cuda_error = f"{type(error).__name__}: {error}"


# Run apart: an import that crashes (a wrong CUDA build can abort the interpreter) is then a finding.
VLLM_PROBE = "import vllm; from vllm.platforms import current_platform as p; print(vllm.__version__, p.device_type)"


def _gather_vllm(facts: NodeFacts) -> None:
    try:
        result = subprocess.run([sys.executable, "-c", VLLM_PROBE], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as error:
        facts.vllm_error = f"vLLM's import could not be tried: {error}"
        return
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or len(lines[-1].split()) != 2:
        tail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        facts.vllm_error = f"vLLM does not import: {tail}"
        return
    facts.vllm_version, facts.vllm_device = lines[-1].split()
