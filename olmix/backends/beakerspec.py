"""Beaker experiment specs for olmix runs: built with beaker-py's own spec classes, then checked by olmix.

beaker-py's spec classes are plain dataclasses that serialize whatever they
hold: a misspelt key read from YAML is dropped, an int where a string belongs
is sent as it is, and the service answers (or not) long after olmix could
have said where the mistake is. So every spec olmix builds is checked before
it is shown or sent: each field's value against the field's declared type,
walking `dataclasses.fields` recursively, and each key of the JSON it
serializes to against the fields it came from. A problem is refused with its
location (`tasks[0].envVars[1].secret`).

The spec types are loaded without beaker-py's network client: importing the
`beaker` package starts with its client (grpc, requests), which a dry run
neither needs nor should pay for. `spec_types()` loads `beaker.types` alone
when the package is not imported yet; a later `import beaker` reuses that
same module, so the classes are the ones the client sends.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from olmix.backends import BackendError
from olmix.errors import ExtraMissing

PLAN_MOUNT = "/olmix/plan"  # where the run's plan dataset is mounted in the task
PLAN_FILE = "plan.json"  # the file the plan dataset holds
NAME_PREFIX = "olmix-"
RENDEZVOUS_PORT = 29400
# Environment variables Beaker sets in each replica of a task with leader selection.
LEADER_HOST_VAR = "BEAKER_LEADER_REPLICA_HOSTNAME"
RANK_VAR = "BEAKER_REPLICA_RANK"


def spec_types() -> types.ModuleType:
    """`beaker.types`, loaded without beaker-py's client when the `beaker` package is not imported yet."""
    if "beaker" in sys.modules:
        return importlib.import_module("beaker.types")
    found = importlib.util.find_spec("beaker")
    if found is None or not found.submodule_search_locations:
        raise ExtraMissing("the beaker backend needs beaker-py", "beaker")
    # A stand-in for the package while its types module loads: beaker/__init__.py (the client) is not run.
    package = types.ModuleType("beaker")
    package.__path__ = list(found.submodule_search_locations)
    package.__spec__ = found
    sys.modules["beaker"] = package
    try:
        return importlib.import_module("beaker.types")
    except ImportError as exc:
        raise ExtraMissing(f"cannot load beaker-py's spec types ({exc})", "beaker") from None
    finally:
        del sys.modules["beaker"]  # `import beaker` now runs the real package, which reuses beaker.types


@dataclass(frozen=True)
class Settings:
    """A group's Beaker settings, from its config (recorded as the backend's options)."""

    image: str | None = None  # beaker://OWNER/NAME or docker://REFERENCE
    clusters: list[str] = field(default_factory=list)
    workspace: str | None = None
    budget: str | None = None
    priority: str = "normal"
    gpus: int = 1
    nodes: int = 1
    min_runtime_s: int | None = None
    auto_resume: bool | None = None
    weka: list[dict[str, str]] = field(default_factory=list)
    result_path: str = "/results"
    secret_names: dict[str, str] = field(default_factory=dict)

    def missing(self) -> list[str]:
        """What a launch needs and these settings lack."""
        needed = {
            "beaker.image": self.image,
            "cluster": self.clusters,
            "workspace": self.workspace,
            "budget": self.budget,
        }
        return [key for key, value in needed.items() if not value]


def settings_from_config(config: Any) -> dict[str, Any]:
    """The Beaker backend's options from a validated config; recorded with the launch."""
    beaker = getattr(config, "beaker", None)
    clusters = [config.cluster] if config.cluster else []
    options: dict[str, Any] = {
        "workspace": config.workspace,
        "budget": config.budget,
        "priority": config.priority,
        "gpus": config.gpus,
        "nodes": config.nodes,
    }
    if beaker is not None:
        clusters += [c for c in beaker.clusters if c not in clusters]
        options["image"] = beaker.image
        options["min_runtime_s"] = beaker.min_runtime_s
        options["auto_resume"] = beaker.auto_resume
        options["weka"] = [{"bucket": w.bucket, "mount_path": w.mount_path or f"/weka/{w.bucket}"} for w in beaker.weka]
        options["result_path"] = beaker.result_path
        options["secret_names"] = dict(beaker.secret_names)
    options["clusters"] = clusters
    return {key: value for key, value in options.items() if value is not None}


def experiment_name(token: str) -> str:
    """The experiment's name: its submission token, so a resumed launch finds it by name."""
    if not token or not token.replace("-", "").replace("_", "").isalnum() or token.startswith("-"):
        raise BackendError(f"submission token {token!r} is not a word of letters, digits, _ and -")
    return NAME_PREFIX + token


