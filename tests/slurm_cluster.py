"""A real single-node SLURM cluster on this machine, for the tests (Debian's ``slurm-wlm`` + ``munge``).

Started by hand, as measured in FACTS.md (no systemd, no cgroups): ``munged``, ``slurmctld`` and
``slurmd`` run in the foreground as this process's children, from a throw-away ``slurm.conf``
in a temp folder: one node named after ``hostname -s`` with what ``slurmd -C`` finds (CPUs,
memory), no GPUs, ``proctrack/linuxproc``, ``task/none``, no accounting, free ports, and a
fresh munge key and socket of its own (in a folder of ``/tmp``: munged refuses a socket below a
folder others cannot search, such as pytest's). Nothing under ``/etc`` or ``/run`` is used;
client commands find the cluster through ``$SLURM_CONF``. Stopping cancels every job, stops the
daemons, and kills any job process left over (by its pid, found through that ``$SLURM_CONF``).

Finished jobs stay visible to ``scontrol show job`` for an hour (``MinJobAge``), so a test can
read the scheduler's own start and end times without accounting.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
SBIN = (Path("/usr/sbin"), Path("/usr/local/sbin"))


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return next((str(d / name) for d in SBIN if (d / name).is_file()), None)


def missing_tools() -> list[str]:
    """Why a cluster cannot be started here (empty when it can)."""
    missing = [
        f"{name} (apt-get install {'munge' if name == 'munged' else 'slurm-wlm'})"
        for name in (*DAEMONS, *CLIENTS)
        if _which(name) is None
    ]
    if os.geteuid() != 0:
        missing.append("root (slurmd starts jobs as their user)")
    return missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line(host: str) -> str:
    # `slurmd -C`: "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 ... RealMemory=24105"
    done = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("NodeName=")), "")
    fields = [f for f in line.split()[1:] if not f.startswith("UpTime")]
    if not fields:
        fields = [f"CPUs={os.cpu_count() or 1}"]
    return f"NodeName={host} {' '.join(fields)} State=UNKNOWN"


class SlurmCluster:
    """Start (``with SlurmCluster(folder) as cluster:``) and stop a one-node cluster.

    Attributes:
        base: the temp folder holding the configuration, state, spool, logs and munge socket.
        conf: the ``slurm.conf`` (what ``$SLURM_CONF`` must point at).
        host: the node's name.
    """

    def __init__(self, base: Path) -> None:
        self.base = Path(base)
        self.conf = self.base / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen] = {}
        # munged wants every folder above its socket searchable by all (pytest's are not).
        self.munge = Path(tempfile.mkdtemp(prefix="fercourse-munge-"))
        self.munge.chmod(0o755)

    @property
    def env(self) -> dict[str, str]:
        """The environment client commands need."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a client command (``sbatch``, ``squeue``...) against this cluster."""
        return subprocess.run(
            [_which(argv[0]) or argv[0], *argv[1:]],
            capture_output=True,
            text=True,
            env=self.env,
            check=check,
            timeout=60,
        )

    def _write_config(self) -> None:
        b = self.base
        for sub in ("state", "spool", "log"):
            (b / sub).mkdir(parents=True, exist_ok=True)
        munge = self.munge
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
        lines = [
            "ClusterName=fercourse-test",
            f"SlurmctldHost={self.host}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={munge / 'socket'}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            f"StateSaveLocation={b / 'state'}",
            f"SlurmdSpoolDir={b / 'spool'}",
            f"SlurmctldPidFile={b / 'slurmctld.pid'}",
            f"SlurmdPidFile={b / 'slurmd.pid'}",
            f"SlurmctldLogFile={b / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={b / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=1000",
            "MinJobAge=3600",  # finished jobs stay in `scontrol show job` (no accounting here)
            "KillWait=5",  # scancel: SIGTERM, then SIGKILL 5 s later
            "ReturnToService=2",
            _node_line(self.host),
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.base / "log" / f"{name}.console", "wb") as log:  # the child keeps a copy
            self.procs[name] = subprocess.Popen(
                [_which(name) or name, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a Ctrl-C in the test does not reach them first
            )

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(
                    f"SLURM test cluster: {what} not ready "
                    f"({'exited: ' + ', '.join(dead) if dead else f'{timeout:.0f} s'})\n"
                    + self.logs()
                )
            time.sleep(0.3)

    def start(self, timeout: float = 60.0) -> SlurmCluster:
        """Write the configuration, start the three daemons, wait until the node is idle."""
        self._write_config()
        munge = self.munge
        self._spawn(
            "munged",
            "--foreground",
            f"--key-file={munge / 'munge.key'}",
            f"--socket={munge / 'socket'}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--log-file={self.base / 'log' / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )
        self._wait("munged", lambda: (munge / "socket").exists(), timeout)
        self._spawn("slurmctld", "-D", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-f", str(self.conf))

        def idle() -> bool:
            done = self.run("sinfo", "-h", "-o", "%T", check=False)
            return done.returncode == 0 and done.stdout.strip() == "idle"

        self._wait("the node", idle, timeout)
        return self

    def job_processes(self) -> list[int]:
        """Pids of processes started for this cluster's jobs (they carry its ``$SLURM_CONF``)."""
        mark = f"SLURM_CONF={self.conf}".encode()
        own = {p.pid for p in self.procs.values()}
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) in own or int(proc.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
        return pids

    def stop(self) -> None:
        """Cancel every job, stop the daemons, kill what a job left behind."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--user", str(os.geteuid()), check=False)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                done = self.run("squeue", "-h", "-o", "%i", check=False)
                if done.returncode != 0 or not done.stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in self.job_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.munge, ignore_errors=True)

    def logs(self, lines: int = 15) -> str:
        """The end of every daemon log, for an error message."""
        out = []
        for path in sorted((self.base / "log").glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def __enter__(self) -> SlurmCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
