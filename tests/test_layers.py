"""The apps' layers are checked, not only configured: `lint-imports` passes on the tree as it is and
fails on a copy of it where one module imports upward (or sideways between explain and privacy, or
between the client and the service), naming the import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "demo", "mlgov", "core", "lineage", "explain", "privacy", "governance")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    # lint-imports puts its working directory first on sys.path, so a copied tree's packages are the
    # ones it reads (the project's editable install is only a fallback behind sys.path).
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def copied_tree(tmp_path_factory) -> Path:
    """The packages and pyproject.toml (which holds the contracts), copied without caches."""
    tree = tmp_path_factory.mktemp("layers")
    shutil.copy2(ROOT / "pyproject.toml", tree / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tree


def test_the_tree_keeps_its_layers():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "core <- lineage <- {explain, privacy} <- governance <- {config, demo} KEPT" in result.stdout
    assert ", 0 broken." in result.stdout


def test_the_unchanged_copy_keeps_its_layers(copied_tree):
    result = lint_imports(copied_tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("importer", "imported", "breach"),
    [
        ("core", "governance.models", "core is not allowed to import governance"),
        ("lineage", "explain.models", "lineage is not allowed to import explain"),
        ("privacy", "governance.services", "privacy is not allowed to import governance"),
        ("explain", "privacy.models", "explain is not allowed to import privacy"),
        ("privacy", "explain.models", "privacy is not allowed to import explain"),
        ("governance", "config.urls", "governance is not allowed to import config"),
        ("mlgov", "core.canonical_json", "mlgov is not allowed to import core"),
        ("core", "mlgov.client", "core is not allowed to import mlgov"),
    ],
)
def test_an_import_across_the_layers_breaks_the_contract(copied_tree, importer, imported, breach):
    probe = copied_tree / importer / "layer_probe.py"
    probe.write_text(f'"""Imports across the layers, for tests/test_layers.py."""\n\nimport {imported}\n')
    try:
        result = lint_imports(copied_tree)
    finally:
        probe.unlink()
    assert result.returncode != 0, result.stdout
    assert breach in result.stdout
    assert f"{importer}.layer_probe -> {imported} (l.3)" in result.stdout


def test_a_downward_import_is_allowed(copied_tree):
    probe = copied_tree / "governance" / "layer_probe.py"
    probe.write_text(
        "import core.models\nimport explain.models\nimport lineage.models\nimport privacy.models\n"
    )
    try:
        result = lint_imports(copied_tree)
    finally:
        probe.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
