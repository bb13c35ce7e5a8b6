"""Which files a command reads when given files and folders."""

from __future__ import annotations

from pathlib import Path

from olmix.loading.configfiles import config_files


def tree(root: Path) -> None:
    for name in ["b.yaml", "a.yml", "notes.txt", "sub/c.yaml", "sub/deeper/d.yml", "dir.yaml/e.yaml"]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("name: x\n")


def test_a_folder_is_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    tree(tmp_path)
    assert config_files([tmp_path]) == [tmp_path / "a.yml", tmp_path / "b.yaml"]


def test_recursive_takes_the_whole_tree_in_path_order(tmp_path: Path) -> None:
    tree(tmp_path)
    got = [p.relative_to(tmp_path).as_posix() for p in config_files([tmp_path], recursive=True)]
    assert got == ["a.yml", "b.yaml", "dir.yaml/e.yaml", "sub/c.yaml", "sub/deeper/d.yml"]


def test_files_are_kept_as_named_in_the_order_given(tmp_path: Path) -> None:
    tree(tmp_path)
    named = [tmp_path / "notes.txt", tmp_path / "missing.yaml", tmp_path / "sub"]
    assert config_files(named) == [tmp_path / "notes.txt", tmp_path / "missing.yaml", tmp_path / "sub" / "c.yaml"]
