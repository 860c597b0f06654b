"""The framework's credentials: the secret read from ``secret_file``, refused with a message
that names the file (never the secret), and never in a repr."""

from __future__ import annotations

import pytest

from mesosspawner.framework import MesosFramework
from mesosspawner.mesos.credentials import (
    CredentialError,
    read_secret_file,
    readable_by_others,
    resolve,
)
from tests.services.fakes import RecordingClient, framework_config

SECRET = "s3cret-value-xyz"


def test_secret_file_is_read_without_its_final_line_break(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    assert read_secret_file(str(path)) == SECRET
    assert resolve("hub", None, str(path)) == ("hub", SECRET)


def test_missing_or_empty_secret_file_is_refused_naming_the_file(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CredentialError, match="nope.*cannot be read"):
        resolve("hub", None, str(missing))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CredentialError, match="empty.*is empty"):
        resolve("hub", None, str(empty))


def test_both_secrets_or_a_secret_without_principal_are_refused(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET)
    with pytest.raises(CredentialError, match="both") as both:
        resolve("hub", SECRET, str(path))
    with pytest.raises(CredentialError, match="principal") as no_principal:
        resolve(None, None, str(path))
    for error in (both, no_principal):
        assert SECRET not in str(error.value)


def test_a_line_break_in_the_secret_is_refused_it_would_end_the_header(tmp_path):
    path = tmp_path / "secret"
    path.write_text("abc\r\nX-Injected: 1\n")
    with pytest.raises(CredentialError, match="line break") as error:
        resolve("hub", None, str(path))
    assert "X-Injected" not in str(error.value)


def test_world_readable_secret_file_is_noticed(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET)
    path.chmod(0o600)
    assert not readable_by_others(str(path))
    path.chmod(0o644)
    assert readable_by_others(str(path))


def test_framework_config_repr_never_shows_the_secret():
    config = framework_config(master="http://127.0.0.1:1", principal="hub", secret=SECRET)
    assert SECRET not in repr(config)


async def test_the_framework_authenticates_with_the_secret_read_from_the_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    config = framework_config(
        master="http://127.0.0.1:1", principal="hub", secret=None, secret_file=str(path)
    )
    seen = {}

    def client(master, info, handler, **kwargs):
        seen.update(kwargs, info=info)
        return RecordingClient(master, info, handler, **kwargs)

    MesosFramework(config, client_factory=client)
    assert (seen["principal"], seen["secret"]) == ("hub", SECRET)
    assert seen["info"]["principal"] == "hub"
    assert SECRET not in repr(seen["info"])


def test_a_framework_whose_secret_file_is_missing_is_refused_naming_it(tmp_path):
    config = framework_config(
        master="http://127.0.0.1:1", principal="hub", secret_file=str(tmp_path / "gone")
    )
    with pytest.raises(CredentialError, match="gone"):
        MesosFramework(config, client_factory=RecordingClient)
