"""profiles: admin config validation, one validation path for REST and form, the form."""

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesosspawner.profiles import (
    ProfileCapacity,
    UserOptionsError,
    available,
    load_profile_list,
    options_from_form,
    render_form,
    resolve,
)

RAW = [
    {
        "display_name": "CPU notebook",
        "description": "1 cpu, 2 GiB",
        "default": True,
        "mesosspawner_override": {"cpu_limit": 1, "mem_limit": 2 * 2**30},
    },
    {
        "display_name": "GPU notebook",
        "slug": "gpu",
        "description": "One GPU <b>fast</b>",
        "mesosspawner_override": {"gpus": 1, "image": "lab/gpu:1", "containerizer": "mesos"},
        "profile_options": {
            "model": {
                "display_name": "GPU model",
                "choices": {
                    "any": {"display_name": "Any", "default": True},
                    "a100": {
                        "display_name": "A100",
                        "mesosspawner_override": {"constraints": [["gpu_model", "IS", "a100"]]},
                    },
                },
            }
        },
    },
    {
        "display_name": "Spark",
        "slug": "spark",
        "allowed_groups": ["spark-users"],
        "mesosspawner_override": {
            "role": "spark",
            "spark_master": "mesos://zk://127.0.0.1:2181/mesos",
            "spark_conf": {"spark.executor.memory": "2g"},
        },
        "profile_options": {
            "size": {
                "display_name": "Executors",
                "choices": {
                    "small": {"display_name": "Small"},
                    "big": {
                        "display_name": "Big",
                        "mesosspawner_override": {"spark_conf": {"spark.cores.max": "32"}},
                    },
                },
            }
        },
    },
]
PROFILES = load_profile_list(RAW)


# ---------------------------------------------------------------------------- admin config


def test_slugs_come_from_display_names_when_missing():
    assert [p.slug for p in PROFILES] == ["cpu-notebook", "gpu", "spark"]


@pytest.mark.parametrize(
    "raw, words",
    [
        ([{"display_name": "A", "slug": "x"}, {"display_name": "B", "slug": "x"}], "already used"),
        ([{"display_name": "A", "default": True}, {"display_name": "B", "default": True}], "one"),
        ([{"display_name": "A", "cpus": 2}], r"unknown key\(s\) cpus"),
        ([{"display_name": "A", "kubespawner_override": {}}], "mesosspawner_override"),
        ([{"slug": "a"}], "display_name"),
        ([{"display_name": "A", "slug": "Has Space"}], "lowercase"),
        ([{"display_name": "A", "slug": "a--b"}], "single"),
        ([{"display_name": "A", "default": "yes"}], "true or false"),
        ([{"display_name": "A", "allowed_groups": "staff"}], "allowed_groups"),
        ([{"display_name": "A", "groups": ["staff"]}], "use allowed_groups"),
        ([{"display_name": "A", "mesosspawner_override": {"gpus": 0.5}}], "whole number"),
        ([{"display_name": "A", "mesosspawner_override": {"cpu_limit": "2"}}], "number"),
        (
            [{"display_name": "A", "mesosspawner_override": {"constraints": [["r", "NEAR", "x"]]}}],
            "unknown operator",
        ),
        ([{"display_name": "A", "profile_options": {"o": {"choices": {}}}}], "non-empty"),
        (
            [{"display_name": "A", "profile_options": {"o": {"choices": {"x": {}}, "bad": 1}}}],
            "unknown key",
        ),
        (
            [
                {
                    "display_name": "A",
                    "profile_options": {
                        "o": {"choices": {"x": {}}, "unlisted_choice": {"enabled": True}}
                    },
                }
            ],
            "unlisted_choice",
        ),
        (
            [{"display_name": "A", "profile_options": {"profile": {"choices": {"x": {}}}}}],
            "'profile'",
        ),
        ([{"display_name": "!!!"}], "slug"),
        ("not a list", "list"),
    ],
)
def test_bad_profile_lists_are_named(raw, words):
    with pytest.raises(ValueError, match=words):
        load_profile_list(raw)


def test_error_names_the_profile():
    with pytest.raises(ValueError, match=r"profile_list\[1\] \('B'\)"):
        load_profile_list([{"display_name": "A"}, {"display_name": "B", "oops": 1}])


