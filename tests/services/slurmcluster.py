"""A private one-node Slurm for the tests: munged, slurmctld and slurmd under one folder.

Debian's slurm-wlm (22.05) and munge, run as root without systemd, on free
loopback ports, with a private munge key and socket, so nothing under
/etc/slurm or /run/munge is touched and a real cluster on the machine is not
disturbed. Accounting is the job-completion text file (`sacct -c` reads it);
there is no slurmdbd. `start` returns once the node is idle; `stop` cancels
every job, stops the daemons and waits until they are gone.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sacct", "scancel", "sinfo", "scontrol")
PACKAGES = "slurmctld slurmd slurm-client munge"


def unavailable() -> str | None:
    """Why a private Slurm cannot start here, or None."""
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        return f"Slurm binaries not installed ({', '.join(missing)}): apt-get install {PACKAGES}"
    if os.geteuid() != 0:
        return "a private slurmd must run as root (it starts jobs as their user)"
    return None


def _which(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def free_ports(n: int) -> list[int]:
    """n distinct ports free on this machine right now (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for sock in socks:
            sock.bind(("0.0.0.0", 0))  # the daemons listen on every address
        return [int(sock.getsockname()[1]) for sock in socks]


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has stopped


def _node_size() -> tuple[int, int]:
    """CPUs and memory (MB) as slurmd detects them; the node may not claim more."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
    return int(fields.get("CPUs", os.cpu_count() or 1)), int(fields.get("RealMemory", 1024))


@dataclass
class SlurmCluster:
    base: Path
    ctld_port: int
    slurmd_port: int
    first_job_id: int = 1

    @property
    def conf(self) -> Path:
        return self.base / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_which(args[0]), *args[1:]], capture_output=True, text=True, env=self.env, timeout=60)

    def log(self, name: str) -> str:
        path = self.base / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def write_conf(self) -> None:
        cpus, memory = _node_size()
        b = self.base
        self.conf.write_text(
            f"""ClusterName=olmixtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={b}/munge/munge.socket
StateSaveLocation={b}/state
SlurmdSpoolDir={b}/spool/slurmd
SlurmctldPidFile={b}/run/slurmctld.pid
SlurmdPidFile={b}/run/slurmd.pid
SlurmctldLogFile={b}/log/slurmctld.log
SlurmdLogFile={b}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={b}/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
FirstJobId={self.first_job_id}
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=other Nodes=localhost Default=NO MaxTime=INFINITE State=UP
"""
        )

    def start(self, timeout: float = 30) -> None:
        b = self.base
        for sub in ("etc", "state", "spool/slurmd", "log", "run", "munge-key", "munge"):
            (b / sub).mkdir(parents=True, exist_ok=True)
        (b / "munge-key").chmod(0o700)
        (b / "munge").chmod(0o755)  # munged refuses a socket folder others cannot enter
        key = b / "munge-key" / "munge.key"
        if not key.exists():
            subprocess.run([_which("mungekey"), "--create", f"--keyfile={key}", "--force"], check=True)
        key.chmod(0o600)
        subprocess.run(
            [
                _which("munged"),
                f"--socket={b}/munge/munge.socket",
                f"--key-file={key}",
                f"--pid-file={b}/run/munged.pid",
                f"--log-file={b}/log/munged.log",
                f"--seed-file={b}/munge-key/munged.seed",
            ],
            check=True,
        )
        self.write_conf()
        # Both daemonize; -c starts with no saved jobs, -N because the node is named localhost.
        subprocess.run([_which("slurmctld"), "-c", "-f", str(self.conf)], check=True, env=self.env)
        subprocess.run([_which("slurmd"), "-N", "localhost", "-f", str(self.conf)], check=True, env=self.env)
        if self._wait_idle_node(timeout):
            return
        self.stop()
        raise RuntimeError(f"Slurm did not come up in {timeout:.0f} s; see {b}/log:\n{self.log('slurmctld')[-2000:]}")

    def _stop_daemon(self, daemon: str) -> None:
        pidfile = self.base / "run" / f"{daemon}.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)

    def _wait_idle_node(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run("sinfo", "-h", "-N", "-o", "%T").stdout.split()[:1] == ["idle"]:
                return True
            time.sleep(0.1)
        return False

    def wait_node_idle(self, timeout: float = 60) -> None:
        """Until the node runs nothing and has finished cleaning up after every job (not COMPLETING)."""
        if not self._wait_idle_node(timeout):
            raise AssertionError(f"node not idle: {self.run('sinfo', '-N').stdout}")

    def release_requeued(self, job: str) -> None:
        """Start a requeued job now instead of after Slurm's hold (BeginTime, the credential lifetime).

        Slurm holds a requeued job back because slurmd refuses to launch a job whose credential it revoked
        when killing the first run: a credential made in the same second as the revocation counts as
        revoked ("Job credential revoked", and the job ends FAILED). So wait until the node has cleaned
        up and the clock has passed the second of the revocation, then release.
        """
        self.wait_node_idle()  # the first run's processes are gone (KillWait) before the second starts
        revoked_by = time.time()  # the kill, and so the revocation, happened before the node went idle
        time.sleep(max(0.0, math.floor(revoked_by) + 1.05 - time.time()))
        released = self.run("scontrol", "update", f"JobId={job}", "StartTime=now")
        if released.returncode != 0:
            raise AssertionError(f"cannot release job {job}: {released.stderr}")

    def forget_jobs(self) -> None:
        """Restart the controller without its job state, as if MinJobAge had passed for every finished job.

        Only the job-completion log (what `sacct -c` reads) remembers them then;
        new job ids continue above the old ones.
        """
        self.wait_idle()
        self._stop_daemon("slurmctld")
        self.first_job_id += 10_000
        self.write_conf()
        subprocess.run([_which("slurmctld"), "-c", "-f", str(self.conf)], check=True, env=self.env)
        if not self._wait_idle_node(30):
            raise RuntimeError(f"slurmctld did not come back:\n{self.log('slurmctld')[-2000:]}")

    def cancel_all(self) -> None:
        ids = self.run("squeue", "-h", "-o", "%i").stdout.split()
        if ids:
            self.run("scancel", *ids)

    def wait_idle(self, timeout: float = 30) -> None:
        """Until no job is pending or running (jobs of an earlier test must not hold the CPUs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run("squeue", "-h", "-o", "%i").stdout.split():
                return
            time.sleep(0.1)
        raise AssertionError(f"jobs still queued: {self.run('squeue').stdout}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.cancel_all()
        for daemon in ("slurmd", "slurmctld", "munged"):
            self._stop_daemon(daemon)


@contextlib.contextmanager
def running() -> Iterator[SlurmCluster]:
    """A started cluster in a fresh folder under the system temp dir, stopped and removed afterwards.

    Not under pytest's tmp_path: munged wants every folder above its socket
    enterable by all, and pytest's are private.
    """
    base = Path(tempfile.mkdtemp(prefix="olmix-slurm-"))
    base.chmod(0o755)
    cluster = SlurmCluster(base, *free_ports(2))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str]) -> int:
    """`python -m tests.services.slurmcluster -- COMMAND...`: COMMAND with SLURM_CONF pointing at a private Slurm."""
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        print("usage: python -m tests.services.slurmcluster -- COMMAND...", file=sys.stderr)
        return 2
    if (reason := unavailable()) is not None:
        print(f"cannot start a private Slurm: {reason}", file=sys.stderr)
        return 1
    with running() as cluster:
        print(f"private Slurm up (SLURM_CONF={cluster.conf}); running: {shlex.join(command)}", file=sys.stderr)
        return subprocess.run(command, env=cluster.env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