def dataset_name(token: str, plan_sha256: str = "") -> str:
    """The name of the dataset holding the run's plan: the experiment's, `-plan`, and the first 12 hex digits of
    the plan's SHA-256. A run submitted again under its token (an earlier submission went unanswered) finds
    its dataset again when its plan is the same, and gets a new one when the data store was listed anew."""
    return experiment_name(token) + "-plan" + (f"-{plan_sha256[:12]}" if plan_sha256 else "")


def description(group: str, run: str) -> str:
    """What the experiment's description says; a group's experiments are listed by it."""
    return f"olmix group {group} run {run}"


def task_command(command: Sequence[str], *, plan_file: str, run_dir: str, python: str, settings: Settings) -> list[str]:
    """The command the task runs: the launcher's, with this machine's paths made the task's.

    The plan file becomes the mounted plan, the run folder the result path and this Python `python`.
    With `nodes` > 1 a `python -m MODULE ...` command is started through torchrun, one process per
    GPU on each replica, meeting at the leader replica (Beaker's BEAKER_LEADER_REPLICA_HOSTNAME) with
    each replica's rank from BEAKER_REPLICA_RANK.
    """
    mapped = []
    for part in command:
        part = part.replace(plan_file, f"{PLAN_MOUNT}/{PLAN_FILE}").replace(run_dir, settings.result_path)
        mapped.append("python" if part == python else part)
    if settings.nodes <= 1:
        return mapped
    if len(mapped) < 3 or mapped[0] != "python" or mapped[1] != "-m":
        raise BackendError(
            f"nodes: {settings.nodes} starts the trainer through torchrun, which needs a trainer command "
            f"'{{python}} -m MODULE ...'; this one starts {command[0]!r}"
        )
    launcher = (
        f"exec torchrun --nnodes={settings.nodes} --nproc-per-node={settings.gpus} "
        f'--node-rank="${RANK_VAR}" --master-addr="${LEADER_HOST_VAR}" --master-port={RENDEZVOUS_PORT} "$@"'
    )
    # The trainer's arguments follow as positional parameters: no config string is parsed by the shell.
    return ["bash", "-c", launcher, "torchrun", *mapped[1:]]


def build(
    *,
    group: str,
    run: str,
    token: str,
    command: Sequence[str],
    env: Mapping[str, str],
    secrets: Sequence[str],
    settings: Settings,
    dataset: str | None = None,
) -> Any:
    """The BeakerExperimentSpec of one run (its plan in `dataset`, by default the run's dataset name)."""
    t = spec_types()
    image = settings.image or ""
    scheme, _, reference = image.partition("://")
    env_vars = [t.BeakerEnvVar(name=key, value=value) for key, value in env.items()]
    env_vars += [t.BeakerEnvVar(name=name, secret=settings.secret_names.get(name, name)) for name in secrets]
    mounts = [
        t.BeakerDataMount(
            source=t.BeakerDataSource(beaker=dataset or dataset_name(token)),
            mount_path=PLAN_MOUNT,
            mode=t.BeakerMountMode.readonly,
        )
    ]
    mounts += [
        t.BeakerDataMount(
            source=t.BeakerDataSource(weka=w["bucket"]), mount_path=w["mount_path"], mode=t.BeakerMountMode.readwrite
        )
        for w in settings.weka
    ]
    try:
        priority = t.BeakerJobPriority[settings.priority]
    except KeyError:
        raise BackendError(f"priority {settings.priority!r} is not a Beaker priority") from None
    many = settings.nodes > 1
    task = t.BeakerTaskSpec(
        name="train",
        image=t.BeakerImageSource(
            beaker=reference if scheme == "beaker" else None, docker=reference if scheme == "docker" else None
        ),
        context=t.BeakerTaskContext(
            priority=priority,
            # Beaker counts nanoseconds
            min_runtime=None if settings.min_runtime_s is None else settings.min_runtime_s * 1_000_000_000,
            auto_resume=settings.auto_resume,
        ),
        constraints=t.BeakerConstraints(cluster=list(settings.clusters)),
        command=list(command),
        env_vars=env_vars,
        datasets=mounts,
        resources=t.BeakerTaskResources(gpu_count=settings.gpus),
        result=t.BeakerResultSpec(path=settings.result_path),
        replicas=settings.nodes if many else None,
        leader_selection=many,
        host_networking=many,
        propagate_failure=True if many else None,
        propagate_preemption=True if many else None,
    )
    return t.BeakerExperimentSpec(description=description(group, run), budget=settings.budget, tasks=[task])


# -- checking ---------------------------------------------------------------------------------------------------