def test_allowed_overrides():
    with pytest.raises(ValueError, match="not a MesosSpawner trait"):
        load_profile_list(
            [{"display_name": "A", "mesosspawner_override": {"imag": "x"}}],
            allowed_overrides={"image"},
        )


# ---------------------------------------------------------------------------- resolve


def test_empty_options_mean_the_default_profile():
    profile, override = resolve(PROFILES, {})
    assert profile.slug == "cpu-notebook"
    assert override == {"cpu_limit": 1, "mem_limit": 2 * 2**30}


def test_first_profile_is_default_when_none_is_marked():
    profiles = load_profile_list([{"display_name": "A"}, {"display_name": "B"}])
    assert resolve(profiles, {})[0].slug == "a"


def test_profile_with_options_merges_overrides():
    profile, override = resolve(PROFILES, {"profile": "gpu", "model": "a100"})
    assert profile.slug == "gpu"
    assert override["gpus"] == 1
    assert override["constraints"] == [["gpu_model", "IS", "a100"]]
    _, override = resolve(PROFILES, {"profile": "gpu"})
    assert "constraints" not in override  # default choice "any"


def test_nested_overrides_merge_and_do_not_leak_between_calls():
    _, big = resolve(PROFILES, {"profile": "spark", "size": "big"}, ["spark-users"])
    assert big["spark_conf"] == {"spark.executor.memory": "2g", "spark.cores.max": "32"}
    big["spark_conf"]["mutated"] = "yes"
    _, small = resolve(PROFILES, {"profile": "spark"}, ["spark-users"])
    assert small["spark_conf"] == {"spark.executor.memory": "2g"}


def test_group_limited_profiles():
    with pytest.raises(UserOptionsError, match="not available to you"):
        resolve(PROFILES, {"profile": "spark"}, ["staff"])
    assert resolve(PROFILES, {"profile": "spark"}, ["spark-users"])[0].slug == "spark"


def test_default_falls_back_when_the_default_is_group_limited():
    profiles = load_profile_list(
        [{"display_name": "A", "default": True, "allowed_groups": ["x"]}, {"display_name": "B"}]
    )
    assert resolve(profiles, {})[0].slug == "b"
    with pytest.raises(UserOptionsError, match="no profile"):
        resolve(load_profile_list([{"display_name": "A", "allowed_groups": ["x"]}]), {})


@pytest.mark.parametrize(
    "options, words",
    [
        ([], "JSON object"),
        ("gpu", "JSON object"),
        (None, "JSON object"),
        ({"profile": "nope"}, "unknown profile 'nope'; choose one of: cpu-notebook, gpu"),
        ({"profile": ["gpu"]}, "must be a string"),
        ({"profile": "gpu", "model": "h100"}, "must be one of any, a100"),
        ({"profile": "gpu", "model": 1}, "must be one of"),
        ({"profile": "gpu", "image": "evil/image"}, "unknown option 'image'"),
        ({"profile": "cpu-notebook", "model": "a100"}, "its options: none"),
        ({"profile": "x" * 10000}, r"\.\.\."),
    ],
)
def test_bad_user_options_are_refused_with_a_message(options, words):
    with pytest.raises(UserOptionsError, match=words) as e:
        resolve(PROFILES, options)
    assert len(str(e.value)) < 300


def test_no_profiles_configured():
    profile, override = resolve((), {})
    assert override == {}
    with pytest.raises(UserOptionsError, match="no profiles"):
        resolve((), {"profile": "gpu"})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(["profile", "model", "size", "image", "cpu_limit", "../x", "{username}"])
VALUES = st.sampled_from(
    ["gpu", "spark", "cpu-notebook", "a100", "any", "big", "", "../../etc", "{uid}", "x" * 5000]
)
HOSTILE = (
    JSON
    | st.dictionaries(KEYS, VALUES | JSON, max_size=4)
    | st.dictionaries(st.text(max_size=30), st.text(max_size=30), max_size=3)
)


