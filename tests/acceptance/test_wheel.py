"""What `pip install olmix` installs: the built wheel in a fresh virtual environment, not the editable checkout.

The other tests import olmix from the source tree, where the schemas, dev tools and tests all lie beside
the code; a file the wheel forgets (the schemas once were) only shows up here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.tokenfiles import write_tokens

pytestmark = pytest.mark.slow

# What the wheel is built from; anything else in the repository (tools/, tests/, config/) must stay out of it.
SOURCES = ("pyproject.toml", "README.md", "olmix", "generated")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    work: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the installed `olmix` with an environment that cannot see the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["XDG_CACHE_HOME"] = str(self.work / "cache")
        return subprocess.run(
            [str(self.venv / "bin" / "olmix"), *args], cwd=self.work, env=env, capture_output=True, text=True
        )


def _build(tmp: Path) -> Path:
    # A copy, so the build's scratch folders (build/, *.egg-info) never land in the checkout.
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=ignore)
        else:
            shutil.copy2(origin, src / name)
    dist = tmp / "dist"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)], check=True)
    (wheel,) = dist.glob("olmix-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build(tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # This environment's pip installs into the fresh one; the core dependencies come from the package index.
    cmd = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-compile"]
    subprocess.run([*cmd, str(wheel)], check=True)
    work = tmp / "work"
    work.mkdir()
    yield Installed(wheel, venv, work)


def test_the_wheel_holds_every_schema_and_no_dev_code(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = whl.namelist()
        for schema in sorted((REPO / "schema").glob("*.schema.json")):
            assert whl.read(f"olmix_generated/schemas/{schema.name}") == schema.read_bytes()
    top = {n.split("/")[0] for n in names if not n.startswith("olmix-")}
    assert top == {"olmix", "olmix_generated"}
    assert not [n for n in names if "devtools" in n or "/tests/" in n or n.startswith("tools/")]


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import olmix, olmix_generated; print(olmix.__file__); print(olmix_generated.__file__)"
    python = str(installed.venv / "bin" / "python")
    out = subprocess.run([python, "-c", probe], cwd=installed.work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        assert Path(line).is_relative_to(installed.venv), line


@pytest.mark.parametrize("name", ["mixture", "study", "launch-plan"])
def test_schema_prints_the_path_of_a_shipped_schema(installed: Installed, name: str) -> None:
    out = installed.run("schema", "--name", name)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path.is_relative_to(installed.venv)
    assert path.read_bytes() == (REPO / "schema" / f"{name}.schema.json").read_bytes()


def test_validate_accepts_a_good_config_and_locates_the_error_in_a_bad_one(installed: Installed) -> None:
    good = installed.work / "good.yaml"
    good.write_text("name: ok\nsources:\n  - name: a\n    paths: ['s3://b/a/*.npy']\n")
    bad = installed.work / "bad.yaml"
    bad.write_text("name: bad\nsources:\n  - name: a\n    paths: ['s3://b/a/*.npy']\n    weight: lots\n")
    out = installed.run("validate", str(good))
    assert out.returncode == 0, out.stderr
    out = installed.run("validate", str(bad))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "bad.yaml:5:" in out.stdout + out.stderr


def test_a_dry_run_plans_over_local_token_files(installed: Installed) -> None:
    data = installed.work / "data"
    write_tokens(data / "a" / "part-0.npy", 600_000)
    write_tokens(data / "b" / "part-0.npy", 400_000)
    config = installed.work / "mix.yaml"
    config.write_text(
        "name: wheel\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.05\nsources:\n"
        f"  - name: a\n    paths: ['{data}/a/*.npy']\n"
        f"  - name: b\n    paths: ['{data}/b/*.npy']\n    max_repetition_factor: 2\n"
    )
    plan = installed.work / "plan.json"
    out = installed.run("launch", "run", "--config", str(config), "--dry-run", "--plan-out", str(plan))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert ["a", "0.5000", "600,000", "500,000"] in [row[:4] for row in rows]
    plan_doc = json.loads(plan.read_text())
    assert [leaf["name"] for leaf in plan_doc["runs"][0]["leaves"]] == ["a", "b"]


def test_the_beaker_backend_without_its_extra_is_one_message_naming_the_extra(installed: Installed) -> None:
    data = installed.work / "data-beaker"
    write_tokens(data / "a" / "part-0.npy", 1_200_000)
    config = installed.work / "beaker.yaml"
    config.write_text(
        "name: wheel\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.05\nsources:\n"
        f"  - name: a\n    paths: ['{data}/a/*.npy']\n"
    )
    out = installed.run("launch", "run", "--config", str(config), "--backend", "beaker", "--dry-run")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "pip install 'olmix[beaker]'" in out.stderr
