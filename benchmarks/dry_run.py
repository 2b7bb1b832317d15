"""Time and peak memory of `snakemake -n` on the full-scale config.yaml, beside bare Snakemake
planning the same number of trivial jobs, and 2,000 of them; and the time of `snakemake plan`.

    .venv/bin/python benchmarks/dry_run.py [--repeat 5]

The workflow is copied into a temporary folder (no results there, so every job is planned); the
trivial Snakefile is one rule of `touch` jobs plus a target rule. The three run in turn, --repeat
times; figures are medians; the goal is under 10 s and 1 GB, within 1.5x of bare Snakemake. The
cost plan (`snakemake plan --cores 1`, its job forced) needs no model, GPU or network: the goal is
under 30 s.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

from measure import measure

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import copy_workflow  # noqa: E402  (the copy the workflow tests run in)

TRIVIAL_SNAKEFILE = """\
rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))

rule make:
    output: "out/{{i}}.txt"
    shell: "touch {{output}}"
"""


def trivial_workflow(dest: Path, jobs: int) -> Path:
    dest.mkdir()
    (dest / "Snakefile").write_text(TRIVIAL_SNAKEFILE.format(jobs=jobs))
    return dest


def dry_run(workdir: Path) -> tuple[float, int, int]:
    """Seconds, peak bytes and the planned job count of one `snakemake -n` in `workdir`."""
    seconds, peak, output = measure([sys.executable, "-m", "snakemake", "-n"], cwd=workdir)
    total = re.search(r"^total\s+(\d+)$", output, re.MULTILINE)
    return seconds, peak, int(total.group(1)) if total else 0


def plan_target(workdir: Path) -> float:
    """Seconds of one `snakemake plan --cores 1` in `workdir`, the plan job forced."""
    return measure([sys.executable, "-m", "snakemake", "plan", "--cores", "1", "--forcerun", "plan"], cwd=workdir)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scalequest-dry-run-") as tmp:
        ours = copy_workflow(Path(tmp) / "workflow")
        jobs = dry_run(ours)[2]
        names = ["ScaleQuest config.yaml"] + [f"bare Snakemake, {count} touch jobs" for count in (jobs - 1, 2000)]
        workdirs = [ours] + [trivial_workflow(Path(tmp) / f"trivial-{count}", count)  # `all` makes the last job
                             for count in (jobs - 1, 2000)]
        runs: list[list[tuple[float, int, int]]] = [[] for _ in workdirs]
        for _ in range(args.repeat):  # alternating, so that a busy moment of the machine hits every row alike
            for row, workdir in zip(runs, workdirs):
                row.append(dry_run(workdir))
        plan = statistics.median(plan_target(ours) for _ in range(args.repeat))
    seconds = [statistics.median(run[0] for run in row) for row in runs]
    peaks = [statistics.median(run[1] for run in row) for row in runs]
    print(f"{'snakemake -n':<34}{'jobs':>7}{'seconds':>9}{'peak MB':>9}{'ours/this time':>16}{'ours/this memory':>18}"
          f"{'  median of paired ratios':>26}")
    for index, (name, row) in enumerate(zip(names, runs)):
        paired = statistics.median(ours_run[0] / run[0] for ours_run, run in zip(runs[0], row))
        print(f"{name:<34}{row[0][2]:>7}{seconds[index]:>9.2f}{peaks[index] / 2**20:>9.0f}"
              f"{seconds[0] / seconds[index]:>16.2f}{peaks[0] / peaks[index]:>18.2f}{paired:>26.2f}")
    print(f"\ngoal: < 10 s and < 1024 MB, within 1.5x of bare Snakemake with as many jobs: {seconds[0]:.2f} s, "
          f"{peaks[0] / 2**20:.0f} MB, {seconds[0] / seconds[1]:.2f}x (median of {args.repeat} alternating runs)")
    print(f"snakemake plan --cores 1: {plan:.2f} s (goal: < 30 s; median of {args.repeat})")


if __name__ == "__main__":
    main()