@settings(max_examples=400, deadline=None)
@given(HOSTILE, st.lists(st.sampled_from(["spark-users", "staff"]), max_size=2))
def test_hostile_user_options_get_a_clear_refusal_or_a_valid_profile(options, groups):
    try:
        profile, override = resolve(PROFILES, options, groups)
    except UserOptionsError as e:
        assert len(str(e)) < 400
        return
    # Accepted: only recognised keys with recognised values.
    assert isinstance(options, dict)
    assert profile.allowed(groups)
    assert options.get("profile", profile.slug) == profile.slug
    for key, value in options.items():
        if key != "profile":
            assert value in profile.options[key].choices
    assert set(override) <= {
        "cpu_limit", "mem_limit", "gpus", "image", "containerizer", "constraints",
        "role", "spark_master", "spark_conf",
    }  # fmt: skip


# ---------------------------------------------------------------------------- form posts


def test_form_post_keeps_only_the_selected_profiles_options():
    form = {
        "profile": ["gpu"],
        "profile-option-gpu--model": ["a100"],
        "profile-option-spark--size": ["big"],
        "_xsrf": ["token"],
    }
    assert options_from_form(form) == {"profile": "gpu", "model": "a100"}
    assert resolve(PROFILES, options_from_form(form))[1]["constraints"]


def test_form_post_without_profile_means_default():
    assert options_from_form({}) == {}
    assert options_from_form({"_xsrf": ["t"]}) == {}


def test_form_field_names_cannot_be_confused_between_profiles():
    profiles = load_profile_list(
        [
            {"display_name": "A", "profile_options": {"b-x": {"choices": {"one": {}}}}},
            {"display_name": "A B", "profile_options": {"x": {"choices": {"two": {}}}}},
        ]
    )
    form = {"profile": ["a"], "profile-option-a-b--x": ["two"], "profile-option-a--b-x": ["one"]}
    assert resolve(profiles, options_from_form(form))[0].slug == "a"
    assert options_from_form(form) == {"profile": "a", "b-x": "one"}


def test_form_post_bytes_and_bad_encoding():
    assert options_from_form({"profile": [b"gpu"]}) == {"profile": "gpu"}
    with pytest.raises(UserOptionsError, match="UTF-8"):
        options_from_form({"profile": [b"\xff"]})


@given(
    st.dictionaries(
        st.text(max_size=40), st.lists(st.text(max_size=40) | st.binary(max_size=20), max_size=2)
    )
)
def test_hostile_form_posts(formdata):
    try:
        resolve(PROFILES, options_from_form(formdata))
    except UserOptionsError:
        pass


# ---------------------------------------------------------------------------- the form


def test_form_shows_one_card_per_usable_profile_with_default_checked():
    page = render_form(PROFILES)
    assert page.count('name="profile"') == 2  # spark is limited to a group
    assert re.search(r'value="cpu-notebook"\s+checked', page)
    assert not re.search(r'value="gpu"\s+checked', page)
    assert 'name="profile-option-gpu--model"' in page
    assert '<option value="any" selected>' in page
    assert "GPU model" in page
    assert "2 GiB" in page and "lab/gpu:1" in page
    assert 'value="spark"' in render_form(PROFILES, user_groups=["spark-users"])


def test_form_escapes_admin_strings():
    page = render_form(PROFILES)
    assert "<b>fast</b>" not in page
    assert html.escape("One GPU <b>fast</b>", quote=False) in page


def test_capacity_badges_and_one_line_per_profile():
    capacity = {
        "cpu-notebook": ProfileCapacity("now", "Room free now — starts now"),
        "gpu": ProfileCapacity(
            "wait", "All 2 GPUs are in use — you will wait", free_gpus=0, total_gpus=2
        ),
    }
    page = render_form(PROFILES, capacity=capacity)
    assert "Can start now" in page and "Must wait" in page
    lines = re.findall(r'<span class="d-block small capacity-line[^>]*>([^<]*)</span>', page)
    assert lines == ["Room free now — starts now", "All 2 GPUs are in use — you will wait"]
    assert 'data-free-gpus="0"' in page and 'data-total-gpus="2"' in page
    never = render_form(PROFILES, capacity={"gpu": ProfileCapacity("never", "no agent has a GPU")})
    assert "Cannot fit on this cluster" in never and "no agent has a GPU" in never


