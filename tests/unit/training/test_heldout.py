from __future__ import annotations

import math
from pathlib import Path

import pytest

from olmix.training import heldout
from tests.conftest import needs_train
from tests.support.tokenfiles import write_tokens

VOCAB = 100_352


def test_heldout_files_are_the_heldout_folders_beside_the_training_files(tmp_path: Path) -> None:
    train = [write_tokens(tmp_path / f"b{i}" / "part-0.npy", 100) for i in range(3)]
    write_tokens(tmp_path / "b0" / "heldout" / "x.npy", 100)
    write_tokens(tmp_path / "b1" / "heldout" / "y.npy", 100)
    (tmp_path / "b1" / "heldout" / "y.npy.json").write_text('{"bytes": 400}')
    found = heldout.heldout_files(str(p) for p in train)
    assert [p.split("/")[-3:] for p in found] == [["b0", "heldout", "x.npy"], ["b1", "heldout", "y.npy"]]


@pytest.mark.parametrize(
    ("sidecar", "expected"), [('{"bytes": 400}', 400), ('{"bytes": 0}', None), ("junk", None), (None, None)]
)
def test_byte_counts_come_from_a_sidecar(tmp_path: Path, sidecar: str | None, expected: int | None) -> None:
    path = write_tokens(tmp_path / "x.npy", 10)
    if sidecar is not None:
        (tmp_path / "x.npy.json").write_text(sidecar)
    assert heldout.byte_count(str(path)) == expected


def test_sources_combine_leaves_weighted_by_tokens() -> None:
    leaves = {
        "web:a": heldout.HeldoutLoss(100, 2.0, 400.0, ("f1",)),
        "web:b": heldout.HeldoutLoss(300, 4.0, None, ("f2",)),
        "arxiv": heldout.HeldoutLoss(200, 3.0, 800.0, ("f3",)),
    }
    sources = heldout.by_source(leaves)
    assert sources["web"].loss == pytest.approx(3.5)
    assert sources["web"].bits_per_byte is None  # one leaf's bytes are unknown
    assert sources["arxiv"].bits_per_byte == pytest.approx(3.0 * 200 / math.log(2) / 800)


@pytest.mark.slow
@needs_train
def test_bits_per_byte_scale_with_the_evaluated_share(tmp_path: Path) -> None:
    import torch

    class Uniform(torch.nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.zeros(*ids.shape, VOCAB)

    path = write_tokens(tmp_path / "x.npy", 1024, doc_length=64)
    (tmp_path / "x.npy.json").write_text('{"bytes": 4096}')
    result = heldout.evaluate(Uniform(), [str(path)], dtype="uint32", sequence_length=64, max_tokens=512, device="cpu")
    assert result.tokens == 512 - 8
    assert result.loss == pytest.approx(math.log(VOCAB))
    # 512 of 1024 tokens evaluated, 504 of them predicted: 4096 × 504/1024 bytes
    assert result.bits_per_byte == pytest.approx(math.log2(VOCAB) * 504 / (4096 * 504 / 1024))
