"""Profiles: validate the admin's ``profile_list``, render the options form, and turn a
person's ``user_options`` (REST or form) into one profile plus its trait overrides.

Pure. The shape is KubeSpawner's (``display_name``, ``slug``, ``description``, ``default``,
``mesosspawner_override``, ``profile_options`` with ``choices``), so admins know it. The one
validation path (``resolve``) serves both form posts and REST ``user_options``: anything it
does not recognise is refused with a ``UserOptionsError`` naming the problem, before anything
is launched.

Profiles by group: ``allowed_groups`` (JupyterHub group names) on a profile, on an option or
on a choice limits it to members of those groups. ``for_person`` cuts the profile list down to
what one person may use, and both the form (``form_context``) and ``resolve`` (REST and form
posts, run by the spawner at every spawn with the server owner's groups) see only that cut:
one rule, in one place.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import jinja2

from .placement import validate_constraints

TEMPLATE_NAME = "options_form.html"
FORM_PROFILE = "profile"
FORM_OPTION_PREFIX = "profile-option-"
# ``profile-option-<profile>--<option>``: slugs never contain "--", so the split is unambiguous
# (KubeSpawner's current convention).
FORM_OPTION_SEP = "--"
_SLUG = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_MAX_SLUG = 63
_ECHO = 40
_PROFILE_KEYS = (
    "display_name",
    "slug",
    "description",
    "default",
    "mesosspawner_override",
    "profile_options",
    "allowed_groups",
)
_OPTION_KEYS = ("display_name", "choices", "allowed_groups")
_CHOICE_KEYS = ("display_name", "default", "mesosspawner_override", "allowed_groups")


class UserOptionsError(ValueError):
    """The person's options were refused; the message is for them (HTTP 400)."""


def _member(allowed: tuple[str, ...], user_groups: Collection[str]) -> bool:
    return not allowed or any(g in user_groups for g in allowed)


@dataclass(frozen=True)
class ProfileChoice:
    slug: str
    display_name: str
    default: bool = False
    override: Mapping[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()  # allowed_groups: if non-empty, only their members

    def allowed(self, user_groups: Collection[str]) -> bool:
        return _member(self.groups, user_groups)


@dataclass(frozen=True)
class ProfileOption:
    """A KubeSpawner-style ``profile_options`` entry: a select with fixed choices."""

    slug: str
    display_name: str
    choices: Mapping[str, ProfileChoice]
    groups: tuple[str, ...] = ()  # allowed_groups: if non-empty, only their members

    def allowed(self, user_groups: Collection[str]) -> bool:
        return _member(self.groups, user_groups)

    @property
    def default_choice(self) -> str:
        for slug, choice in self.choices.items():
            if choice.default:
                return slug
        return next(iter(self.choices))


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str
    default: bool
    override: Mapping[str, Any]  # spawner trait name -> value (cpu_limit, gpus, image, ...)
    options: Mapping[str, ProfileOption] = field(default_factory=dict)
    groups: tuple[str, ...] = ()  # allowed_groups: if non-empty, only their members

    def allowed(self, user_groups: Collection[str]) -> bool:
        return _member(self.groups, user_groups)


@dataclass(frozen=True)
class ProfileCapacity:
    """What the cluster can do for a profile right now, as the form shows it."""

    status: str  # "now" | "wait" | "never" | "quota" (the person's GPU quota refuses it)
    detail: str  # one sentence about this profile: "1 of 2 GPUs free — starts now"
    free_gpus: int | None = None  # GPU profiles only
    total_gpus: int | None = None


# ---------------------------------------------------------------------------- admin config


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:_MAX_SLUG].strip("-")


