from __future__ import annotations

import array
import glob
import hashlib
from pathlib import Path

import pytest

from olmix import demodata
from olmix.cli import main


def tokens(path: Path) -> array.array[int]:
    out = array.array("I")
    out.frombytes(path.read_bytes())
    return out


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.npy")):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    demodata.write_corpus(root, seed=3, tokens_per_bucket=2048)
    return root


def test_the_layout_mirrors_the_real_corpus(corpus: Path) -> None:
    base = corpus / demodata.ALL_DRESSED
    assert sorted(p.name for p in base.iterdir()) == sorted(demodata.TOPICS)
    for topic in demodata.TOPICS:
        buckets = sorted(p.name for p in (base / topic).iterdir())
        assert buckets == [f"vigintile_{i:04d}" for i in range(1, 21)]
    for source in (demodata.ARXIV, demodata.WIKIPEDIA):
        assert (corpus / source / "part-00000.npy").is_file()


def test_a_star_glob_over_a_training_folder_misses_the_heldout_split(corpus: Path) -> None:
    folder = corpus / demodata.ALL_DRESSED / "art_and_design" / "vigintile_0015"
    assert [p.split("/")[-1] for p in glob.glob(f"{folder}/*.npy")] == ["part-00000.npy"]
    assert (folder / "heldout" / "part-00000.npy").is_file()


def test_every_document_ends_with_eos_and_tokens_fit_the_vocabulary(corpus: Path) -> None:
    for path in corpus.rglob("*.npy"):
        data = tokens(path)
        assert data[-1] == demodata.EOS
        assert max(data) == demodata.EOS
        assert all(t < demodata.VOCAB for t in data if t != demodata.EOS)


def test_higher_vigintiles_are_more_learnable(corpus: Path) -> None:
    # fewer distinct tokens per token written = a lower-entropy, more learnable process
    base = corpus / demodata.ALL_DRESSED / "education_and_jobs"
    variety = []
    for bucket in (1, 5, 10, 15, 20):
        data = tokens(base / f"vigintile_{bucket:04d}" / "part-00000.npy")
        variety.append(len(set(data)) / len(data))
    assert variety == sorted(variety, reverse=True)
    assert variety[0] > 2 * variety[-1]


def test_the_same_seed_gives_the_same_corpus_and_another_seed_another(tmp_path: Path, corpus: Path) -> None:
    demodata.write_corpus(tmp_path / "again", seed=3, tokens_per_bucket=2048)
    demodata.write_corpus(tmp_path / "other", seed=4, tokens_per_bucket=2048)
    assert digest(tmp_path / "again") == digest(corpus)
    assert digest(tmp_path / "other") != digest(corpus)


@pytest.mark.parametrize(("bucket", "noise"), [(20, 0.02), (1, 0.90)])
def test_noise_by_bucket(bucket: int, noise: float) -> None:
    assert demodata.vigintile_noise(bucket) == pytest.approx(noise)


def test_the_command_writes_the_corpus(tmp_path: Path) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["demo-data", str(tmp_path / "d"), "--seed", "1", "--tokens-per-bucket", "1024"])
    assert result.exit_code == 0, result.output
    assert "122 training folders" in result.output
    assert len(list((tmp_path / "d").rglob("*.npy"))) == 244
