"""The example ``jupyterhub_config.py`` as the hub loads it, for tests of what it configures."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from traitlets.config import Config

import mesosspawner

EXAMPLE = Path(__file__).resolve().parents[2] / "jupyterhub_config.py"


def load_example(monkeypatch: pytest.MonkeyPatch, demo: bool) -> tuple[Config, dict]:
    """The example config's ``c`` and its globals, in production (``demo=False``) or demo
    shape. The file ends with ``check_config(c)``, which also asks the cluster (tests/e2e/
    test_start_check.py does that against real clusters); here only the configuration itself
    is checked."""
    c = Config()
    monkeypatch.setenv("MESOSSPAWNER_DEMO", "1" if demo else "0")
    check = mesosspawner.check_config
    monkeypatch.setattr(mesosspawner, "check_config", lambda c: check(c, cluster=False))
    names = runpy.run_path(str(EXAMPLE), init_globals={"get_config": lambda: c})
    return c, names
