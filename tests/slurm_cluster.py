"""A real one-node SLURM cluster on loopback for the tests (Debian's slurmctld/slurmd 22.05).

It declares two fake A100s (a GRES backed by /dev/null and /dev/zero) so that GPU requests really go through
sbatch and get scheduled, and twice the machine's CPUs, so that two 2-CPU "GPU" jobs can run side by
side (the test jobs mostly wait on interpreter start-up, not on the CPU), writes one line per finished job to a jobcomp file, and stops only the
daemons it started, by PID. The facts it relies on are in ../shared/docs/slurm-local.md.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SYSTEM_CONF = Path("/etc/slurm/slurm.conf")  # srun inside jobs reads only the compiled-in path
GPU_FILES = ("/dev/null", "/dev/zero")  # stand-ins for /dev/nvidia0, /dev/nvidia1 (nothing opens them)
GPUS = len(GPU_FILES)

SLURM_CONF = """\
ClusterName=featureflow-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/none
CredType=cred/none
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/run/slurmctld.pid
SlurmdPidFile={d}/run/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={d}/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
MinJobAge=300
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} Gres=gpu:a100:{gpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def available() -> str | None:
    """Why a local cluster cannot run here, or None when it can."""
    if shutil.which("slurmctld") is None or shutil.which("slurmd") is None:
        return "SLURM is not installed (apt-get install slurmctld slurmd slurm-client)"
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (it links /etc/slurm/slurm.conf)"
    return None


class LocalSlurm:
    """Start with `start()`, stop with `stop()`; `env` is the environment for client commands."""

    def __init__(self, root: Path):
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._saved_conf: Path | None = None
        self._pids: list[int] = []

    def start(self, timeout: float = 60) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        for sub in ("state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        mem = int(int(subprocess.run(["free", "-m"], capture_output=True, text=True).stdout.split("\n")[1].split()[6]) * 0.9)
        self.conf.write_text(SLURM_CONF.format(host=self.host, d=self.root, cpus=2 * os.cpu_count(), mem=mem, gpus=GPUS))
        (self.root / "gres.conf").write_text("".join(f"NodeName={self.host} Name=gpu Type=a100 File={dev}\n" for dev in GPU_FILES))
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
            self._saved_conf = SYSTEM_CONF.with_name("slurm.conf.featureflow-test-saved")
            SYSTEM_CONF.rename(self._saved_conf)
        SYSTEM_CONF.symlink_to(self.conf)
        started = time.time()
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(self.conf)], check=True, env=self.env, timeout=30)
            pid_file = self.root / "run" / f"{daemon}.pid"
            while not pid_file.exists() or not pid_file.read_text().strip():  # written after it daemonizes
                if time.time() - started > timeout:
                    raise RuntimeError(f"{daemon} did not start:\n{self.log(daemon)[-2000:]}")
                time.sleep(0.1)
            self._pids.append(int(pid_file.read_text()))
        while time.time() - started < timeout:
            node = self.run("scontrol", "show", "node", self.host, check=False).stdout
            if "State=IDLE" in node and f"Gres=gpu:a100:{GPUS}" in node:
                return
            time.sleep(0.5)
        raise RuntimeError(f"SLURM node {self.host} did not become idle:\n{node}\n{self.log('slurmctld')[-2000:]}")

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=check, timeout=60)

    def log(self, daemon: str) -> str:
        path = self.root / "log" / f"{daemon}.log"
        return path.read_text() if path.exists() else ""

    def finished_jobs(self) -> dict[int, dict[str, str]]:
        """Jobs SLURM has finished, by id: the fields of their jobcomp line (JobState, Tres, ...)."""
        path = self.root / "log" / "jobcomp.txt"
        jobs = {}
        for line in path.read_text().splitlines() if path.exists() else []:
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            jobs[int(fields["JobId"])] = fields
        return jobs

    def queued_or_running(self) -> list[str]:
        return self.run("squeue", "--noheader", "--format=%i %j %T", check=False).stdout.split("\n")[:-1]

    def stop(self) -> None:
        if self._pids:
            self.run("scancel", "--full", "--user=root", check=False)
            deadline = time.time() + 60
            while self.queued_or_running() and time.time() < deadline:
                time.sleep(0.5)
        for pid in self._pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 30
        while time.time() < deadline and any(_alive(pid) for pid in self._pids):
            time.sleep(0.2)
        if SYSTEM_CONF.is_symlink() and SYSTEM_CONF.resolve() == self.conf.resolve():
            SYSTEM_CONF.unlink()
        if self._saved_conf is not None:
            self._saved_conf.rename(SYSTEM_CONF)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
