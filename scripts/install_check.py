"""Whether this Python already has what this checkout needs: exit 0, or exit 1 with the reason
on one line. ``scripts/setup.sh`` runs ``pip install -e .`` only in the second case.

    python scripts/install_check.py [--extra test] [--also jupyter_server ...]

Needed: an installed ``mesosspawner`` distribution with this checkout's entry points (JupyterHub
finds the spawner through them), whose source directory still exists when it is an editable
install, and every requirement of this checkout's ``setup.cfg`` (with the extras asked for)
installed at a version it allows. Which checkout an editable install points to does not matter:
the demo and the tests run this checkout's code (the demo gives its hub PYTHONPATH=its checkout,
pytest has ``pythonpath = ["."]``), so a temporary clone never re-points a machine's install.
Standard library only (and ``packaging`` where pip vendors it), so it runs on a fresh machine.
"""

from __future__ import annotations

import argparse
import configparser
import importlib.metadata as md
import json
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
DIST = "mesosspawner"

try:
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # pip always vendors it
    try:
        from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        Requirement = None  # type: ignore[assignment,misc]
        InvalidRequirement = ValueError  # type: ignore[assignment,misc]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def declared(extras: list[str]) -> tuple[list[str], set[tuple[str, str, str]]]:
    """(requirements, entry points as (group, name, value)) from this checkout's setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    reqs = _lines(cfg.get("options", "install_requires", fallback=""))
    for extra in extras:
        reqs += _lines(cfg.get("options.extras_require", extra, fallback=""))
    points = set()
    if cfg.has_section("options.entry_points"):
        for group, body in cfg.items("options.entry_points"):
            for line in _lines(body):
                name, _, value = line.partition("=")
                points.add((group, name.strip(), value.strip()))
    return reqs, points


def _missing(requirement: str) -> str | None:
    """Why ``requirement`` is not met here, or None."""
    if Requirement is None:
        name = requirement.split(";")[0].strip()
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        try:
            md.version(name)
        except md.PackageNotFoundError:
            return f"{name} is not installed"
        return None
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return f"cannot read the requirement {requirement!r} in setup.cfg"
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    try:
        have = md.version(req.name)
    except md.PackageNotFoundError:
        return f"{req.name} is not installed"
    if req.specifier and not req.specifier.contains(have, prereleases=True):
        return f"{req.name} {have} is installed; {req.specifier} is needed"
    return None


def why_install(extras: list[str], also: list[str]) -> str | None:
    """The reason to (re)install, or None when everything is there."""
    try:
        dist = md.distribution(DIST)
    except md.PackageNotFoundError:
        return f"{DIST} is not installed in {sys.prefix}"
    direct = dist.read_text("direct_url.json")
    if direct:
        info = json.loads(direct)
        if info.get("dir_info", {}).get("editable"):
            source = unquote(urlparse(info.get("url", "")).path)
            if not os.path.isdir(source):
                return f"the editable install points to {source}, which is gone"
    reqs, points = declared(extras)
    have = {(ep.group, ep.name, ep.value) for ep in dist.entry_points}
    changed = sorted(points - have)
    if changed:
        group, name, value = changed[0]
        return f"entry point {group}:{name} = {value} is not installed"
    for requirement in [*reqs, *also]:
        why = _missing(requirement)
        if why:
            return why
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", action="append", default=[], help="an extra of setup.cfg")
    parser.add_argument("--also", action="append", default=[], help="another requirement")
    args = parser.parse_args(argv)
    why = why_install(args.extra, args.also)
    if why:
        print(why)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
