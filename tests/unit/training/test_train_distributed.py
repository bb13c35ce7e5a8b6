"""`olmix.train` under torchrun: two CPU processes train the same run as one process does."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from olmix.errors import OlmixError
from olmix.training import trainer as train
from tests.conftest import REPO, needs_train
from tests.support.trainings import olmix_train, write_plan

TINY = ("--sequence-length", "64", "--heldout-tokens", "512")


def test_the_process_group_is_gloo_on_the_cpu_nccl_with_gloo_on_gpus_and_none_alone() -> None:
    assert train.distributed_backend("cpu", 1) is None
    assert train.distributed_backend("cuda", 1) is None
    assert train.distributed_backend("cpu", 2) == "gloo"
    assert train.distributed_backend("cuda", 8) == "cpu:gloo,cuda:nccl"


def test_each_rank_reads_its_share_of_the_global_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = train.Settings("cpu", 64, 4, 8, 1e-3, None, 512, 0)
    assert train.per_rank(settings, 1) == settings
    assert train.per_rank(settings, 2).device_batch_size == 4  # 8 / 2 = 4 instances each
    assert train.per_rank(settings, 4).device_batch_size == 2  # a device batch never exceeds the rank's share
    with pytest.raises(OlmixError, match="cannot be split evenly over 3 processes"):
        train.per_rank(settings, 3)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert (train.world_size(), train.rank()) == (2, 1)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(OlmixError, match="WORLD_SIZE='two'"):
        train.world_size()


@needs_train
def test_ddp_over_more_than_one_process_and_bf16_autocast_on_gpus_only() -> None:
    from olmo_core.config import DType
    from olmo_core.distributed.parallel import DataParallelType

    cpu = train.Settings("cpu", 64, 2, 8, 1e-3, None, 512, 0)
    alone = train.train_module_config(cpu, 30, 1)
    assert (alone.dp_config, alone.autocast_precision) == (None, None)
    assert alone.rank_microbatch_size == 2 * 64
    pair = train.train_module_config(cpu, 30, 2)
    assert pair.dp_config.name == DataParallelType.ddp and pair.dp_config.param_dtype is None
    assert pair.autocast_precision is None
    gpus = train.train_module_config(dataclasses.replace(cpu, device="cuda"), 30, 8)
    assert gpus.dp_config.name == DataParallelType.ddp
    assert gpus.autocast_precision == DType.bfloat16
    assert train.train_module_config(dataclasses.replace(cpu, device="cuda"), 30, 1).dp_config is None


@pytest.mark.slow
@needs_train
def test_two_processes_under_torchrun_train_what_one_process_trains(tmp_path: Path) -> None:
    one = write_plan(tmp_path / "one")
    alone = olmix_train("--plan", str(one), *TINY)
    assert alone.returncode == 0, alone.stderr[-3000:]
    two = write_plan(tmp_path / "two")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "WORLD_SIZE", "RANK")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    pair = subprocess.run(
        [*command, "-m", "olmix.train", "--plan", str(two), *TINY],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    log = pair.stdout + pair.stderr
    assert pair.returncode == 0, log[-3000:]
    assert "Applied DDP to the model with 1D device mesh with shape (dp=2,)" in log
    assert "Using distributed backend gloo" in log
    assert log.count("trained 30 steps") == 1  # rank 0 alone reports and writes
    first = json.loads((one.parent / "metrics.json").read_text())
    second = json.loads((two.parent / "metrics.json").read_text())
    assert (second["steps"], second["tokens_trained"]) == (first["steps"], first["tokens_trained"]) == (30, 7680)
    assert second["settings"]["device_batch_size"] == 2  # each rank read half of every batch of 4
    assert second["mixture"] == first["mixture"]
    # The same global batches, gradients averaged over the ranks: the same training, up to summation order.
    assert [s for s, _ in second["train_loss"]] == list(range(1, 31))
    for (_, a), (_, b) in zip(first["train_loss"], second["train_loss"], strict=True):
        assert b == pytest.approx(a, rel=1e-4)
    assert second["final_train_loss"] < second["train_loss"][0][1]
    for leaf, result in first["heldout"]["leaves"].items():
        assert second["heldout"]["leaves"][leaf]["loss"] == pytest.approx(result["loss"], rel=1e-4)
    assert not list(two.parent.glob("metrics.json.*"))  # no second writer's leftovers
