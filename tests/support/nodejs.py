"""Node.js tools the tests drive (ajv, yaml-language-server), installed by `npm ci`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

NODE_MODULES = REPO / "node_modules"


def node() -> str:
    """Path of node; skips the test when Node.js is not installed, fails when `npm ci` was not run."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("Node.js is not installed: the ajv and yaml-language-server checks need node (and `npm ci`)")
    assert (NODE_MODULES / ".package-lock.json").is_file(), "Node packages missing: run `npm ci` (or `make install`)"
    return found


def package(name: str) -> Path:
    return NODE_MODULES / name
