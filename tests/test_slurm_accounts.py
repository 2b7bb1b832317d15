"""Accounts on a real Slurm with accounting (the test cluster's slurmdbd + mariadb, associations
enforced): a wrong account is refused at submission with the accounts that exist, while the rest of the
workflow goes on; the right one runs."""
from __future__ import annotations

import pytest

from conftest import copy_run
from slurm_runs import profile_env, run_on_slurm

pytestmark = pytest.mark.slurm
CHECKED = "results/tiny/minhash/deepseek-math/00000.parquet"


def test_a_wrong_account_is_refused_with_the_valid_ones(slurm_cluster, demo_run, tmp_path):
    workdir = copy_run(demo_run, tmp_path / "wf")
    (workdir / CHECKED).unlink()
    wrong = run_on_slurm(workdir, slurm_cluster, CHECKED, env=profile_env(account="no-such-account"), check=False,
                         timeout=300)
    output = wrong.stdout + wrong.stderr
    assert wrong.returncode != 0 and "Error in rule screen" in output
    assert "The given account no-such-account appears to be invalid. Available accounts:" in output
    assert slurm_cluster.account in output.split("Available accounts:")[1]
    assert not (workdir / CHECKED).exists()
    run_on_slurm(workdir, slurm_cluster, CHECKED, env=profile_env(account=slurm_cluster.account), timeout=300)
    assert (workdir / CHECKED).is_file()
