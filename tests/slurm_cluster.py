"""A real Slurm cluster on localhost for tests and by hand: munged, slurmctld and one or more
slurmd (fake GPUs as character devices), optionally mariadb + slurmdbd for accounting.

Every file lives under one root directory (config, munge key and socket, state, logs, fake GPUs);
ports are picked free on 127.0.0.1. The one global change: /etc/slurm/slurm.conf and gres.conf
become symlinks to the root's config for as long as the cluster runs (the Snakemake jobstep
plugin strips SLURM_CONF before its inner srun), restored on stop. Needs root and Debian's
slurm-wlm + munge (installed with apt when missing).

From pytest::

    from slurm_cluster import SlurmCluster
    with SlurmCluster(tmp_path / "slurm", nodes=2) as cluster:
        subprocess.run(["snakemake", "--executor", "slurm", "--jobs", "4",
                        *cluster.snakemake_args()], env=cluster.env, timeout=300)

A job that asks for N GPUs (N <= gpus_per_node) gets CUDA_VISIBLE_DEVICES=0,...,N-1 (any count:
one character device and one gres.conf line per GPU). To steer a workflow's jobs, cluster.jobs()
lists squeue's jobs (state, and the Snakemake rule from the plugin's --comment), and suspend(),
resume(), cancel(), signal(), requeue(), release() and wait_until_no_jobs_run() act on them.

By hand (stays up until stopped; `stop` works from any later shell)::

    python tests/slurm_cluster.py start --root /tmp/slurm [--nodes 2] [--gpus-per-node N] [--accounting]
    python tests/slurm_cluster.py status --root /tmp/slurm
    python tests/slurm_cluster.py stop --root /tmp/slurm
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ETC = Path("/etc/slurm")
GLOBAL_FILES = ("slurm.conf", "gres.conf")
STATE_FILE = "cluster.json"
CLUSTER_NAME = "testcluster"
SBIN_PATH = f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin{os.pathsep}/sbin"
SLURM_PACKAGES = ("slurm-wlm", "munge")
SLURM_BINARIES = ("slurmctld", "slurmd", "munged", "sinfo")
ACCOUNTING_PACKAGES = ("slurmdbd", "mariadb-server")
ACCOUNTING_BINARIES = ("slurmdbd", "mariadbd", "mariadb-install-db", "mariadb", "sacctmgr")


# ---------------------------------------------------------------- installation

def ensure_installed(accounting: bool = False) -> None:
    """Install Slurm + munge (and mariadb + slurmdbd) with apt unless their binaries exist."""
    binaries = SLURM_BINARIES + (ACCOUNTING_BINARIES if accounting else ())
    if all(shutil.which(name, path=SBIN_PATH) for name in binaries):
        return
    packages = SLURM_PACKAGES + (ACCOUNTING_PACKAGES if accounting else ())
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not all(_apt_candidate(package) for package in packages):
        _apt(["apt-get", "update"], env)
    with _no_service_starts():
        _apt(["apt-get", "install", "-y", "--no-install-recommends", *packages], env)
    missing = [name for name in binaries if not shutil.which(name, path=SBIN_PATH)]
    if missing:
        raise RuntimeError(f"apt installed {' '.join(packages)} but {missing} are still missing")


def _apt_candidate(package: str) -> bool:
    """Whether apt's package lists already know `package` (else an `apt-get update` is needed)."""
    out = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True).stdout
    return "Candidate:" in out and "Candidate: (none)" not in out


def _apt(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({result.returncode}); Slurm needs root on "
                           f"Debian/Ubuntu:\n{(result.stdout + result.stderr)[-3000:]}")


class _no_service_starts:
    """A temporary policy-rc.d, so that apt does not start system-wide munge/slurm/mariadb
    services (their init scripts exist) that no harness would own or stop."""
    path = Path("/usr/sbin/policy-rc.d")

    def __enter__(self) -> None:
        self.created = not self.path.exists()
        if self.created:
            self.path.write_text("#!/bin/sh\nexit 101\n")
            self.path.chmod(0o755)

    def __exit__(self, *exc: object) -> None:
        if self.created:
            self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------- processes