@functools.cache
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _check_value(value: Any, hint: Any, where: str, problems: list[str]) -> None:
    """Append a problem unless `value` is of type `hint` (a dataclass, list, enum, union or scalar)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return
        real = [option for option in options if option is not type(None)]
        if len(real) == 1:  # an optional field: its problems keep their place
            _check_value(value, real[0], where, problems)
            return
        for option in real:
            trial: list[str] = []
            _check_value(value, option, where, trial)
            if not trial:
                return
        problems.append(f"{where}: expected {_type_name(hint)}, got {type(value).__name__} {value!r:.60}")
        return
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {type(value).__name__}")
            return
        (item,) = typing.get_args(hint)
        for i, each in enumerate(value):
            _check_value(each, item, f"{where}[{i}]", problems)
        return
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if type(value) is not hint:
            problems.append(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
            return
        check_object(value, where, problems)
        return
    if isinstance(hint, type) and issubclass(hint, Enum):
        if not isinstance(value, hint):
            problems.append(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r:.60}")
        return
    # bool is an int to Python, never to Beaker; an int is no string
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        problems.append(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r:.60}")
    elif hint is int and isinstance(value, float):
        problems.append(f"{where}: expected int, got float {value!r}")
    elif hint in (str, bool) and type(value) is not hint:
        problems.append(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r:.60}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A spec class's field types, resolved once (beaker-py writes them as strings)."""
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def check_object(obj: Any, where: str, problems: list[str]) -> None:
    """Check every field of a spec dataclass against its declared type; no attribute beyond its fields."""
    cls: type = type(obj)
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(obj)}
    for extra in sorted(set(vars(obj)) - names):
        problems.append(f"{where}.{_camel(extra)}".lstrip(".") + f": not a field of {cls.__name__}")
    for f in dataclasses.fields(obj):
        _check_value(getattr(obj, f.name), hints[f.name], f"{where}.{_camel(f.name)}".lstrip("."), problems)


def _check_json(data: Any, obj: Any, where: str, problems: list[str]) -> None:
    """Every key of the serialized spec names a field of the object it came from (nothing added or renamed)."""
    if dataclasses.is_dataclass(obj) and isinstance(data, dict):
        known = {_camel(f.name): f.name for f in dataclasses.fields(obj)}
        for key, value in data.items():
            if key not in known:
                problems.append(f"{where}.{key}".lstrip(".") + f": not a field of {type(obj).__name__}")
                continue
            _check_json(value, getattr(obj, known[key]), f"{where}.{key}", problems)
    elif isinstance(obj, list) and isinstance(data, list):
        for i, (each, item) in enumerate(zip(data, obj, strict=False)):
            _check_json(each, item, f"{where}[{i}]", problems)


def _check_meaning(spec: Any, problems: list[str]) -> None:
    """What the types allow but Beaker refuses: exactly one image, one value per variable, one data source."""
    for i, task in enumerate(spec.tasks):
        at = f"tasks[{i}]"
        if (task.image.beaker is None) == (task.image.docker is None):
            problems.append(f"{at}.image: exactly one of beaker and docker is needed (set beaker.image)")
        for j, var in enumerate(task.env_vars or []):
            if (var.value is None) == (var.secret is None):
                problems.append(f"{at}.envVars[{j}] ({var.name}): exactly one of value and secret is needed")
        for j, mount in enumerate(task.datasets or []):
            sources = [f.name for f in dataclasses.fields(mount.source) if getattr(mount.source, f.name) is not None]
            if len(sources) != 1:
                problems.append(f"{at}.datasets[{j}].source: exactly one source is needed, got {sources or 'none'}")
            modes = {"readonly", "readwrite"}
            if mount.mode is not None and str(getattr(mount.mode, "value", mount.mode)) not in modes:
                problems.append(f"{at}.datasets[{j}].mode: {mount.mode!r} is not readonly or readwrite")
            if not mount.mount_path.startswith("/"):
                problems.append(f"{at}.datasets[{j}].mountPath: {mount.mount_path!r} is not an absolute path")
        if not (task.constraints and task.constraints.cluster):
            problems.append(f"{at}.constraints.cluster: no cluster (set cluster)")
        names = [var.name for var in task.env_vars or []]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{at}.envVars: {', '.join(dupes)} set twice (in env and in secrets?)")
    if not spec.budget:
        problems.append("budget: no budget (set budget)")


def problems(spec: Any) -> list[str]:
    """Every problem of a spec: a value of the wrong type, a key Beaker's spec has no field for, a refused shape."""
    found: list[str] = []
    check_object(spec, "", found)
    if not found:
        _check_json(spec.to_json(), spec, "", found)
        _check_meaning(spec, found)
    return found


def check(spec: Any, run: str) -> None:
    """Raise BackendError listing the problems of run `run`'s spec; nothing is sent with one."""
    if found := problems(spec):
        raise BackendError(f"the beaker spec of run {run} is refused: " + "; ".join(found) + "; nothing was submitted")


def to_yaml(spec: Any) -> str:
    """The spec as YAML, as `beaker experiment create` reads it."""
    import yaml

    return str(yaml.safe_dump(spec.to_json(), sort_keys=False, allow_unicode=True))