def load_profile_list(
    raw: Sequence[Mapping[str, Any]], *, allowed_overrides: Collection[str] | None = None
) -> tuple[Profile, ...]:
    """Validate the admin's ``profile_list``; ``ValueError`` names the profile and problem.

    ``allowed_overrides``: trait names ``mesosspawner_override`` may set (None: any).
    """
    if not isinstance(raw, list | tuple):
        raise ValueError(f"profile_list must be a list of dicts, not {type(raw).__name__}")
    out: list[Profile] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw):
        profile = _load_profile(i, entry, allowed_overrides)
        if profile.slug in seen:
            raise ValueError(
                f"profile_list[{i}] ({profile.display_name!r}): slug {profile.slug!r} is already"
                f" used by profile_list[{seen[profile.slug]}]; give each profile its own slug"
            )
        seen[profile.slug] = i
        out.append(profile)
    defaults = [p.slug for p in out if p.default]
    if len(defaults) > 1:
        raise ValueError(f"profile_list: only one profile may be the default, not {defaults}")
    return tuple(out)


def _load_profile(i: int, entry: Any, allowed: Collection[str] | None) -> Profile:
    where = f"profile_list[{i}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a dict, not {type(entry).__name__}")
    name = entry.get("display_name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: display_name must be a non-empty string, not {name!r}")
    where = f"{where} ({name!r})"
    if "kubespawner_override" in entry:
        raise ValueError(f"{where}: use mesosspawner_override, not kubespawner_override")
    if "groups" in entry:
        raise ValueError(f"{where}: use allowed_groups, not groups, to limit a profile to groups")
    _known_keys(where, entry, _PROFILE_KEYS)
    slug = entry.get("slug")
    if slug is None:
        slug = slugify(name)
        if not slug:
            raise ValueError(f"{where}: cannot make a slug from the display name; set 'slug'")
    slug = _slug(where, "slug", slug)
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{where}: description must be a string, not {description!r}")
    default = entry.get("default", False)
    if not isinstance(default, bool):
        raise ValueError(f"{where}: default must be true or false, not {default!r}")
    groups = _groups(where, entry)
    override = _override(where, entry.get("mesosspawner_override", {}), allowed)
    options_raw = entry.get("profile_options", {})
    if not isinstance(options_raw, Mapping):
        raise ValueError(f"{where}: profile_options must be a dict of option slug -> option")
    options = {}
    for key, value in options_raw.items():
        opt_slug = _slug(where, "profile_options key", key)
        if opt_slug == FORM_PROFILE:
            raise ValueError(f"{where}: 'profile' cannot be an option name")
        options[opt_slug] = _load_option(f"{where} option {opt_slug!r}", opt_slug, value, allowed)
    return Profile(
        slug=slug,
        display_name=name,
        description=description,
        default=default,
        override=override,
        options=MappingProxyType(options),
        groups=tuple(groups),
    )


def _groups(where: str, raw: Mapping) -> tuple[str, ...]:
    groups = raw.get("allowed_groups", [])
    if not isinstance(groups, list | tuple) or not all(isinstance(g, str) and g for g in groups):
        raise ValueError(
            f"{where}: allowed_groups must be a list of JupyterHub group names, not {groups!r}"
        )
    return tuple(groups)


def _load_option(where: str, slug: str, raw: Any, allowed: Collection[str] | None) -> ProfileOption:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a dict with display_name and choices")
    if "unlisted_choice" in raw:
        raise ValueError(f"{where}: unlisted_choice (free-form values) is not supported")
    _known_keys(where, raw, _OPTION_KEYS)
    display = raw.get("display_name", slug)
    if not isinstance(display, str):
        raise ValueError(f"{where}: display_name must be a string, not {display!r}")
    choices_raw = raw.get("choices")
    if not isinstance(choices_raw, Mapping) or not choices_raw:
        raise ValueError(f"{where}: choices must be a non-empty dict of choice slug -> choice")
    choices = {}
    for key, value in choices_raw.items():
        c_slug = _slug(where, "choice", key)
        c_where = f"{where} choice {c_slug!r}"
        if not isinstance(value, Mapping):
            raise ValueError(f"{c_where}: expected a dict with display_name")
        _known_keys(c_where, value, _CHOICE_KEYS)
        c_display = value.get("display_name", c_slug)
        c_default = value.get("default", False)
        if not isinstance(c_display, str) or not isinstance(c_default, bool):
            raise ValueError(f"{c_where}: display_name must be a string and default a bool")
        override = _override(c_where, value.get("mesosspawner_override", {}), allowed)
        choices[c_slug] = ProfileChoice(
            c_slug, c_display, c_default, override, _groups(c_where, value)
        )
    if sum(c.default for c in choices.values()) > 1:
        raise ValueError(f"{where}: only one choice may be the default")
    return ProfileOption(slug, display, MappingProxyType(choices), _groups(where, raw))


