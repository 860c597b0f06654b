"""downloads: a big build input is fetched once, and only ever used when its sha256 matches."""

from __future__ import annotations

import hashlib

import pytest

from mesosspawner.images.downloads import Download, DownloadError, fetch

DATA = b"pretend this is a 318 MB sdist"
SHA = hashlib.sha256(DATA).hexdigest()


def test_a_cached_file_with_the_pinned_hash_is_used_without_fetching(tmp_path, monkeypatch):
    (tmp_path / "x-1.tar.gz").write_bytes(DATA)
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("fetched again"))
    assert fetch(Download("x-1.tar.gz", "x==1", SHA), tmp_path) == tmp_path / "x-1.tar.gz"


def test_a_cached_file_with_another_hash_is_refused_with_the_way_out(tmp_path):
    (tmp_path / "x-1.tar.gz").write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="not the pinned .* delete it to fetch it again"):
        fetch(Download("x-1.tar.gz", "x==1", SHA), tmp_path)


def test_a_fetch_that_yields_other_bytes_is_never_cached(tmp_path, monkeypatch):
    def fake_pip(argv, **kwargs):
        dest = argv[argv.index("--dest") + 1]
        with open(f"{dest}/x-1.tar.gz", "wb") as fh:
            fh.write(b"something else")
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr("subprocess.run", fake_pip)
    with pytest.raises(DownloadError, match="has sha256 .*, not the pinned"):
        fetch(Download("x-1.tar.gz", "x==1", SHA), tmp_path)
    assert not (tmp_path / "x-1.tar.gz").exists()


@pytest.mark.parametrize(
    "file, sha, match",
    [("../x.tar.gz", SHA, "plain file name"), ("x.tar.gz", "abc", "64 hex digits")],
)
def test_a_download_is_a_plain_name_and_a_full_hash(file, sha, match):
    with pytest.raises(DownloadError, match=match):
        Download(file, "x==1", sha)
