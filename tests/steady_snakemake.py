"""`python -m snakemake`, with the Slurm executor plugin checking the test cluster's jobs at a steady pace.

After each status check that finds no job ended, the plugin (2.8.0) waits 10 s longer before the next,
up to 3 minutes: right for a real cluster, where jobs run for hours, but on the test cluster, where they
run for seconds, each job of a chain is then noticed up to minutes after it ended. Here the wait stays
at most STEADY_SECONDS (the tests start with --slurm-init-seconds-before-status-checks 1). Nothing
else of snakemake or the plugin changes: tests/slurm_runs.py runs the workflow with this instead of
`python -m snakemake`."""
import runpy

from snakemake_executor_plugin_slurm import Executor
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor

STEADY_SECONDS = 2

_wait = RemoteExecutor.next_seconds_between_status_checks
Executor.next_seconds_between_status_checks = property(
    _wait.fget, lambda executor, seconds: _wait.fset(executor, min(seconds, STEADY_SECONDS)))

if __name__ == "__main__":
    runpy.run_module("snakemake", run_name="__main__", alter_sys=True)
