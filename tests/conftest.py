from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import olmixcli

if TYPE_CHECKING:
    from tests.services.beakerservice import BeakerService

REPO = Path(__file__).resolve().parent.parent

# The fits are many small solves, as in `olmix fit` (commands/fit.py): BLAS threads only contend for the cores
# (tests/unit/swarm/test_swarm_fit.py took 15 s instead of 2.6 s on a loaded 2-core machine). Set before numpy loads, as
# defaults; OMP_NUM_THREADS is left alone, since the local backend and the trainer choose it from the cores.
for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Write a file under tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return _write


def _has_train_extra() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "olmo_core", "numpy"))


HAS_TRAIN_EXTRA = _has_train_extra()
needs_train = pytest.mark.skipif(
    not HAS_TRAIN_EXTRA, reason="needs the olmix[train] extra (torch, ai2-olmo-core): pip install 'olmix[train]'"
)


@pytest.fixture(params=["in-process", pytest.param("process", marks=pytest.mark.slow)])
def run_olmix(request: pytest.FixtureRequest) -> olmixcli.Run:
    """The olmix command, in this process and (marked slow) as a real process: see tests/support/olmixcli.py."""
    return olmixcli.in_process if request.param == "in-process" else olmixcli.in_subprocess


@pytest.fixture
def beaker_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BeakerService]:
    """A stand-in Beaker service on loopback (tests/services/beakerservice), os.environ pointing beaker-py at it."""
    pytest.importorskip("beaker", reason="needs the olmix[beaker] extra (beaker-py): pip install 'olmix[beaker]'")
    # the stand-in's TLS certificate; a development dependency through moto
    pytest.importorskip("cryptography", reason="the stand-in Beaker's TLS certificate needs cryptography")
    from tests.services.beakerservice import UNSET_VARIABLES, BeakerService

    with BeakerService(tmp_path / "beaker") as service:
        for name, value in service.env.items():
            monkeypatch.setenv(name, value)
        for name in UNSET_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        yield service