def _start_time(pid: int) -> int | None:
    """The kernel start time of a live, non-zombie process (None if gone), so a recorded PID is
    only ever signalled while it still names the process the harness started."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else int(fields[19])


def _stopped(pid: int) -> bool:
    """Whether a process is stopped by a signal (state T or t), or gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in "TtZX"


def _alive(record: Sequence[int]) -> bool:
    pid, started = record
    return _start_time(pid) == started


def _children() -> dict[int, list[int]]:
    """Parent PID -> child PIDs, from /proc."""
    tree: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat_file.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(stat_file.parent.name))
    return tree


def _descendants(pids: Sequence[int]) -> list[list[int]]:
    """[pid, start time] of every live descendant of `pids` (a job's tasks under slurmstepd)."""
    tree, found, todo = _children(), [], list(pids)
    while todo:
        for child in tree.get(todo.pop(), []):
            started = _start_time(child)
            if started is not None:
                found.append([child, started])
                todo.append(child)
    return found


def _terminate(record: Sequence[int], timeout: float) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL: only while `record` is still that process."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not _alive(record):
            return
        os.kill(record[0], sig)
        deadline = time.monotonic() + wait
        while _alive(record) and time.monotonic() < deadline:
            time.sleep(0.1)
        _reap(record[0])


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child (otherwise init does)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------- the cluster

@dataclass(frozen=True)
class Partition:
    """A partition over the first `nodes` nodes (all when None); the first one in a cluster's list is
    the default."""
    name: str
    max_time: str = "INFINITE"  # minutes, or Slurm's INFINITE
    nodes: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Partition:
        """NAME, NAME:MAXTIME or NAME:MAXTIME:NODES (the CLI's form)."""
        name, _, rest = spec.partition(":")
        max_time, _, nodes = rest.partition(":")
        return cls(name, max_time or "INFINITE", int(nodes) if nodes else None)

    def spec(self) -> str:
        return f"{self.name}:{self.max_time}" + (f":{self.nodes}" if self.nodes else "")


# Job states after which a job holds nothing and runs nothing (squeue -t all lists them for MinJobAge).
ENDED_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                          "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED", "SPECIAL_EXIT"})


@dataclass(frozen=True)
class SlurmJob:
    """One line of squeue: id, state (RUNNING, SUSPENDED, COMPLETED...), name and comment."""
    id: str
    state: str
    name: str
    comment: str

    @property
    def rule(self) -> str | None:
        """The Snakemake rule, from the comment the Slurm executor plugin gives each job
        (`rule_<rule>` or `rule_<rule>_wildcards_<values>`); None for other jobs."""
        if not self.comment.startswith("rule_"):
            return None
        return self.comment[len("rule_"):].split("_wildcards_", 1)[0]

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES


class SlurmCluster:
    """A Slurm cluster whose files all live under `root`; start()/stop() or a `with` block."""

    def __init__(self, root: Path | str, nodes: int = 1, gpus_per_node: int | None = None,
                 cpus_per_node: int = 8, memory_mb: int = 19000,
                 partitions: Sequence[Partition | str] = (Partition("debug"),),
                 accounting: bool = False, account: str = "testacct") -> None:
        """gpus_per_node defaults to 2 on one node and 1 per node on several."""
        if nodes < 1 or not partitions:
            raise ValueError("a cluster needs at least one node and one partition")
        self.root = Path(root).resolve()
        self.nodes = nodes
        self.gpus_per_node = (2 if nodes == 1 else 1) if gpus_per_node is None else gpus_per_node
        self.cpus_per_node = cpus_per_node
        self.memory_mb = memory_mb
        self._partitions = [p if isinstance(p, Partition) else Partition.parse(p) for p in partitions]
        self.accounting = accounting
        self.account = account
        self.ports: dict[str, int] = {}
        self.pids: dict[str, list[int]] = {}  # name -> [pid, start time], in start order
        self.etc_dir_created = False

    # ---- public API

    @property
    def node_names(self) -> list[str]:
        return ["localhost"] if self.nodes == 1 else [f"node{i}" for i in range(1, self.nodes + 1)]

    @property
    def partitions(self) -> list[str]:
        return [p.name for p in self._partitions]

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus SLURM_CONF for this cluster (the /etc/slurm symlinks also point here)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def snakemake_args(self, partition: str | None = None, account: str | None = None) -> list[str]:
        """Arguments for `snakemake --executor slurm --jobs N ...` against this cluster (they replace
        a profile's default-resources: with a profile, use status_args())."""
        resources = [f"slurm_partition={partition or self.partitions[0]}", "runtime=10"]
        if self.accounting:
            resources.append(f"slurm_account={account or self.account}")
        return ["--default-resources", *resources, *self.status_args()]

    def status_args(self) -> list[str]:
        """How the Slurm plugin should poll this cluster: squeue, which MinJobAge keeps ended jobs in.
        Not sacct: without slurmdbd it fails and the plugin drops the jobs; with it, a job ended by
        scancel reads "CANCELLED by <uid>", which plugin 2.8.0 does not take for failed (it waits on
        the job for ever)."""
        return ["--slurm-status-command", "squeue",
                # first check after 1 s, not 40 s; squeue needs MinJobAge >= 3 x this
                "--slurm-init-seconds-before-status-checks", "1"]

    def logs(self, lines: int = 30) -> str:
        """The last `lines` of every daemon log, for failure messages."""
        parts = []
        for log in sorted((self.root / "log").glob("*")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"==> {log} <==\n" + "\n".join(tail))
        return "\n".join(parts)

    def running(self) -> bool:
        """Whether every daemon this cluster started is alive."""
        return bool(self.pids) and all(_alive(record) for record in self.pids.values())

    # ---- jobs (what a test needs to steer a workflow's jobs)

    def jobs(self) -> list[SlurmJob]:
        """Every job slurmctld knows, ended ones included (for MinJobAge, 5 minutes), by id."""
        out = self._run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%j|%k"])
        jobs = [SlurmJob(*line.split("|", 3)) for line in out.splitlines() if line.strip()]
        return sorted(jobs, key=lambda job: int(job.id.split("_")[0]))

    def job_pids(self, job_id: str) -> list[int]:
        """The PIDs of a job's processes on its nodes (batch script, steps, their children)."""
        out = self._run(["scontrol", "listpids", job_id])
        return [int(line.split()[0]) for line in out.splitlines()[1:] if line.split()]

    def suspend(self, job_id: str, timeout: float = 30) -> None:
        """Freeze a running job (SIGSTOP to all its processes; `scontrol resume` thaws it) and return
        once squeue says SUSPENDED and every process of the job is stopped."""
        self._run(["scontrol", "suspend", job_id])

        def frozen() -> bool:
            state = next((job.state for job in self.jobs() if job.id == job_id), None)
            return state == "SUSPENDED" and all(_stopped(pid) for pid in self.job_pids(job_id))
        self._wait(f"job {job_id} to be suspended", frozen, time.monotonic() + timeout, list(self.pids))

    def resume(self, job_id: str, timeout: float = 30) -> None:
        """Thaw a suspended job and return once none of its processes is stopped: until slurmstepd has
        thawed a step it drops the signals sent to it (scancel --signal)."""
        self._run(["scontrol", "resume", job_id])

        def thawed() -> bool:
            state = next((job.state for job in self.jobs() if job.id == job_id), None)
            if state != "RUNNING":
                return state != "SUSPENDED"  # ended meanwhile
            try:
                return not any(_stopped(pid) for pid in self.job_pids(job_id))
            except RuntimeError:  # it ended between the two queries
                return False
        self._wait(f"job {job_id} to be resumed", thawed, time.monotonic() + timeout, list(self.pids))

    def cancel(self, *job_ids: str) -> None:
        if job_ids:
            self._run(["scancel", *job_ids])

    def signal(self, job_id: str, name: str) -> None:
        """Send signal `name` (USR1, TERM...) to every process of a running job's steps, not its batch
        script, as `sbatch --signal=NAME@T` does before the time limit. (cancel(), a time limit and
        preemption send SIGCONT and SIGTERM to every process, SIGKILL KillWait seconds later.)"""
        self._run(["scancel", f"--signal={name}", job_id])

    def requeue(self, job_id: str, timeout: float = 60) -> None:
        """Requeue a running job (its processes get SIGTERM, then SIGKILL) as preemption with
        PreemptMode=REQUEUE does; return once it is pending again (same id). Slurm then holds it for two
        minutes (reason BeginTime): release() lets it start at once."""
        self._run(["scontrol", "requeue", job_id])

        def pending() -> bool:
            return next((job.state for job in self.jobs() if job.id == job_id), None) == "PENDING"
        self._wait(f"job {job_id} to be pending again", pending, time.monotonic() + timeout, list(self.pids))

    def release(self, job_id: str) -> None:
        """Let a pending job start now (lifts the hold Slurm puts on a requeued job)."""
        self._run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"])

    def wait_until_no_jobs_run(self, timeout: float = 600) -> None:
        """Return once every job has ended (none pending, running, suspended or completing)."""
        self._wait("every job to end", lambda: all(job.ended for job in self.jobs()),
                   time.monotonic() + timeout, list(self.pids), interval=1)

    def start(self, timeout: float = 60) -> SlurmCluster:
        """Install if needed, write the config, start the daemons, wait until all nodes are idle."""
        ensure_installed(self.accounting)
        self._load()
        if any(_alive(record) for record in self.pids.values()):
            raise RuntimeError(f"a cluster under {self.root} is already running; stop it first")
        _refuse_if_etc_taken(self.root)
        self.pids = {}
        try:
            self._prepare()
            self._claim_etc()
            self._start_daemons(time.monotonic() + timeout)
        except BaseException as error:
            logs = self.logs()
            self.stop()
            if isinstance(error, Exception):
                raise RuntimeError(f"Slurm cluster under {self.root} failed to start: {error}\n{logs}") from error
            raise
        return self

    def stop(self, timeout: float = 20) -> None:
        """Cancel jobs, stop exactly the processes start() recorded, restore /etc/slurm."""
        self._load()
        if "slurmctld" in self.pids and _alive(self.pids["slurmctld"]):
            self._cancel_jobs(timeout)
        for name in reversed(list(self.pids)):
            _terminate(self.pids[name], timeout)
        for record in reversed(self._stray_steps()):  # jobs that outlived scancel (slurmctld died)
            _terminate(record, 1)  # slurmstepd ignores SIGTERM
        self._restore_etc()
        self.pids = {}
        self._save()

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def from_root(cls, root: Path | str) -> SlurmCluster:
        """The cluster recorded under `root` (for stop/status from another process)."""
        state = json.loads((Path(root) / STATE_FILE).read_text())
        cluster = cls(root, **state["settings"])
        cluster._load()
        return cluster

    # ---- state on disk

    def _settings(self) -> dict:
        return {"nodes": self.nodes, "gpus_per_node": self.gpus_per_node, "cpus_per_node": self.cpus_per_node,
                "memory_mb": self.memory_mb, "accounting": self.accounting, "account": self.account,
                "partitions": [p.spec() for p in self._partitions]}

    def _save(self) -> None:
        state = {"settings": self._settings(), "ports": self.ports, "pids": self.pids,
                 "etc_dir_created": self.etc_dir_created}
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / STATE_FILE).write_text(json.dumps(state, indent=1))

    def _load(self) -> None:
        path = self.root / STATE_FILE
        if path.exists():
            state = json.loads(path.read_text())
            self.ports, self.pids = state["ports"], state["pids"]
            self.etc_dir_created = state["etc_dir_created"]

    # ---- files

    def _prepare(self) -> None:
        """Directories, munge key, fake GPUs, ports and config files under root."""
        for sub in ("etc", "log", "run", "state/ctld", "munge", "etc-backup",
                    *(f"state/d/{node}" for node in self.node_names)):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o711)  # munged wants its socket dir writable by its owner only
        self._write_munge_key()
        self._make_fake_gpus()
        names = ["slurmctld", *self.node_names] + (["slurmdbd", "mariadb"] if self.accounting else [])
        self.ports = dict(zip(names, _free_ports(len(names))))
        self.conf.write_text(self._slurm_conf())
        (self.root / "etc" / "gres.conf").write_text(self._gres_conf())
        if self.accounting:
            self._write_slurmdbd_conf()
        self._save()

    def _write_munge_key(self) -> None:
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(secrets.token_bytes(128))
        key.chmod(0o600)

    def _gpu_files(self, node: str) -> list[Path]:
        return [self.root / "fakegpu" / node / f"nvidia{i}" for i in range(self.gpus_per_node)]

    def _make_fake_gpus(self) -> None:
        """Character devices (like /dev/null): with plain files Slurm schedules the GPUs but leaves
        CUDA_VISIBLE_DEVICES empty."""
        for node in self.node_names:
            for path in self._gpu_files(node):
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))

    def _node_line(self, node: str) -> str:
        gres = f" Gres=gpu:fake:{self.gpus_per_node}" if self.gpus_per_node else ""
        return (f"NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 Port={self.ports[node]} "
                f"CPUs={self.cpus_per_node} Boards=1 SocketsPerBoard=1 CoresPerSocket={self.cpus_per_node} "
                f"ThreadsPerCore=1 RealMemory={self.memory_mb}{gres} State=UNKNOWN")

    def _slurm_conf(self) -> str:
        r, munge = self.root, self.root / "munge" / "munge.socket.2"
        lines = [
            f"ClusterName={CLUSTER_NAME}",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={self.ports['slurmctld']}",
            f"SlurmdPort={self.ports[self.node_names[0]]}",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={munge}",
            "SlurmUser=root", "SlurmdUser=root",
            # state, spool, pid files and logs under root, never in /var or /run
            f"StateSaveLocation={r}/state/ctld", f"SlurmdSpoolDir={r}/state/d/%n",
            f"SlurmctldPidFile={r}/run/slurmctld.pid", f"SlurmdPidFile={r}/run/slurmd-%n.pid",
            f"SlurmctldLogFile={r}/log/slurmctld.log", f"SlurmdLogFile={r}/log/slurmd-%n.log",
            # no cgroups in containers
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "MpiDefault=none", "SwitchType=switch/none", "ReturnToService=2",
            # schedule on submit, no batching delay
            "SchedulerType=sched/backfill", "SchedulerParameters=batch_sched_delay=0,bf_interval=1",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            # reject a job over a partition's limits at submission instead of leaving it pending
            "EnforcePartLimits=ALL",
            # without it a job that names no memory takes the whole node
            "DefMemPerCPU=1000",
            # advertise CPUs/memory beyond the machine's, so one DAG level runs in one wave
            "SlurmdParameters=config_overrides",
            "GresTypes=gpu", "JobAcctGatherType=jobacct_gather/none", "JobCompType=jobcomp/none",
            # finished jobs stay visible to squeue (--slurm-status-command squeue) for 5 minutes
            "MinJobAge=300",
            "InactiveLimit=0", "KillWait=5", "Waittime=0", "MailProg=/bin/true",
            # a job can be requeued only if submitted with --requeue, as where admins turn the default off
            "JobRequeue=0",
            *self._accounting_lines(),
            *(self._node_line(node) for node in self.node_names),
            *(f"PartitionName={p.name} Nodes={','.join(self.node_names[:p.nodes]) if p.nodes else 'ALL'} "
              f"Default={'YES' if i == 0 else 'NO'} MaxTime={p.max_time} State=UP"
              for i, p in enumerate(self._partitions)),
        ]
        return "\n".join(lines) + "\n"

    def _accounting_lines(self) -> list[str]:
        if not self.accounting:
            return ["AccountingStorageType=accounting_storage/none"]
        return ["AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=127.0.0.1",
                f"AccountingStoragePort={self.ports['slurmdbd']}",
                # with munge this names the munge socket; without it slurmctld can't reach slurmdbd
                f"AccountingStoragePass={self.root / 'munge' / 'munge.socket.2'}",
                "AccountingStorageEnforce=associations,limits",
                # sacct shows the job's comment, where the Snakemake plugin names the rule
                "AccountingStoreFlags=job_comment"]

    def _gres_conf(self) -> str:
        lines = ["AutoDetect=off"]
        for node in self.node_names:
            lines += [f"NodeName={node} Name=gpu Type=fake File={path}" for path in self._gpu_files(node)]
        return "\n".join(lines) + "\n"

    def _write_slurmdbd_conf(self) -> None:
        """slurmdbd reads slurmdbd.conf beside $SLURM_CONF; it must be mode 600."""
        r = self.root
        lines = ["AuthType=auth/munge", f"AuthInfo=socket={r}/munge/munge.socket.2",
                 "DbdHost=localhost", "DbdAddr=127.0.0.1", f"DbdPort={self.ports['slurmdbd']}",
                 "SlurmUser=root", f"LogFile={r}/log/slurmdbd.log", f"PidFile={r}/run/slurmdbd.pid",
                 "StorageType=accounting_storage/mysql", "StorageHost=127.0.0.1",
                 f"StoragePort={self.ports['mariadb']}", "StorageUser=slurm",
                 f"StoragePass={secrets.token_hex(16)}", "StorageLoc=slurm_acct_db"]
        path = r / "etc" / "slurmdbd.conf"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)

    # ---- /etc/slurm

    def _claim_etc(self) -> None:
        """Point /etc/slurm/{slurm,gres}.conf here, keeping whatever was there under root."""
        owner = _etc_owner()
        if owner is not None:  # a harness that died without stop(): put back what it had saved
            SlurmCluster.from_root(owner)._restore_etc()
        if not ETC.exists():
            ETC.mkdir(parents=True)
            self.etc_dir_created = True
        for name in GLOBAL_FILES:
            link = ETC / name
            if os.path.lexists(link):
                shutil.move(link, self.root / "etc-backup" / name)
            link.symlink_to(self.root / "etc" / name)
        self._save()

    def _restore_etc(self) -> None:
        for name in GLOBAL_FILES:
            link, saved = ETC / name, self.root / "etc-backup" / name
            if link.is_symlink() and Path(os.readlink(link)) == self.root / "etc" / name:
                link.unlink()
            if os.path.lexists(saved) and not os.path.lexists(link):
                shutil.move(saved, link)
        if self.etc_dir_created and ETC.is_dir() and not any(ETC.iterdir()):
            ETC.rmdir()
            self.etc_dir_created = False

    # ---- daemons

    def _spawn(self, name: str, argv: list[str]) -> None:
        """Start a daemon in the foreground in its own session (it outlives a CLI `start` and
        ignores the caller's Ctrl-C) and record its PID at once."""
        with (self.root / "log" / f"{name}.out").open("ab") as out:
            process = subprocess.Popen([shutil.which(argv[0], path=SBIN_PATH) or argv[0], *argv[1:]],
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       env=self.env, start_new_session=True)
        self.pids[name] = [process.pid, _start_time(process.pid) or 0]
        self._save()

    def _wait(self, what: str, ready: Callable[[], bool], deadline: float, names: Sequence[str],
              interval: float = 0.1) -> None:
        """Poll `ready()` until it holds; fail early if a daemon in `names` has died."""
        while not ready():
            dead = [name for name in names if not _alive(self.pids[name])]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(interval)

    def _start_daemons(self, deadline: float) -> None:
        r = self.root
        socket_path = r / "munge" / "munge.socket.2"
        # --force: pytest's tmp dirs are mode 700, which munged refuses for its socket unless
        # forced (harmless here: every client and job runs as root); it logs to stdout (*.out)
        self._spawn("munged", ["munged", "--foreground", "--force", f"--key-file={r}/munge/munge.key",
                               f"--socket={socket_path}", f"--pid-file={r}/run/munged.pid",
                               f"--seed-file={r}/munge/munged.seed"])
        self._wait("the munge socket", socket_path.exists, deadline, ["munged"])
        if self.accounting:
            self._start_accounting(deadline)
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._wait("slurmctld", self._ctld_up, deadline, ["slurmctld"])
        for node in self.node_names:
            self._spawn(f"slurmd-{node}", ["slurmd", "-D", "-f", str(self.conf), "-N", node])
        self._wait("all nodes idle", self._nodes_idle, deadline, list(self.pids))

    def _ctld_up(self) -> bool:
        return subprocess.run(["scontrol", "ping"], env=self.env, capture_output=True).returncode == 0

    def _nodes_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=self.env,
                             capture_output=True, text=True).stdout
        states = dict(line.split() for line in out.splitlines() if line.strip())
        return all(states.get(node) == "idle" for node in self.node_names)

    def _start_accounting(self, deadline: float) -> None:
        """mariadb on its own datadir/socket/port, then slurmdbd, then the cluster's accounts."""
        db = self.root / "mariadb"
        if not (db / "data" / "mysql").exists():
            db.mkdir(exist_ok=True)
            self._run(["mariadb-install-db", "--no-defaults", f"--datadir={db}/data", "--user=root",
                       "--auth-root-authentication-method=socket", "--skip-test-db"])
        sock = db / "mysqld.sock"
        self._spawn("mariadbd", ["mariadbd", "--no-defaults", f"--datadir={db}/data", f"--socket={sock}",
                                 f"--port={self.ports['mariadb']}", "--bind-address=127.0.0.1",
                                 f"--pid-file={db}/mariadbd.pid", f"--log-error={self.root}/log/mariadbd.log",
                                 "--user=root", "--skip-name-resolve", "--skip-log-bin"])
        self._wait("mariadb to listen", lambda: _port_open(self.ports["mariadb"]), deadline, ["mariadbd"])
        password = self._dbd_setting("StoragePass")
        self._run(["mariadb", "--no-defaults", f"--socket={sock}", "-u", "root", "-e",
                   f"CREATE OR REPLACE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
                   "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"])
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        self._wait("slurmdbd to listen", lambda: _port_open(self.ports["slurmdbd"]), deadline, ["slurmdbd"])
        self._add_associations()

    def _dbd_setting(self, key: str) -> str:
        lines = (self.root / "etc" / "slurmdbd.conf").read_text().splitlines()
        return next(line.split("=", 1)[1] for line in lines if line.startswith(f"{key}="))

    def _add_associations(self) -> None:
        """Register the cluster and make the account root's only (and default) one, so that any
        other account is rejected at submission (idempotent across restarts on one root)."""
        if CLUSTER_NAME not in self._run(["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"]).split():
            self._run(["sacctmgr", "-i", "add", "cluster", CLUSTER_NAME])
        accounts = set(self._run(["sacctmgr", "-n", "-P", "list", "assoc", "user=root", "format=account"]).split())
        if self.account not in accounts:
            self._run(["sacctmgr", "-i", "add", "account", self.account, f"cluster={CLUSTER_NAME}"])
            self._run(["sacctmgr", "-i", "add", "user", "root", f"account={self.account}", f"cluster={CLUSTER_NAME}"])
            self._run(["sacctmgr", "-i", "modify", "user", "root", "set", f"defaultaccount={self.account}"])
        for other in sorted(accounts - {self.account}):  # slurmdbd's own root/root association
            self._run(["sacctmgr", "-i", "delete", "user", "root", f"account={other}"])

    def _run(self, argv: list[str]) -> str:
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"`{shlex.join(argv)}` failed ({result.returncode}): "
                               f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result.stdout

    def _cancel_jobs(self, timeout: float) -> None:
        """scancel every job and wait (bounded) until none is left on the nodes."""
        def jobs() -> list[str]:
            return subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True,
                                  text=True).stdout.split()
        if ids := jobs():
            subprocess.run(["scancel", *ids], env=self.env, capture_output=True)
        deadline = time.monotonic() + timeout
        while jobs() and time.monotonic() < deadline:
            time.sleep(0.2)

    def _stray_steps(self) -> list[list[int]]:
        """This cluster's slurmstepd processes (they detach from slurmd; their environment names
        our config) and every process under them."""
        marker = f"SLURM_CONF={self.conf}".encode()
        steps = []
        for comm in Path("/proc").glob("[0-9]*/comm"):
            try:
                ours = (comm.read_text().strip() == "slurmstepd"
                        and marker in (comm.parent / "environ").read_bytes().split(b"\0"))
            except OSError:
                continue
            started = _start_time(int(comm.parent.name)) if ours else None
            if started is not None:
                steps.append([int(comm.parent.name), started])
        return steps + _descendants([pid for pid, _ in steps])