def test_admin_template_override(tmp_path):
    (tmp_path / "options_form.html").write_text(
        "{% for p in profiles %}[{{ p.slug }}|{{ p.description }}]{% endfor %}"
    )
    page = render_form(PROFILES, template_paths=[str(tmp_path)])
    assert page == "[cpu-notebook|1 cpu, 2 GiB][gpu|One GPU &lt;b&gt;fast&lt;/b&gt;]"
    assert render_form(PROFILES, template="{{ profiles|length }}") == "2"


def test_form_needs_no_javascript():
    """Radios and selects work without JavaScript; the one script only refreshes the capacity
    lines, by fetching this same page (no other endpoint, nothing from elsewhere)."""
    page = render_form(PROFILES)
    assert page.count("<script") == 1
    form, script = page.split("<script", 1)
    assert form.count('name="profile"') == 2 and "<select" in form
    assert "fetch(window.location.href" in script and "http" not in script


# ---------------------------------------------------------------------------- profiles by group

BY_GROUP = load_profile_list(
    [
        {
            "display_name": "GPU",
            "slug": "gpu",
            "mesosspawner_override": {"gpus": 1},
            "profile_options": {
                "size": {
                    "display_name": "GPUs",
                    "choices": {
                        "one": {"display_name": "One"},
                        "four": {
                            "display_name": "Four",
                            "default": True,
                            "allowed_groups": ["power"],
                            "mesosspawner_override": {"gpus": 4},
                        },
                    },
                },
                "model": {
                    "display_name": "Model",
                    "allowed_groups": ["hw"],
                    "choices": {
                        "any": {"display_name": "Any"},
                        "a100": {
                            "display_name": "A100",
                            "mesosspawner_override": {"constraints": [["gpu", "IS", "a100"]]},
                        },
                    },
                },
            },
        },
        {"display_name": "Deep", "slug": "deep", "allowed_groups": ["deep"]},
    ]
)


def test_allowed_groups_cut_profiles_options_and_choices_for_each_person():
    (gpu,) = available(BY_GROUP, [])
    assert list(gpu.options) == ["size"]  # the model option is the hw group's
    assert list(gpu.options["size"].choices) == ["one"]
    assert gpu.options["size"].default_choice == "one"  # "four", the default, is not theirs
    profile, override = resolve(BY_GROUP, {"profile": "gpu"}, [])
    assert override == {"gpus": 1}
    everything = available(BY_GROUP, ["power", "hw", "deep"])
    assert [p.slug for p in everything] == ["gpu", "deep"]
    assert resolve(BY_GROUP, {"profile": "gpu"}, ["power"])[1]["gpus"] == 4


@pytest.mark.parametrize(
    "options, words",
    [
        ({"profile": "deep"}, "profile not available to you: 'deep'; choose one of: gpu"),
        ({"profile": "gpu", "size": "four"}, "must be one of one, not 'four' (not available"),
        ({"profile": "gpu", "model": "a100"}, "option 'model' of profile 'gpu' is not available"),
        ({"profile": "gpu", "colour": "red"}, "unknown option 'colour'"),
    ],
)
def test_what_is_not_the_persons_is_refused_saying_so(options, words):
    with pytest.raises(UserOptionsError) as e:
        resolve(BY_GROUP, options, ["nobody"])
    assert words in str(e.value)


def test_the_form_offers_each_person_only_what_is_theirs():
    page = render_form(BY_GROUP, user_groups=[])
    assert 'value="deep"' not in page and 'value="four"' not in page and "Model" not in page
    page = render_form(BY_GROUP, user_groups=["power", "hw", "deep"])
    assert 'value="deep"' in page and '<option value="four" selected>' in page
    assert "Model" in page


@pytest.mark.parametrize(
    "raw, words",
    [
        ([{"display_name": "A", "groups": ["x"]}], "use allowed_groups, not groups"),
        (
            [
                {
                    "display_name": "A",
                    "profile_options": {
                        "o": {"choices": {"c": {"allowed_groups": "x"}}},
                    },
                }
            ],
            "allowed_groups must be a list of JupyterHub group names, not 'x'",
        ),
    ],
)
def test_allowed_groups_must_be_a_list_of_group_names(raw, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        load_profile_list(raw)
