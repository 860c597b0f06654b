"""mesosspawner-images without an engine: what a change to the build context re-tags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mesosspawner.images import cli
from mesosspawner.images import lab as images
from mesosspawner.images.errors import ImagesError
from mesosspawner.images.registry import registry_digest
from mesosspawner.testing.net import free_port

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
ARGS = {"BASE_IMAGE": "debian:bookworm-slim"}


def tags(docker_dir: Path, args=ARGS) -> dict[str, str]:
    return images.compute_tags(docker_dir, images.load_specs(docker_dir), args)


def test_tags_are_stable_for_an_unchanged_context(docker_dir_copy):
    assert tags(docker_dir_copy) == tags(docker_dir_copy)
    assert tags(docker_dir_copy) == tags(DOCKER_DIR)  # the path of the checkout does not count


def test_changing_one_dockerfile_retags_that_image_alone(docker_dir_copy):
    before = tags(docker_dir_copy)
    dockerfile = docker_dir_copy / "spark-executor" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# changed\n")
    after = tags(docker_dir_copy)
    assert [n for n in before if before[n] != after[n]] == ["spark-executor"]


def test_changing_the_base_notebook_retags_the_images_built_on_it(docker_dir_copy):
    before = tags(docker_dir_copy)
    script = docker_dir_copy / "base-notebook" / "start-notebook.sh"
    script.write_text(script.read_text() + "# changed\n")
    after = tags(docker_dir_copy)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"base-notebook", "gpu-notebook", "spark-notebook", "spark-executor"}


def test_the_executable_bit_and_build_args_count(docker_dir_copy):
    before = tags(docker_dir_copy)
    os.chmod(docker_dir_copy / "base-notebook" / "start-notebook.sh", 0o644)
    assert tags(docker_dir_copy)["base-notebook"] != before["base-notebook"]
    other = tags(DOCKER_DIR, {"BASE_IMAGE": "mesosspawner-test/bookworm-base:1"})
    assert other["base-notebook"] != before["base-notebook"]
    # every image without an in-repo base hashes BASE_IMAGE (the others through their base)
    assert other["hub"] != before["hub"]
    assert other["spark-executor"] != before["spark-executor"]


def test_hub_context_carries_the_package_source(docker_dir_copy):
    spec = next(s for s in images.load_specs(docker_dir_copy) if s.name == "hub")
    paths = [arc for arc, _ in images.context_files(docker_dir_copy, spec)]
    assert "Dockerfile" in paths and "setup.cfg" in paths
    assert "mesosspawner/images/lab.py" in paths
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)
    before = tags(docker_dir_copy)["hub"]
    (docker_dir_copy.parent / "mesosspawner" / "images" / "lab.py").write_text("# changed\n")
    assert tags(docker_dir_copy)["hub"] != before


def test_only_includes_the_images_an_image_is_built_on():
    specs = images.load_specs(DOCKER_DIR)
    assert [s.name for s in images.select(specs, ["spark-notebook"])] == [
        "base-notebook",
        "spark-notebook",
    ]
    with pytest.raises(ImagesError, match="unknown image 'nope'"):
        images.select(specs, ["nope"])


def test_images_file_errors_name_the_problem(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "images.toml").write_text('[[image]]\nname = "b"\nbase = "a"\n')
    with pytest.raises(ImagesError, match="base 'a', which must be declared above"):
        images.load_specs(tmp_path)
    (tmp_path / "images.toml").write_text('[[image]]\nname = "c"\n')
    with pytest.raises(ImagesError, match="has no .*c/Dockerfile"):
        images.load_specs(tmp_path)
    with pytest.raises(ImagesError, match="not found"):
        images.load_specs(tmp_path / "missing")


def test_build_args_must_be_name_value():
    assert images.parse_build_args(["A=1", "B="]) == {"A": "1", "B": ""}
    with pytest.raises(ImagesError, match="NAME=VALUE"):
        images.parse_build_args(["BASE_IMAGE"])


def test_refs_split_at_the_tag_not_the_registry_port():
    ref = images.image_ref("127.0.0.1:5000", "base-notebook", "abc")
    assert ref == "127.0.0.1:5000/mesosspawner/base-notebook:abc"
    assert images.split_ref(ref) == ("127.0.0.1:5000/mesosspawner/base-notebook", "abc")
    assert images.split_ref("127.0.0.1:5000/x") == ("127.0.0.1:5000/x", "latest")


def test_unreachable_registry_is_a_clear_error():
    port = free_port()
    with pytest.raises(ImagesError, match=f"cannot reach registry 127.0.0.1:{port}"):
        registry_digest(f"127.0.0.1:{port}", "mesosspawner/x", "t", timeout=5)


def test_cli_reports_a_bad_docker_dir(tmp_path, capsys):
    assert cli.main(["--docker-dir", str(tmp_path)]) == 1
    assert "images.toml not found" in capsys.readouterr().err


def test_a_download_counts_by_its_pinned_hash_and_lands_in_the_context(docker_dir_copy):
    """The PySpark sdist (318 MB) is declared, not copied into docker/: the tag follows its
    pinned sha256, so it is the same on every machine and never needs reading the file."""
    spec = next(s for s in images.load_specs(docker_dir_copy) if s.name == "spark-notebook")
    (download,) = spec.downloads
    assert download.file == "pyspark-3.5.9.tar.gz" and download.pip == "pyspark==3.5.9"
    assert "downloads/" not in str([arc for arc, _ in images.context_files(docker_dir_copy, spec)])
    dockerfile = (docker_dir_copy / "spark-notebook" / "Dockerfile").read_text()
    assert f"COPY downloads/{download.file} " in dockerfile
    before = tags(docker_dir_copy)
    toml = docker_dir_copy / "images.toml"
    toml.write_text(toml.read_text().replace(download.sha256, "0" * 64))
    after = tags(docker_dir_copy)
    assert {n for n in before if before[n] != after[n]} == {"spark-notebook", "spark-executor"}


def test_a_download_needs_file_pip_and_sha256(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "images.toml").write_text(
        '[[image]]\nname = "a"\n[[image.download]]\nfile = "x.tar.gz"\npip = "x==1"\n'
    )
    with pytest.raises(images.ImagesError, match="a download needs file, pip and sha256"):
        images.load_specs(tmp_path)
