from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.beakerservice import BeakerService

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def beaker_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BeakerService]:
    """A stand-in Beaker service on loopback (tests/beakerservice), with os.environ pointing beaker-py at it."""
    pytest.importorskip("beaker", reason="needs the olmix[beaker] extra (beaker-py): pip install 'olmix[beaker]'")
    # the stand-in's TLS certificate; a development dependency through moto
    pytest.importorskip("cryptography", reason="the stand-in Beaker's TLS certificate needs cryptography")
    from tests.beakerservice import UNSET_VARIABLES, BeakerService

    with BeakerService(tmp_path / "beaker") as service:
        for name, value in service.env.items():
            monkeypatch.setenv(name, value)
        for name in UNSET_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        yield service
