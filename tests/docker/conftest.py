"""The Docker tier's own fixture; the engine, base image and registry come from
tests/services/docker.py (registered by tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"


@pytest.fixture
def docker_dir_copy(tmp_path: Path) -> Path:
    """A private copy of docker/ (and the repository files the hub image takes) to modify."""
    root = tmp_path / "repo"
    shutil.copytree(DOCKER_DIR, root / "docker")
    for name in ("mesosspawner", "setup.cfg", "pyproject.toml", "README.md"):
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, root / name)
    return root / "docker"