def _refuse_if_etc_taken(root: Path) -> None:
    owner = _etc_owner()
    if owner is not None and owner != root and any(map(_alive, SlurmCluster.from_root(owner).pids.values())):
        raise RuntimeError(f"/etc/slurm belongs to the running harness cluster under {owner}: "
                           f"stop it first (python {__file__} stop --root {owner})")


def _etc_owner() -> Path | None:
    """The root of the harness cluster that /etc/slurm/slurm.conf links to, if any."""
    link = ETC / GLOBAL_FILES[0]
    if not link.is_symlink():
        return None
    root = Path(os.readlink(link)).parent.parent
    return root if (root / STATE_FILE).exists() else None


# ---------------------------------------------------------------- CLI

def _describe(cluster: SlurmCluster) -> str:
    status = "\n".join(f"  {name:<16} pid {pid:<8} {'running' if _alive([pid, started]) else 'DEAD'}"
                       for name, (pid, started) in cluster.pids.items()) or "  (nothing running)"
    snakemake = shlex.join(["snakemake", "--executor", "slurm", "--jobs", "4", *cluster.snakemake_args()])
    return (f"Slurm cluster under {cluster.root}\n"
            f"nodes: {', '.join(cluster.node_names)} ({cluster.cpus_per_node} CPUs, "
            f"{cluster.gpus_per_node} fake GPUs each); partitions: {', '.join(cluster.partitions)}; "
            f"accounting: {'on, account ' + cluster.account if cluster.accounting else 'off'}\n"
            f"ports: {cluster.ports}\ndaemons:\n{status}\n"
            f"use: sinfo; sbatch --wrap hostname; srun -N{cluster.nodes} hostname "
            f"(/etc/slurm/slurm.conf -> {cluster.conf})\n"
            f"snakemake: {snakemake}\n"
            f"logs: {cluster.root / 'log'}\nstop: python {__file__} stop --root {cluster.root}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a cluster (it stays up)")
    for sub in (start, commands.add_parser("stop", help="stop it"),
                commands.add_parser("status", help="show it; exit 1 unless all daemons run")):
        sub.add_argument("--root", type=Path, required=True, help="directory holding all its files")
    start.add_argument("--nodes", type=int, default=1)
    start.add_argument("--gpus-per-node", type=int, help="default: 2 on one node, 1 on several")
    start.add_argument("--cpus-per-node", type=int, default=8)
    start.add_argument("--memory-mb", type=int, default=19000)
    start.add_argument("--partition", action="append", dest="partitions", metavar="NAME[:MAXTIME[:NODES]]",
                       help="repeatable; the first is the default (default: debug); NODES: over the first "
                            "NODES nodes (default: all)")
    start.add_argument("--accounting", action="store_true", help="also mariadb + slurmdbd")
    args = parser.parse_args(argv)
    if args.command == "start":
        cluster = SlurmCluster(args.root, args.nodes, args.gpus_per_node, args.cpus_per_node, args.memory_mb,
                               args.partitions or ["debug"], args.accounting)
        began = time.monotonic()
        try:
            cluster.start()
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"started in {time.monotonic() - began:.1f} s\n{_describe(cluster)}")
        return 0
    if not (args.root / STATE_FILE).exists():
        print(f"no cluster recorded under {args.root}", file=sys.stderr)
        return 1
    cluster = SlurmCluster.from_root(args.root)
    if args.command == "stop":
        began = time.monotonic()
        cluster.stop()
        print(f"stopped in {time.monotonic() - began:.1f} s; /etc/slurm restored")
        return 0
    print(_describe(cluster))
    return 0 if cluster.running() else 1


if __name__ == "__main__":
    sys.exit(main())
