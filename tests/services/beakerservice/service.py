"""`BeakerService`: the stand-in's lifecycle (both servers on free loopback ports), test controls and faults."""

from __future__ import annotations

import copy
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import grpc  # type: ignore[import-untyped]
import yaml
from beaker import beaker_pb2_grpc

from tests.services.beakerservice import grpcapi, pb, rest, tls
from tests.services.beakerservice import state as st

if TYPE_CHECKING:
    from beaker import Beaker

T = TypeVar("T")

# Variables that would override the stand-in's config file in beaker-py; the fixture removes them.
UNSET_VARIABLES = ("BEAKER_TOKEN", "BEAKER_ADDR")


class Gate:
    """A call held at the server: `arrived` is set when it gets there; it goes on after `release()`; `finished`
    is set once the server is done with it (its effect made or refused), whether or not the client still waits."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.finished = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def wait_arrived(self, timeout: float = 30.0) -> bool:
        return self.arrived.wait(timeout)

    def wait_finished(self, timeout: float = 30.0) -> bool:
        return self.finished.wait(timeout)

    def _hold(self) -> None:
        self.arrived.set()
        self._released.wait()


@dataclass
class Fault:
    """What happens to the next call of one name: held, delayed, and/or refused; before or after its effect."""

    status: int | None = None
    message: str = "injected failure"
    delay: float = 0.0
    gate: Gate | None = None
    after: bool = False

    def apply(self) -> None:
        if self.gate is not None:
            self.gate._hold()
        if self.delay:
            time.sleep(self.delay)
        if self.status is not None:
            raise st.CallError(self.status, self.message)


@dataclass
class _Faults:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict[str, list[Fault]] = field(default_factory=dict)


class BeakerService:
    """A Beaker service on loopback for the real beaker-py client: REST over HTTP, gRPC over TLS.

    Use as a context manager (or start()/stop()); `folder` receives the client config file.
    """

    def __init__(
        self,
        folder: Path | None = None,
        *,
        token: str = "beaker-stand-in-token",
        user: str = "tester",
        org: str = "ai2",
        default_workspace: str | None = None,
    ) -> None:
        self.token = token
        self.state = st.State(org=org, user=user)
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._faults = _Faults()
        self._gates: list[Gate] = []
        self._folder = folder
        self._default_workspace = default_workspace
        self._http: rest.Server | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc: Any = None
        self.address = ""
        self.rpc_address = ""
        self.config_path = Path()

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> BeakerService:
        material = tls.material()
        self._http = rest.Server(self)
        self.address = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="beaker-rest", daemon=True)
        self._http_thread.start()
        limit = 64 * 1024 * 1024
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="beaker-grpc"),
            interceptors=[grpcapi.Interceptor(self)],
            options=[("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)],
        )
        beaker_pb2_grpc.add_BeakerServicer_to_server(grpcapi.Servicer(self), self._grpc)  # type: ignore[no-untyped-call]
        port = self._grpc.add_secure_port(
            "127.0.0.1:0", grpc.ssl_server_credentials([(material.key_pem, material.cert_pem)])
        )
        self._grpc.start()
        self.rpc_address = f"127.0.0.1:{port}"
        folder = self._folder or Path(tempfile.mkdtemp(prefix="beakerservice-"))
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "beaker-config.yml"
        config = {
            "user_token": self.token,
            "agent_address": self.address,
            "rpc_address": self.rpc_address,
            "default_org": self.state.org,
            "default_workspace": self._default_workspace or "",
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._check_trusted()
        return self

    def stop(self) -> None:
        """Release held calls, let calls in flight finish (a few seconds at most), close both ports."""
        for gate in self._gates:
            gate.release()
        if self._grpc is not None:
            # with no grace a call in flight ends UNAVAILABLE, which beaker-py retries for ever
            self._grpc.stop(grace=5).wait(10)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> BeakerService:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _check_trusted(self) -> None:
        """Open a channel as beaker-py does; a process whose gRPC roots predate the certificate fails here."""
        channel = grpc.secure_channel(self.rpc_address, grpc.ssl_channel_credentials())
        try:
            stub = beaker_pb2_grpc.BeakerStub(channel)  # type: ignore[no-untyped-call]
            from beaker import beaker_pb2 as pb2

            stub.GetUser(pb2.GetUserRequest(), metadata=[("authorization", f"bearer {self.token}")], timeout=10)
        except grpc.RpcError as err:
            raise tls.UntrustedError(
                f"beaker-py cannot reach the stand-in's gRPC port over TLS ({err.code()}): this process opened a "
                f"secure gRPC channel before {tls.ROOTS_VARIABLE} named the stand-in's roots file; start the "
                "stand-in before any other gRPC client in the process"
            ) from None
        finally:
            channel.close()
        with self._calls_lock:
            self.calls.clear()

    @property
    def env(self) -> dict[str, str]:
        """Variables a beaker-py process needs to reach this server (also remove UNSET_VARIABLES)."""
        loopback = "127.0.0.1,localhost"
        return {
            "BEAKER_CONFIG": str(self.config_path),
            tls.ROOTS_VARIABLE: str(tls.material().roots_file),
            "NO_PROXY": loopback,
            "no_proxy": loopback,
            "no_grpc_proxy": loopback,
        }

    def subprocess_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) with `env` applied and UNSET_VARIABLES removed: for subprocess.run(env=...)."""
        merged = {**(os.environ if base is None else base), **self.env}
        for name in UNSET_VARIABLES:
            merged.pop(name, None)
        return merged

    def client(self, **overrides: Any) -> Beaker:
        """A real beaker-py client for this server, built from its config file (no upgrade check)."""
        from beaker import Beaker
        from beaker.config import Config

        config = Config.from_path(self.config_path)
        for name, value in overrides.items():
            setattr(config, name, value)
        return Beaker(config, check_for_upgrades=False)

    # -- the call path shared by both sides ----------------------------------------------------------------

    def _handle(self, name: str, token: str, action: Callable[[], T], *, storage_token: bool = False) -> T:
        with self._calls_lock:
            self.calls[name] += 1
        with self._faults.lock:
            queue = self._faults.pending.get(name)
            fault = queue.pop(0) if queue else None
        if not storage_token and token != self.token:
            raise st.CallError(401, "unauthorized: invalid or missing token")
        try:
            if fault is not None and not fault.after:
                fault.apply()
            result = action()
            if fault is not None and fault.after:
                fault.apply()
            return result
        finally:
            if fault is not None and fault.gate is not None:
                fault.gate.finished.set()

    # -- test controls: setup ------------------------------------------------------------------------------

    def add_workspace(self, full_name: str) -> str:
        """Create workspace 'org/name' (idempotent); returns its id."""
        with self.state.lock:
            return self.state.add_workspace(full_name).id

    def add_cluster(self, full_name: str) -> str:
        """Create cluster 'org/name' (idempotent); returns its id."""
        with self.state.lock:
            return self.state.add_cluster(full_name).id

    def add_secret(self, workspace: str, name: str) -> None:
        """Create secret `name` in a workspace (name or id). Only the name exists: the stand-in keeps no values."""
        with self.state.lock:
            self.state.add_secret(workspace, name)

    # -- test controls: jobs -------------------------------------------------------------------------------

    def set_job_state(
        self,
        experiment: str,
        state: str,
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        task: str | None = None,
        canceled_code: str | None = None,
    ) -> None:
        """Move the latest job of every task (or of `task`, by name or id) of an experiment to `state`.

        `experiment` is an id, 'author/name' or a bare name. States are beaker-py's BeakerWorkloadStatus names
        (st.JOB_STATES). `reason` becomes the job's status message (and canceled_for when canceled); exit_code
        defaults to 0 for succeeded and 1 for failed. Moving a finished job starts a new one (a retry).
        canceled_code: a BeakerCancelationCode name ("system_preemption", "timeout", ...; default "manual").
        """
        if canceled_code is not None:
            pb.cancelation_code(canceled_code)  # an unknown name fails here, not in a later read
        with self.state.lock:
            self.state.set_job_state(
                experiment, state, exit_code=exit_code, reason=reason, task=task, canceled_code=canceled_code
            )

    def write_result(self, experiment: str, files: dict[str, bytes], *, task: str | None = None) -> str:
        """What the latest job of each task (or of `task`) wrote under its result path: files (path → bytes) added to
        the job's result dataset, made on its first write, as the job's task uploads them. A finished job's result
        is committed and changes no more: move the experiment to a new state first (a new job, a new result).
        Returns the (last) result dataset's id."""
        with self.state.lock:
            return self.state.write_result(experiment, files, task=task)

    # -- test controls: reading what the client did --------------------------------------------------------

    def experiments(self) -> list[st.Experiment]:
        """Copies of every experiment created, oldest first; `.spec` is the JSON the client posted."""
        with self.state.lock:
            return [copy.deepcopy(e) for e in sorted(self.state.experiments.values(), key=lambda e: e.created)]

    def experiment(self, id_or_name: str) -> st.Experiment:
        with self.state.lock:
            return copy.deepcopy(self.state.experiment(id_or_name))

    def datasets(self) -> list[st.Dataset]:
        with self.state.lock:
            return [copy.deepcopy(d) for d in sorted(self.state.datasets.values(), key=lambda d: d.created)]

    def dataset_files(self, id_or_name: str) -> dict[str, bytes]:
        """The files of a dataset (id, 'author/name' or bare name) as uploaded: path → bytes."""
        with self.state.lock:
            return dict(self.state.dataset(id_or_name).files)

    def reset_calls(self) -> None:
        with self._calls_lock:
            self.calls.clear()

    def total_calls(self) -> int:
        with self._calls_lock:
            return sum(self.calls.values())

    # -- test controls: faults -----------------------------------------------------------------------------

    def _add_fault(self, call: str, fault: Fault, times: int) -> None:
        if call not in grpcapi.METHODS and call not in rest.REST_CALLS:
            raise ValueError(f"unknown call {call!r}")
        with self._faults.lock:
            self._faults.pending.setdefault(call, []).extend(copy.copy(fault) for _ in range(times))

    def fail_next(
        self, call: str, status: int = 503, *, message: str = "injected failure", after: bool = False, times: int = 1
    ) -> None:
        """Refuse the next `times` calls named `call` with HTTP `status` (gRPC: the matching code).

        after=True lets the call take effect first (an experiment is created) and then refuses: the client never
        learns that it succeeded.
        """
        self._add_fault(call, Fault(status=status, message=message, after=after), times)

    def delay_next(self, call: str, seconds: float, *, times: int = 1, after: bool = False) -> None:
        """Slow the next `times` calls named `call` by `seconds` before they take effect.

        after=True slows the answer instead, once the call took effect: past a client's timeout, the server has
        made what the client gave up on. A client that gave up before a delay without after=True ends still has
        its call take effect then (the server does not notice that nobody waits).
        """
        self._add_fault(call, Fault(delay=seconds, after=after), times)

    def hold_next(self, call: str, *, after: bool = False) -> Gate:
        """Hold the next call named `call` at the server until the returned gate is released (stop() releases).

        after=True holds it after it took effect, before the reply: kill the client then, and the server has
        done the work the client never heard about.
        """
        gate = Gate()
        self._gates.append(gate)
        self._add_fault(call, Fault(gate=gate, after=after), 1)
        return gate
