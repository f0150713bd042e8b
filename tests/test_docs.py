"""The docs: the configuration reference matches the configs, the site builds strictly, no machine paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_generated_from_the_configs():
    done = subprocess.run([sys.executable, "scripts/config_reference.py", "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is part of the dev extra")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "site" / "concepts" / "adapters" / "gelora" / "index.html").is_file()


def test_readme_is_short_and_docs_name_no_machine_paths():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 160
    machine = str(REPO.parent)  # the folder this checkout sits in
    for path in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]:
        assert machine not in path.read_text(), path