def _known_keys(where: str, raw: Mapping, known: Sequence[str]) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(known)})"
        )


def _slug(where: str, what: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > _MAX_SLUG or not _SLUG.fullmatch(value):
        hint = f" (e.g. {slugify(value)!r})" if isinstance(value, str) and slugify(value) else ""
        raise ValueError(
            f"{where}: {what} {value!r} must be lowercase letters and digits joined by single"
            f" '-' or '_', at most {_MAX_SLUG} characters{hint}"
        )
    return value


def _override(where: str, raw: Any, allowed: Collection[str] | None) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: mesosspawner_override must be a dict of trait -> value")
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ValueError(f"{where}: mesosspawner_override key {key!r} must be a string")
        if allowed is not None and key not in allowed:
            raise ValueError(
                f"{where}: mesosspawner_override sets {key!r}, which is not a MesosSpawner trait"
            )
        _check_override_value(where, key, value)
    return MappingProxyType(copy.deepcopy(dict(raw)))


def _check_override_value(where: str, key: str, value: Any) -> None:
    """Catch the common type mistakes at start-up rather than at a person's spawn."""
    what = f"{where}: mesosspawner_override {key}"
    if key == "cpu_limit" and value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{what} must be a number of cpus, not {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{what} must be > 0, not {value!r}")
    elif key == "mem_limit" and value is not None:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{what} must be bytes (int) or a size like '4G', not {value!r}")
    elif key == "gpus":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{what} must be a whole number >= 0, not {value!r}")
    elif key in ("image", "role", "spark_master", "spark_executor_image", "spark_role"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{what} must be a string, not {value!r}")
    elif key == "constraints":
        try:
            validate_constraints(value)
        except ValueError as e:
            raise ValueError(f"{what}: {e}") from None
    elif key in ("spark_conf", "environment") and not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a dict, not {value!r}")


# ---------------------------------------------------------------------------- user options


def for_person(profile: Profile, user_groups: Collection[str]) -> Profile | None:
    """``profile`` as a member of ``user_groups`` sees it: None if it is not theirs, else
    without the options and choices that are not theirs (an option left without choices
    goes; a default choice that is not theirs gives way to their first one)."""
    if not profile.allowed(user_groups):
        return None
    options = {}
    for slug, option in profile.options.items():
        if not option.allowed(user_groups):
            continue
        choices = {k: c for k, c in option.choices.items() if c.allowed(user_groups)}
        if choices:
            options[slug] = replace(option, choices=MappingProxyType(choices))
    if len(options) == len(profile.options) and all(
        len(options[k].choices) == len(o.choices) for k, o in profile.options.items()
    ):
        return profile
    return replace(profile, options=MappingProxyType(options))


def available(profiles: Sequence[Profile], user_groups: Collection[str] = ()) -> list[Profile]:
    """The profiles a member of ``user_groups`` may use, in the admin's order, each cut down
    to the options and choices they may use (``for_person``)."""
    return [p for p in (for_person(p, user_groups) for p in profiles) if p is not None]


def default_profile(profiles: Sequence[Profile], user_groups: Collection[str] = ()) -> Profile:
    """The profile used for empty options: the marked default if the person may use it,
    else the first one they may use."""
    usable = available(profiles, user_groups)
    if not usable:
        raise UserOptionsError("no profile is available to you; ask an administrator")
    return next((p for p in usable if p.default), usable[0])


def _echo(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile object; JSON never gives us one, but be safe
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _ECHO else text[: _ECHO - 3] + "..."


def resolve(
    profiles: Sequence[Profile], user_options: Any, user_groups: Collection[str] = ()
) -> tuple[Profile, dict[str, Any]]:
    """Validate ``user_options`` and return the chosen profile and its merged overrides.

    ``{}`` or no ``"profile"`` means the default profile. Other keys must be options of the
    chosen profile with one of its choices. Overrides: the profile's, then each option's
    chosen (or default) choice's, dicts merged key by key.
    """
    if not isinstance(user_options, dict):
        raise UserOptionsError(
            f'options must be a JSON object like {{"profile": "..."}}, not {_echo(user_options)}'
        )
    for key in user_options:
        if not isinstance(key, str):
            raise UserOptionsError(f"option names must be strings, not {_echo(key)}")
    if not profiles:
        if user_options:
            raise UserOptionsError(
                f"this hub offers no profiles or options; got {_echo(sorted(user_options))}"
            )
        return Profile("", "Default", "", True, MappingProxyType({})), {}
    usable = available(profiles, user_groups)
    if FORM_PROFILE not in user_options:
        profile = default_profile(profiles, user_groups)
    else:
        slug = user_options[FORM_PROFILE]
        if not isinstance(slug, str):
            raise UserOptionsError(f"profile must be a string (a profile slug), not {_echo(slug)}")
        full = next((p for p in profiles if p.slug == slug), None)
        profile = next((p for p in usable if p.slug == slug), None)
        if profile is None:
            names = ", ".join(p.slug for p in usable) or "none"
            problem = "unknown profile" if full is None else "profile not available to you:"
            raise UserOptionsError(f"{problem} {_echo(slug)}; choose one of: {names}")
    full = next(p for p in profiles if p.slug == profile.slug)
    chosen: dict[str, str] = {}
    for key, value in user_options.items():
        if key == FORM_PROFILE:
            continue
        option = profile.options.get(key)
        if option is None:
            known = ", ".join(profile.options) or "none"
            if key in full.options:
                raise UserOptionsError(
                    f"option {_echo(key)} of profile {profile.slug!r} is not available to you"
                    f" (your options: {known})"
                )
            raise UserOptionsError(
                f"unknown option {_echo(key)} for profile {profile.slug!r} (its options: {known})"
            )
        if not isinstance(value, str) or value not in option.choices:
            choices = ", ".join(option.choices)
            theirs = isinstance(value, str) and value in full.options[key].choices
            raise UserOptionsError(
                f"option {key!r} of profile {profile.slug!r} must be one of {choices},"
                f" not {_echo(value)}" + (" (not available to you)" if theirs else "")
            )
        chosen[key] = value
    merged = _deep_merge({}, profile.override)
    for option in profile.options.values():
        choice = option.choices[chosen.get(option.slug, option.default_choice)]
        merged = _deep_merge(merged, choice.override)
    return profile, merged


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return out


def options_from_form(formdata: Mapping[str, Any]) -> dict[str, str]:
    """A form post (``{name: [values]}``) as ``user_options``: ``profile`` plus the
    selected profile's ``profile-option-<profile>--<option>`` fields; other fields ignored."""
    if not isinstance(formdata, Mapping):
        raise UserOptionsError("the form post could not be read")

    def first(key: str) -> str:
        value = formdata[key]
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise UserOptionsError(f"form field {key!r} is not valid UTF-8") from None
        if not isinstance(value, str):
            raise UserOptionsError(f"form field {key!r} has an unreadable value")
        return value

    if FORM_PROFILE not in formdata:
        return {}
    profile = first(FORM_PROFILE)
    options = {FORM_PROFILE: profile}
    prefix = f"{FORM_OPTION_PREFIX}{profile}{FORM_OPTION_SEP}"
    for key in formdata:
        if isinstance(key, str) and key.startswith(prefix):
            options[key[len(prefix) :]] = first(key)
    return options


def form_field(profile_slug: str, option_slug: str) -> str:
    return f"{FORM_OPTION_PREFIX}{profile_slug}{FORM_OPTION_SEP}{option_slug}"


# ---------------------------------------------------------------------------- form


# How often an open form fetches its own page again to refresh the capacity lines.
CAPACITY_REFRESH_SECONDS = 10

_BADGES = {
    "now": ("Can start now", "bg-success"),
    "wait": ("Must wait", "bg-warning text-dark"),
    "never": ("Cannot fit on this cluster", "bg-danger"),
    "quota": ("Over your GPU quota", "bg-danger"),
}


def _format_mem(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
            if value >= size:
                amount = value / size
                return f"{amount:.3g} {unit}"
        return f"{int(value)} bytes"
    return str(value)


def _resources(override: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    cpus = override.get("cpu_limit")
    if cpus:
        out.append(("CPUs", f"{cpus:g}" if isinstance(cpus, float) else str(cpus)))
    mem = _format_mem(override.get("mem_limit"))
    if mem:
        out.append(("Memory", mem))
    gpus = override.get("gpus")
    if gpus:
        out.append(("GPUs", str(gpus)))
    if override.get("image"):
        out.append(("Image", str(override["image"])))
    role = override.get("role")
    if role and role != "*":
        out.append(("Role", str(role)))
    if override.get("spark_master"):
        out.append(("Spark", str(override["spark_master"])))
    return out


def form_context(
    profiles: Sequence[Profile],
    *,
    capacity: Mapping[str, ProfileCapacity] | None = None,
    user_groups: Collection[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The plain data the template renders (exposed so admins' templates can rely on it)."""
    usable = available(profiles, user_groups)
    checked = default_profile(profiles, user_groups).slug if usable else None
    items = []
    for p in usable:
        # What a person gets without touching the selects: defaults, profile, default choices.
        effective = _deep_merge(dict(defaults or {}), p.override)
        options = []
        for opt in p.options.values():
            effective = _deep_merge(effective, opt.choices[opt.default_choice].override)
            options.append(
                {
                    "slug": opt.slug,
                    "name": form_field(p.slug, opt.slug),
                    "id": form_field(p.slug, opt.slug),
                    "display_name": opt.display_name,
                    "choices": [
                        {
                            "slug": c.slug,
                            "display_name": c.display_name,
                            "selected": c.slug == opt.default_choice,
                        }
                        for c in opt.choices.values()
                    ],
                }
            )
        cap = (capacity or {}).get(p.slug)
        cap_ctx = None
        if cap is not None:
            label, css = _BADGES.get(cap.status, (cap.status, "bg-secondary"))
            cap_ctx = {
                "status": cap.status,
                "label": label,
                "css": css,
                "detail": cap.detail,
                "free_gpus": cap.free_gpus,
                "total_gpus": cap.total_gpus,
            }
        items.append(
            {
                "slug": p.slug,
                "display_name": p.display_name,
                "description": p.description,
                "checked": p.slug == checked,
                "resources": _resources(effective),
                "capacity": cap_ctx,
                "options": options,
            }
        )
    return {"profiles": items, "refresh_seconds": CAPACITY_REFRESH_SECONDS}


def render_form(
    profiles: Sequence[Profile],
    *,
    capacity: Mapping[str, ProfileCapacity] | None = None,
    user_groups: Collection[str] = (),
    template: str | None = None,
    template_paths: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> str:
    """The options form HTML (JupyterHub wraps it in its own <form>).

    ``template``: Jinja2 source to use instead of ``options_form.html``; ``template_paths``:
    directories searched first for ``options_form.html`` (admins override it there).
    ``defaults``: the spawner's own trait values, shown for profiles that do not override them.
    Everything is autoescaped.
    """
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(list(template_paths)),
                jinja2.PackageLoader("mesosspawner", "templates"),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    tmpl = env.from_string(template) if template is not None else env.get_template(TEMPLATE_NAME)
    context = form_context(profiles, capacity=capacity, user_groups=user_groups, defaults=defaults)
    return tmpl.render(**context)
