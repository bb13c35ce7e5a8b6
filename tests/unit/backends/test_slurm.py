"""The Slurm backend against a real slurmctld, slurmd and munged, started by tests/services/slurmcluster.py."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from olmix.backends import BackendError, RunSpec, RunState, Status
from olmix.backends.local import LocalBackend
from olmix.backends.slurm import Job, SlurmBackend, map_state, options_from_config
from olmix.errors import ConfigError
from olmix.launch import launcher
from olmix.loading.config import load_config
from tests.conftest import REPO, needs_train
from tests.services import slurmcluster
from tests.support.launch_killer import killed

REASON = slurmcluster.unavailable()
_skip_without_slurm = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def needs_slurm(test: Callable[..., None]) -> Callable[..., None]:
    """A test against the live scheduler: skipped without Slurm, and slow (it starts daemons, submits jobs)."""
    marked: Callable[..., None] = pytest.mark.slow(_skip_without_slurm(test))
    return marked


HOSTILE = "r'; touch PWNED; echo '$(touch PWNED2)`touch PWNED3` \"x\" & | > <"


@pytest.fixture(scope="session")
def cluster() -> Iterator[slurmcluster.SlurmCluster]:
    """One private Slurm for the whole session; SLURM_CONF points every client (and child process) at it."""
    if REASON is not None:
        pytest.skip(REASON)
    old = os.environ.get("SLURM_CONF")
    with slurmcluster.running() as running:
        os.environ["SLURM_CONF"] = str(running.conf)
        try:
            yield running
        finally:
            if old is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old


@pytest.fixture
def slurm(cluster: slurmcluster.SlurmCluster) -> Iterator[slurmcluster.SlurmCluster]:
    cluster.wait_idle()
    yield cluster
    cluster.cancel_all()


def spec(tmp_path: Path, run: str, command: list[str], token: str, **extra: Any) -> RunSpec:
    run_dir = tmp_path / "g" / run
    return RunSpec("g", run, run_dir, run_dir / "plan.json", command, token, **extra)


def py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def wait(backend: SlurmBackend, ids: list[str], dirs: list[Path], timeout: float = 60) -> dict[str, Status]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = backend.query(ids, dirs)
        if all(s.state.finished for s in found.values()):
            return found
        time.sleep(0.2)
    raise AssertionError(f"jobs did not finish: {found}")


# -- without a scheduler ---------------------------------------------------------------------------------------

STATE_CASES = [
    # (state as squeue/sacct print it, reason, live, olmix state, detail)
    ("PENDING", "Priority", True, RunState.PENDING, "slurm PENDING: Priority"),
    ("CONFIGURING", "None", True, RunState.PENDING, "slurm CONFIGURING"),
    ("REQUEUED", "", True, RunState.PENDING, "slurm REQUEUED"),
    ("REQUEUE_HOLD", "JobHeldAdmin", True, RunState.PENDING, "slurm REQUEUE_HOLD: JobHeldAdmin"),
    ("RUNNING", "None", True, RunState.RUNNING, "slurm RUNNING"),
    ("COMPLETING", "", True, RunState.RUNNING, "slurm COMPLETING"),
    ("SUSPENDED", "", True, RunState.RUNNING, "slurm SUSPENDED"),
    ("COMPLETED", "None", False, RunState.SUCCEEDED, "slurm COMPLETED"),
    ("FAILED", "NonZeroExitCode", False, RunState.FAILED, "slurm FAILED: NonZeroExitCode"),
    ("CANCELLED by 0", "", False, RunState.CANCELLED, "slurm CANCELLED by 0"),
    ("TIMEOUT", "TimeLimit", False, RunState.FAILED, "slurm TIMEOUT: TimeLimit"),
    ("OUT_OF_MEMORY", "OutOfMemory", False, RunState.FAILED, "slurm OUT_OF_MEMORY: OutOfMemory"),
    ("NODE_FAIL", "NodeDown", False, RunState.FAILED, "slurm NODE_FAIL: NodeDown"),
    ("BOOT_FAIL", "", False, RunState.FAILED, "slurm BOOT_FAIL"),
    ("DEADLINE", "", False, RunState.FAILED, "slurm DEADLINE"),
    ("PREEMPTED", "", False, RunState.FAILED, "slurm PREEMPTED"),
    ("PREEMPTED", "", True, RunState.PENDING, "slurm PREEMPTED"),  # requeueable: on its way back to the queue
    ("SOMETHING_NEW", "", False, RunState.FAILED, "slurm SOMETHING_NEW (unknown state)"),
]


@pytest.mark.parametrize(("state", "reason", "live", "expected", "detail"), STATE_CASES)
def test_every_slurm_state_maps_to_an_olmix_state_with_the_reason(
    state: str, reason: str, live: bool, expected: RunState, detail: str
) -> None:
    found = map_state(Job("7", "7", state, reason, 0, 100.0, 200.0), live=live)
    assert (found.state, found.detail) == (expected, detail)
    assert found.finished_at == (200.0 if expected.finished else None)


def test_a_requeued_jobs_forecast_start_is_no_start_and_a_duration_is_never_negative() -> None:
    now = time.time()
    requeued = map_state(Job("7", "7", "PENDING", "BeginTime", None, now + 7081, None), live=True)
    assert (requeued.state, requeued.started_at, requeued.duration) == (RunState.PENDING, None, None)
    running = map_state(Job("7", "7", "RUNNING", "None", None, now - 60, now + 3600), live=True)
    assert running.duration is not None and 60 <= running.duration < 3600
    assert Status(RunState.RUNNING, started_at=now + 100).duration is None  # a start still to come
    assert Status(RunState.FAILED, None, 200.0, 100.0).duration is None  # an end before the start
    assert Status(RunState.SUCCEEDED, 0, 100.0, 160.0).duration == 60.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"partition": "debug\n#SBATCH --wrap=x"}, "slurm partition"),
        ({"account": "a b"}, "slurm account"),
        ({"time_limit": "1:00;rm"}, "slurm time"),
        ({"sbatch_args": ["--export=NONE"]}, "--export is refused"),
        ({"sbatch_args": ["-J", "-x"]}, "sbatch's --job-name"),
        ({"sbatch_args": ["--wrap=rm -rf /"]}, "--wrap is refused"),
        ({"sbatch_args": ["mem=1G"]}, "each entry is one sbatch option"),
        ({"sbatch_args": ["--comment=a\nb"]}, "each entry is one sbatch option"),
    ],
)
def test_unsafe_or_conflicting_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendError, match=message):
        SlurmBackend(**options)


def test_the_schema_describes_the_slurm_settings_and_refuses_bad_ones(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text((REPO / "config/examples/minimal.yaml").read_text() + "slurm:\n  partition: debug\n")
    settings = load_config(config, ("slurm.time_limit=1-00:30", "slurm.sbatch_args=[--mem=1G]", "nodes=1"))
    assert options_from_config(settings) == {
        "nodes": 1,
        "partition": "debug",
        "time_limit": "1-00:30",
        "sbatch_args": ["--mem=1G"],
    }
    for bad in ("slurm.partition='a b'", "slurm.time_limit=soon", "slurm.gpus_per_node=0", "slurm.qeue=x"):
        with pytest.raises(ConfigError):
            load_config(config, (bad,))


@pytest.mark.parametrize(
    "slurm",
    [
        {"partition": "debug\n"},
        {"account": "lab\n"},
        {"qos": "normal\n"},
        {"time_limit": "10\n"},
        {"constraint": "a100\n"},
        {"sbatch_args": ["--mem=1G\n"]},
    ],
)
def test_a_trailing_newline_is_invalid_for_every_validator(slurm: dict[str, Any]) -> None:
    # Python's re lets '$' match before a final newline; ECMA-262 and the generated models do not.
    import jsonschema
    from olmix_generated.mixture import Slurm

    schema = json.loads((REPO / "schema/mixture.schema.json").read_text())
    config = {"name": "x", "slurm": slurm, "sources": [{"name": "a", "paths": ["p"]}]}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(config))
    with pytest.raises(ValueError):
        Slurm(**slurm)


def test_check_notes_what_slurm_ignores_and_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text((REPO / "config/examples/minimal.yaml").read_text())  # sets cluster
    backend = SlurmBackend()
    assert backend.check(load_config(config, ())) == [
        "the slurm backend ignores cluster (use slurm.partition, slurm.account, ...)"
    ]
    assert backend.check(load_config(config, ("nodes=2", "slurm.gpus_per_node=2"))) == [
        "the slurm backend ignores cluster (use slurm.partition, slurm.account, ...)"
    ]
    with pytest.raises(BackendError, match=r"slurm\.gpus_per_node is 2 but gpus is 1"):
        backend.check(load_config(config, ("gpus=1", "slurm.gpus_per_node=2")))
    assert "the local backend ignores cluster, slurm" in LocalBackend().check(
        load_config(config, ("slurm.partition=debug",))
    )


def test_the_filesystem_of_a_path_is_its_longest_mount_point(tmp_path: Path) -> None:
    from olmix.backends.slurm import filesystem_type

    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        "srv:/export /shared nfs4 rw 0 0\n"
        "tmpfs /shared/scratch tmpfs rw 0 0\n"
        "tmpfs /with\\040space tmpfs rw 0 0\n"
        "lustre /shared/scratchier lustre rw 0 0\n"
    )
    assert filesystem_type(Path("/shared/runs"), mounts) == "nfs4"
    assert filesystem_type(Path("/shared/scratch/runs"), mounts) == "tmpfs"
    assert filesystem_type(Path("/shared/scratchier"), mounts) == "lustre"  # a mount point, not a prefix of one
    assert filesystem_type(Path("/with space/runs"), mounts) == "tmpfs"
    assert filesystem_type(Path("/home/me"), mounts) == "ext4"
    assert filesystem_type(Path("/home/me"), tmp_path / "absent") is None


def test_a_runs_folder_only_this_machine_sees_is_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from olmix.backends.slurm import backend as slurm

    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\ntmpfs {REPO} tmpfs rw 0 0\n")
    monkeypatch.setattr(slurm, "MOUNTS", mounts)
    backend = SlurmBackend()
    (note,) = backend.check_runs_dir(REPO / "not-made-yet" / "runs")  # a folder the launch has yet to make
    assert f"the runs folder {REPO / 'not-made-yet' / 'runs'} is on a tmpfs filesystem" in note
    assert "a filesystem the compute nodes share" in note
    (note,) = backend.check_runs_dir(Path("/tmp") / "runs")
    assert "is under /tmp" in note
    mounts.write_text("/dev/vda / ext4 rw 0 0\n")
    assert backend.check_runs_dir(Path("/srv/shared/runs")) == []  # a disk, not under /tmp, wherever tests run
    assert LocalBackend().check_runs_dir(Path("/tmp/runs")) == []  # one machine: nothing to share


def test_array_tokens_must_number_the_runs_in_order(tmp_path: Path) -> None:
    specs = [spec(tmp_path, f"r{i}", ["true"], f"abc.{i}") for i in (0, 2)]
    with pytest.raises(BackendError, match="tokens"):
        SlurmBackend().submit_many(specs)
    assert not (tmp_path / "g").exists()


TRAIN = ["/venv/bin/python", "-m", "olmix.train", "--plan", "p.json", "--out", "o"]


def _trainer_line(text: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith("srun ")]
    return line


def test_one_process_runs_under_srun_and_olmix_train_gets_a_checkpoint_interval(tmp_path: Path) -> None:
    one = spec(tmp_path, "r", TRAIN, "t")
    text = SlurmBackend().script(one)
    assert _trainer_line(text) == (
        "srun --ntasks=1 --nodes=1 --kill-on-bad-exit=1 "
        + shlex.join([*TRAIN, "--checkpoint-interval", "100"])
        + f" >> {tmp_path}/g/r/train.log 2>&1"
    )
    assert "torch.distributed.run" not in text and "head_node" not in text
    own = SlurmBackend(checkpoint_interval=7)
    assert own.trainer_command(TRAIN) == [*TRAIN, "--checkpoint-interval", "7"]
    for kept in ([*TRAIN, "--checkpoint-interval", "3"], [*TRAIN, "--checkpoint-interval=3"], ["./train.sh", "x"]):
        assert own.trainer_command(kept) == kept  # the user's own flag, or a trainer that is not olmix.train


@pytest.mark.parametrize(
    ("options", "sbatch", "nproc"),
    [
        ({"nodes": 2, "gpus_per_node": 4}, ["--nodes=2", "--gpus-per-node=4"], 4),
        ({"nodes": 2}, ["--nodes=2"], 1),
        ({"processes_per_node": 2}, ["--nodes=1"], 2),  # gpus: 2 without a GPU request: two CPU processes
    ],
)
def test_more_than_one_process_runs_under_torchrun_with_rendezvous_from_slurm(
    tmp_path: Path, options: dict[str, Any], sbatch: list[str], nproc: int
) -> None:
    backend = SlurmBackend(**options)
    one = spec(tmp_path, "r", TRAIN, "t")
    argv = backend.submit_argv(one)
    assert all(option in argv for option in sbatch) and "--ntasks-per-node=1" in argv
    assert ("--gpus-per-node=4" in argv) == ("gpus_per_node" in options)
    text = backend.script(one, argv)
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    assert 'head_node="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"\n' in text
    assert 'rdzv_port="$(( 29500 + SLURM_JOB_ID % 10000 ))"\n' in text
    line = _trainer_line(text)
    expected = (
        'srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --kill-on-bad-exit=1 /venv/bin/python '
        f'-m torch.distributed.run --nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node={nproc} --rdzv-backend=c10d '
        '--rdzv-endpoint="$head_node:$rdzv_port" --rdzv-id="$SLURM_JOB_ID" '
        "-m olmix.train --plan p.json --out o --checkpoint-interval 100 >> "
    )
    assert line.startswith(expected), line


def test_a_trainer_that_is_no_python_module_is_started_by_torchrun_as_it_is(tmp_path: Path) -> None:
    backend = SlurmBackend(processes_per_node=2, python="/py")
    line = _trainer_line(backend.script(spec(tmp_path, "r", ["./train.sh", "a b"], "t")))
    assert " /py -m torch.distributed.run " in line and line.endswith(
        "--no-python ./train.sh 'a b' >> " + (f"{tmp_path}/g/r/train.log 2>&1")
    )


def test_processes_nodes_and_checkpoints_come_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text((REPO / "config/examples/minimal.yaml").read_text())
    assert options_from_config(load_config(config, ("nodes=2", "gpus=2")), 4) == {
        "nodes": 2,
        "processes_per_node": 2,
        "max_parallel": 4,
    }
    with_gpus = load_config(config, ("slurm.gpus_per_node=8", "slurm.checkpoint_interval=50"))
    assert options_from_config(with_gpus) == {
        "nodes": 1,
        "processes_per_node": 8,
        "gpus_per_node": 8,
        "checkpoint_interval": 50,
    }
    assert SlurmBackend(**options_from_config(with_gpus)).processes_per_node == 8
    bads: list[dict[str, Any]] = [
        {"nodes": 0},
        {"max_parallel": 0},
        {"checkpoint_interval": 0},
        {"processes_per_node": -1},
    ]
    for bad in bads:
        with pytest.raises(BackendError, match="at least 1"):
            SlurmBackend(**bad)


def test_max_parallel_is_the_arrays_throttle(tmp_path: Path) -> None:
    specs = [spec(tmp_path, f"r{i}", ["true"], f"abc.{i}") for i in range(5)]
    assert "--array=0-4%2" in SlurmBackend(max_parallel=2).array_argv(specs)
    assert "--array=0-4" in SlurmBackend().array_argv(specs)


def test_the_script_keeps_every_config_string_one_quoted_word(tmp_path: Path) -> None:
    one = spec(tmp_path, HOSTILE, ["echo", HOSTILE, "a\nb"], "t0", env={"NOTE": HOSTILE + "\n$HOME"})
    backend = SlurmBackend()
    text = backend.script(one, backend.submit_argv(one))
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)  # as the shell splits it, comments dropped
    assert HOSTILE in words and "a\nb" in words and f"NOTE={HOSTILE}\n$HOME" in words
    assert "touch" not in words and not any(w.startswith("$(touch") for w in words)


# -- against the scheduler -------------------------------------------------------------------------------------


@needs_slurm
def test_hostile_names_reach_the_trainer_as_they_are_and_run_nothing(
    slurm: slurmcluster.SlurmCluster, tmp_path: Path
) -> None:
    out = tmp_path / "argv.json"
    code = "import json, os, sys; json.dump([sys.argv[1:], os.environ['NOTE']], open(sys.argv[1], 'w'))"
    one = spec(tmp_path, HOSTILE, py(code, str(out), HOSTILE, "a\nb"), "t1", env={"NOTE": HOSTILE + "\n$HOME"})
    backend = SlurmBackend()
    job = backend.submit(one)
    found = wait(backend, [job], [one.run_dir])
    assert found[job].state == RunState.SUCCEEDED, (one.run_dir / "train.log").read_text()
    assert json.loads(out.read_text()) == [[str(out), HOSTILE, "a\nb"], HOSTILE + "\n$HOME"]
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))


@needs_slurm
def test_a_group_is_one_array_and_its_status_is_one_squeue_and_one_sacct(
    slurm: slurmcluster.SlurmCluster, tmp_path: Path
) -> None:
    commands = [py("print('ok')"), py("import sys; print('bad'); sys.exit(3)"), py("print('ok')")]
    specs = [spec(tmp_path, f"r{i}", cmd, f"arr{os.getpid()}.{i}") for i, cmd in enumerate(commands)]
    backend = SlurmBackend()
    ids = backend.submit_many(specs)
    assert backend.calls == ["sbatch"]
    assert len({i.split("_")[0] for i in ids}) == 1 and [i.split("_")[1] for i in ids] == ["0", "1", "2"]
    dirs = [s.run_dir for s in specs]
    assert [backend.find(s) for s in specs] == ids  # found by token, each at its index
    wait(backend, ids, dirs)
    backend.calls.clear()
    found = backend.query(ids, dirs)
    assert backend.calls == ["squeue"]  # the controller still knows them: no sacct needed
    assert [found[i].state for i in ids] == [RunState.SUCCEEDED, RunState.FAILED, RunState.SUCCEEDED]
    assert found[ids[1]].exit_code == 3
    assert (specs[1].run_dir / "train.log").read_text().startswith("bad\n")  # then srun says why it ended
    assert list((tmp_path / "g" / f".slurm-olmix-arr{os.getpid()}" / "1").glob("slurm-*_1.out"))

    slurm.forget_jobs()  # as after MinJobAge: only accounting knows them now
    backend.calls.clear()
    again = backend.query(ids, dirs)
    assert backend.calls in (["squeue", "sacct"], ["squeue", "sacct", "sacct"])  # the second: first probe of -c
    backend.calls.clear()
    again = backend.query(ids, dirs)
    assert backend.calls == ["squeue", "sacct"]
    assert [(again[i].state, again[i].exit_code) for i in ids] == [
        (RunState.SUCCEEDED, 0),
        (RunState.FAILED, 3),
        (RunState.SUCCEEDED, 0),
    ]
    assert "slurm FAILED" in again[ids[1]].detail
    assert [backend.find(s) for s in specs] == ids  # still found, through sacct and the run's started record
    # The completion log answers every job whatever --name asks; only the token's own job may be adopted.
    assert backend.find(spec(tmp_path, "r9", ["true"], "never-submitted")) is None


@needs_slurm
def test_a_run_meant_for_an_array_but_submitted_alone_is_still_found(
    slurm: slurmcluster.SlurmCluster, tmp_path: Path
) -> None:
    # A launch resuming an array that never reached sbatch submits its runs one by one, keeping their tokens.
    backend = SlurmBackend()
    alone = spec(tmp_path, "r1", ["true"], f"lone{os.getpid()}.1")
    job = backend.submit(alone)
    assert "_" not in job
    assert backend.find(alone) == job
    assert backend.find(spec(tmp_path, "r0", ["true"], f"lone{os.getpid()}.0")) is None


@needs_slurm
def test_cancel_ends_a_pending_and_a_running_job(slurm: slurmcluster.SlurmCluster, tmp_path: Path) -> None:
    backend = SlurmBackend()
    specs = [spec(tmp_path, f"c{i}", py("import time; time.sleep(300)"), f"c{os.getpid()}x{i}") for i in range(3)]
    ids = [backend.submit(s) for s in specs]  # 2 CPUs: the third waits
    dirs = [s.run_dir for s in specs]
    deadline = time.monotonic() + 30
    while backend.query(ids, dirs)[ids[0]].state != RunState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
    backend.calls.clear()
    backend.cancel_many(list(zip(ids, dirs, strict=True)))
    assert backend.calls == ["scancel"]
    found = wait(backend, ids, dirs)
    assert {found[i].state for i in ids} == {RunState.CANCELLED}
    backend.cancel(ids[0], dirs[0])  # cancelling an ended job is not an error


@needs_slurm
def test_secrets_are_exported_by_name_and_masked(
    slurm: slurmcluster.SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLMIX_SLURM_SECRET", "hunter2-planted")
    code = "import os; print('key', os.environ['OLMIX_SLURM_SECRET'])"
    one = spec(tmp_path, "s", py(code), "s1", secrets=["OLMIX_SLURM_SECRET"])
    backend = SlurmBackend()
    job = backend.submit(one)
    final = wait(backend, [job], [one.run_dir])[job]
    assert final.state == RunState.SUCCEEDED, final
    assert (one.run_dir / "train.log").read_text() == "key ***\n"
    written = [p.read_bytes() for p in (tmp_path / "g").rglob("*") if p.is_file()]
    assert written and not any(b"hunter2-planted" in data for data in written)


@needs_slurm
def test_a_requeued_run_starts_again_and_finishes(slurm: slurmcluster.SlurmCluster, tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    code = "import sys, time; open(sys.argv[1], 'a').write('start\\n'); time.sleep(2)"
    one = spec(tmp_path, "q", py(code, str(marker)), "q1")
    backend = SlurmBackend()
    job = backend.submit(one)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert slurm.run("scontrol", "requeue", job).returncode == 0
    deadline = time.monotonic() + 30
    while (found := backend.status(job, one.run_dir)).detail != "slurm PENDING: BeginTime":
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    assert found.state == RunState.PENDING  # Slurm holds a requeued job back for 120 s; let it go sooner
    assert (found.started_at, found.duration) == (None, None)  # squeue's StartTime is the forecast, 120 s ahead
    assert not (one.run_dir / "exit.json").exists()  # the first attempt was killed, not finished
    slurm.release_requeued(job)
    final = wait(backend, [job], [one.run_dir])[job]
    logs = "".join(p.read_text() for p in sorted(one.run_dir.glob("*.*")) if p.suffix in (".log", ".out", ".json"))
    assert final.state == RunState.SUCCEEDED, (final, logs)
    assert marker.read_text() == "start\nstart\n"
    started = json.loads((one.run_dir / "started.json").read_text())
    assert started["restarts"] == 1
    # the duration is the second attempt's: from its start (whole seconds in started.json), never negative
    assert final.started_at is not None and final.started_at >= started["started_at"] - 1
    assert final.duration is not None and final.duration >= 0


# A new group's three runs go as one array: save 1 writes the record, 2 marks all three submitting, sbatch, 3 marks
# them submitted. A resumed launch that finds them (killed after sbatch) submits nothing.
# Resuming, the runs marked submitting are looked up together (one squeue; sacct too when squeue knows none).
KILL_POINTS = [
    ("before-submit", 1, ["squeue", "sbatch"]),
    ("after-submit", 1, ["squeue"]),
    ("mid-save", 2, ["sbatch"]),
    ("mid-save", 3, ["squeue"]),
]


@needs_slurm
@pytest.mark.parametrize(("where", "n", "calls"), KILL_POINTS)
def test_a_killed_launch_resumes_and_submits_every_run_exactly_once(
    slurm: slurmcluster.SlurmCluster, tmp_path: Path, where: str, n: int, calls: list[str]
) -> None:
    events = tmp_path / "events.log"
    command = py("import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')", str(events), "{run}")
    config = REPO / "config/examples/minimal.yaml"
    plan: dict[str, Any] = {
        "plan_version": 1,
        "group": "g-slurm",
        "config": {"path": str(config), "sha256": launcher.sha256_file(config), "overrides": []},
        "runs": [{"name": name, "leaves": []} for name in ("run-a", "run-b", "run-c")],
    }
    out = tmp_path / "out"
    args = {"plan": plan, "config": str(config), "output": str(out), "command": command}
    killed({**args, "kill": [where, n], "backend": "slurm"})
    backend = SlurmBackend()
    results = launcher.launch(plan, config, backend, out, command=command)
    assert sorted(r.run for r in results) == ["run-a", "run-b", "run-c"]
    assert [c for c in backend.calls if c != "sacct"] == calls  # what was left went as one array
    assert len({r.job_id.split("_")[0] for r in results}) == 1  # one array job, whichever launch submitted it
    group = out / "g-slurm"
    found = wait(backend, [r.job_id for r in results], [group / r.run for r in results])
    assert {s.state for s in found.values()} == {RunState.SUCCEEDED}, found
    assert sorted(events.read_text().split()) == ["run-a", "run-b", "run-c"]  # each ran exactly once
    rows = slurm.run("squeue", "-h", "-r", "--states=all", "-O", "Name:0|,STDOUT:0").stdout.splitlines()
    jobs = [name for name, _, stdout in (row.partition("|") for row in rows) if str(out) in stdout]  # this test's
    runs = json.loads((group / "launch.json").read_text())["runs"]
    (array,) = {e["token"].split(".")[0] for e in runs}
    assert sorted(e["token"] for e in runs) == [f"{array}.{i}" for i in range(3)]
    assert jobs == [f"olmix-{array}"] * 3  # no other job was submitted


class OneByOne(SlurmBackend):
    submits_together = False  # as a backend without arrays: the launcher submits run by run


class Stop(Exception):
    pass


@needs_slurm
def test_a_resumed_group_submits_the_runs_left_as_one_array_and_cancels_with_one_scancel(
    slurm: slurmcluster.SlurmCluster, tmp_path: Path
) -> None:
    config = REPO / "config/examples/minimal.yaml"
    names = ["run-a", "run-b", "run-c", "run-d"]
    plan: dict[str, Any] = {
        "plan_version": 1,
        "group": "g-arr",
        "config": {"path": str(config), "sha256": launcher.sha256_file(config), "overrides": []},
        "runs": [{"name": name, "leaves": []} for name in names],
    }
    command = py("import time; time.sleep(300)")
    out = tmp_path / "out"

    def stop(submitted: launcher.Submitted) -> None:
        raise Stop(submitted.run)

    with pytest.raises(Stop, match="run-a"):  # the first launch ends after one run, submitted alone
        launcher.launch(plan, config, OneByOne(), out, command=command, on_submit=stop)
    backend = SlurmBackend()
    results = launcher.launch(plan, config, backend, out, command=command)
    assert backend.calls == ["sbatch"]
    assert [(r.run, r.new) for r in results] == [(n, n != "run-a") for n in names]
    assert "_" not in results[0].job_id
    (array,) = {r.job_id.split("_")[0] for r in results[1:]}
    assert [r.job_id for r in results[1:]] == [f"{array}_{i}" for i in range(3)]
    group = out / "g-arr"
    tokens = [e["token"] for e in json.loads((group / "launch.json").read_text())["runs"]]
    assert len({t.split(".")[0] for t in tokens[1:]}) == 1 and [t.split(".")[1] for t in tokens[1:]] == ["0", "1", "2"]

    backend.calls.clear()
    launcher.statuses(group, backend)
    assert backend.calls == ["squeue"]  # four runs, one query (the scheduler knows them all)
    backend.calls.clear()
    assert sorted(launcher.cancel(group, backend)) == names
    assert backend.calls == ["squeue", "scancel"]
    found = wait(backend, [r.job_id for r in results], [group / n for n in names])
    assert {s.state for s in found.values()} == {RunState.CANCELLED}, found  # those never started as well
    slurm.forget_jobs()  # only the completion log knows them now: the array's own record for its pending tasks
    again = backend.query([r.job_id for r in results], [group / n for n in names])
    assert {s.state for s in again.values()} == {RunState.CANCELLED}, again


@needs_slurm
def test_launch_run_with_the_slurm_backend_end_to_end(slurm: slurmcluster.SlurmCluster, tmp_path: Path) -> None:
    from tools.mirror import make_mirror

    config = tmp_path / "tiny.yaml"
    config.write_text(
        "name: tiny\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.001\n"
        "slurm: {partition: other}\n"
        "sources:\n  - name: code\n    paths: ['s3://bucket/code/*.npy']\n"
    )
    path_map = make_mirror(config, tmp_path / "mirror", files_per_pattern=1, tokens_per_file=1_000_000)
    marker = tmp_path / "trained"
    trainer = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'a').write(sys.argv[2])\" {marker} {{plan}}"
    olmix = str(Path(sys.executable).with_name("olmix"))
    base = [olmix, "launch", "run", "--config", str(config), "--output", str(tmp_path / "runs"), "--backend", "slurm"]
    base += ["--no-cache", "--trainer-command", trainer, *[f"--path-map={p}={r}" for p, r in path_map]]
    dry = subprocess.run([*base, "--dry-run"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert dry.returncode == 0, dry.stderr
    assert "slurm.sh" in dry.stdout and "--partition=other" in dry.stdout
    assert "srun --ntasks=1 --nodes=1 --kill-on-bad-exit=1 " + shlex.quote(sys.executable) in dry.stdout
    assert f"note: the runs folder {tmp_path / 'runs'} is under /tmp" in dry.stdout  # a one-machine cluster here
    assert not (tmp_path / "runs").exists()
    two = subprocess.run(
        [*base, "--dry-run", "--set", "gpus=2"], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert two.returncode == 0, two.stderr
    assert "note: gpus: 2 requests no GPU from Slurm (set slurm.gpus_per_node to request them)" in two.stdout
    assert '-m torch.distributed.run --nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node=2 ' in two.stdout
    assert not (tmp_path / "runs").exists()

    run = subprocess.run(
        [*base, "--yes", "--wait", "--max-parallel", "3"], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert run.returncode == 0, run.stderr
    assert "--max-parallel" not in run.stdout  # slurm honours it (the array's %N), no note
    (group,) = [p for p in (tmp_path / "runs").iterdir()]
    assert marker.read_text() == str(group / "tiny" / "plan.json")
    assert (group / "tiny" / "slurm.sh").read_text().startswith("#!/bin/bash\n")
    record = json.loads((group / "launch.json").read_text())
    assert (record["backend"], record["backend_options"]) == (
        "slurm",
        {"nodes": 1, "partition": "other", "max_parallel": 3},
    )
    job = record["runs"][0]["job_id"]
    assert slurm.run("squeue", "-h", "--states=all", "-j", job, "-o", "%P").stdout.split() == ["other"]
    status = subprocess.run(
        [olmix, "launch", "status", "--group", group.name, "--output", str(tmp_path / "runs"), "--json"],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["runs"][0]["state"] == "succeeded"


@needs_slurm
@needs_train
def test_a_tiny_training_runs_under_srun(slurm: slurmcluster.SlurmCluster, tmp_path: Path) -> None:
    from olmix.training.metrics import read_metrics
    from tests.support.trainings import write_plan

    plan = write_plan(tmp_path)
    run_dir = plan.parent
    command = [sys.executable, "-m", "olmix.train", "--plan", str(plan), "--out", str(run_dir)]
    one = RunSpec("g", "run", run_dir, plan, [*command, "--sequence-length", "64", "--heldout-tokens", "512"], "tiny1")
    backend = SlurmBackend()
    job = backend.submit(one)
    found = wait(backend, [job], [run_dir], timeout=600)[job]
    assert found.state == RunState.SUCCEEDED, (run_dir / "train.log").read_text()[-3000:]
    metrics = read_metrics(run_dir / "metrics.json")
    assert (metrics.steps, metrics.tokens_trained) == (30, 30 * 4 * 64)  # 64 × 4 × 30 tokens requested
    assert json.loads((run_dir / "started.json").read_text())["job_id"] == job


@needs_slurm
@needs_train
def test_a_requeued_training_resumes_from_its_checkpoint(slurm: slurmcluster.SlurmCluster, tmp_path: Path) -> None:
    from olmix.training.metrics import read_metrics
    from tests.support.trainings import write_plan

    steps, interval = 60, 10
    plan = write_plan(tmp_path, [("web", 1.0, [40_000])], requested_tokens=64 * 4 * steps)
    run_dir = plan.parent
    command = [sys.executable, "-m", "olmix.train", "--plan", str(plan), "--out", str(run_dir)]
    command += ["--sequence-length", "64", "--heldout-tokens", "512", "--checkpoint-interval", str(interval)]
    one = RunSpec("g", "run", run_dir, plan, command, "resume1")
    backend = SlurmBackend()
    job = backend.submit(one)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoints" / f"step{interval}").exists():  # trained some steps, saved them
        assert time.monotonic() < deadline, (run_dir / "train.log").read_text()[-3000:]
        assert not backend.status(job, run_dir).state.finished, (run_dir / "train.log").read_text()[-3000:]
        time.sleep(0.05)
    assert slurm.run("scontrol", "requeue", job).returncode == 0
    while backend.status(job, run_dir).detail != "slurm PENDING: BeginTime":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    slurm.release_requeued(job)
    found = wait(backend, [job], [run_dir], timeout=600)[job]
    log = (run_dir / "train.log").read_text()
    assert found.state == RunState.SUCCEEDED, log[-3000:]
    assert json.loads((run_dir / "started.json").read_text())["restarts"] == 1
    resumed = [line for line in log.splitlines() if "olmix.train: resumed from the checkpoint at step" in line]
    assert len(resumed) == 1, log[-3000:]
    at = int(resumed[0].split("at step ")[1].split()[0])
    assert interval <= at < steps and at % interval == 0
    metrics = read_metrics(run_dir / "metrics.json")
    assert (metrics.steps, metrics.tokens_trained) == (steps, steps * 4 * 64)  # no step lost, none trained twice
    trained_here = (steps - at) * 4 * 64  # tokens/s counts only what the resumed process trained
    assert metrics.tokens_per_second is not None and metrics.train_seconds
    assert metrics.tokens_per_second == pytest.approx(trained_here / metrics.train_seconds)


@needs_slurm
@needs_train
def test_two_cpu_processes_train_under_srun_and_torchrun(slurm: slurmcluster.SlurmCluster, tmp_path: Path) -> None:
    # gpus: 2 on a node without GPUs: the same script, torchrun's two processes train on the CPU.
    from olmix.training.metrics import read_metrics
    from tests.support.trainings import write_plan

    plan = write_plan(tmp_path)
    run_dir = plan.parent
    command = [sys.executable, "-m", "olmix.train", "--plan", str(plan), "--out", str(run_dir)]
    one = RunSpec("g", "run", run_dir, plan, [*command, "--sequence-length", "64", "--heldout-tokens", "512"], "ddp1")
    backend = SlurmBackend(processes_per_node=2, sbatch_args=["--cpus-per-task=2"])
    job = backend.submit(one)
    found = wait(backend, [job], [run_dir], timeout=600)[job]
    log = (run_dir / "train.log").read_text()
    assert found.state == RunState.SUCCEEDED, log[-3000:]
    script = (run_dir / "slurm.sh").read_text()
    assert "-m torch.distributed.run" in script and "--checkpoint-interval 100" in script
    assert "Applied DDP to the model with 1D device mesh with shape (dp=2,)" in log
    assert log.count("trained 30 steps, 7680 tokens") == 1  # rank 0 alone reports
    metrics = read_metrics(run_dir / "metrics.json")
    assert (metrics.steps, metrics.tokens_trained) == (30, 30 * 4 * 64)  # as one process trains it
    assert (run_dir / "checkpoints" / "step30").is_dir()  # the default interval: OLMo-core saves the last step too


@needs_slurm
def test_a_cancel_while_a_slow_sbatch_submits_the_array_cancels_every_run_of_it(
    slurm: slurmcluster.SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = REPO / "config/examples/minimal.yaml"
    names = ["run-a", "run-b"]
    plan: dict[str, Any] = {
        "plan_version": 1,
        "group": "g-slow",
        "config": {"path": str(config), "sha256": launcher.sha256_file(config), "overrides": []},
        "runs": [{"name": name, "leaves": []} for name in names],
    }
    gate, bin_dir = tmp_path / "gate", tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # Slurm's sbatch, answering only once the test lets it (the job is queued before)
    sbatch.write_text(
        f'#!/bin/sh\nout="$({shlex.quote(slurmcluster._which("sbatch"))} "$@")" || exit $?\n'
        f"touch {shlex.quote(str(gate))}.waiting\n"
        f'while [ ! -e {shlex.quote(str(gate))} ]; do sleep 0.05; done\necho "$out"\n'
    )
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    results: list[launcher.Submitted] = []
    launch = threading.Thread(
        target=lambda: results.extend(
            launcher.launch(plan, config, SlurmBackend(), out, command=py("import time; time.sleep(300)"))
        ),
        daemon=True,
    )
    launch.start()
    deadline = time.monotonic() + 60
    while not Path(f"{gate}.waiting").exists():
        assert time.monotonic() < deadline and launch.is_alive()
        time.sleep(0.05)
    group = out / "g-slow"
    assert launcher.cancel_runs(group, SlurmBackend()).not_submitted == names  # no job id known yet
    gate.touch()
    launch.join(60)
    assert [(r.run, r.new, r.cancelled) for r in results] == [(n, True, True) for n in names]
    record = launcher.read_record(group)
    assert all(e.cancelled_at is not None and e.cancel_requested_at is not None for e in record.runs)
    backend = SlurmBackend()
    found = wait(backend, [r.job_id for r in results], [group / n for n in names])
    assert {s.state for s in found.values()} == {RunState.CANCELLED}, found
