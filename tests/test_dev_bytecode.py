"""dev.py writes the project's bytecode, so a (re)starting worker does not compile its sources again
even where Python may not write bytecode itself (PYTHONDONTWRITEBYTECODE)."""
from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _dev():
    spec = importlib.util.spec_from_file_location("arrears_dev_bootstrap", ROOT / "dev.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bytecode_is_written_even_where_python_may_not_write_it(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "workflows" / "turn.py"
    source.parent.mkdir()
    source.write_text("VALUE = 42\n")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    _dev().compile_bytecode(tmp_path)
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert cached.is_file(), "no bytecode written"


def test_every_project_package_is_compiled() -> None:
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in found}
    assert packages <= set(_dev().PACKAGES), packages - set(_dev().PACKAGES)


def test_the_project_under_test_has_its_bytecode() -> None:
    # The suite runs through `dev.py test`, which compiled the packages first.
    import workflows.account_collection as module

    assert Path(importlib.util.cache_from_source(module.__file__)).is_file()
