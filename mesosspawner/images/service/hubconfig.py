"""Register the images service with a hub, in ``jupyterhub_config.py``::

    from mesosspawner.images.service.hubconfig import register_images_service
    register_images_service(
        c, registry="registry.lab:443",
        bases={"base-notebook": "registry.lab:443/mesosspawner/base-notebook:TAG"},
    )

Adds the managed service (its page at ``/services/images/``), the scopes it needs, lets every
user reach it, and offers each person's built images as the "My images" profile: the images the
service recorded in ``store`` (a file both the service and the hub read; the service writes it).
``docker_config``: a Docker client config with the registry's login (the service reads, pulls and
pushes with it); the registry should refuse anonymous pushes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from ..userimages import USER_NAMESPACE

# list:users + read:servers + admin:server_state: which server runs which digest (spawner state).
SERVICE_SCOPES = ["list:users", "read:users", "read:servers", "admin:server_state"]


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else []


def register_images_service(
    c,
    *,
    registry: str,
    bases: Mapping[str, str],
    name: str = "images",
    port: int = 10101,
    namespace: str = USER_NAMESPACE,
    store: str | os.PathLike = "images-service/images.json",
    docker_config: str | os.PathLike | None = None,
    extra_args: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    offer_profiles: bool = True,
) -> dict:
    """Add the service to hub config *c*; returns the service entry."""
    command = [sys.executable, "-m", "mesosspawner.images", "serve", "--registry", registry]
    for slug, ref in bases.items():
        command += ["--base", f"{slug}={ref}"]
    store = os.path.abspath(store)  # the hub and the service agree whatever their directories
    command += ["--namespace", namespace, "--store", store]
    if docker_config is not None:
        command += ["--docker-config", os.path.abspath(docker_config)]
    command += [*extra_args]
    env = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "DOCKER_HOST") if k in os.environ}
    env.update(environment or {})
    service = {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": command,
        "environment": env,
        "oauth_no_confirm": True,
        "display": True,
    }
    c.JupyterHub.services = [*_as_list(c.JupyterHub.services), service]
    roles = _as_list(c.JupyterHub.load_roles)
    roles.append({"name": f"{name}-service", "scopes": SERVICE_SCOPES, "services": [name]})
    # Everyone may open the page; what each person sees and builds is decided by the service.
    access = f"access:services!service={name}"
    user_role = next((r for r in roles if r.get("name") == "user"), None)
    if user_role is None:
        roles.append({"name": "user", "scopes": ["self", access]})
    elif access not in user_role.setdefault("scopes", []):
        user_role["scopes"].append(access)
    c.JupyterHub.load_roles = roles
    if offer_profiles:
        from ..userprofiles import with_user_images

        current = c.MesosSpawner.profile_list
        base = current if callable(current) or isinstance(current, list | tuple) else []
        c.MesosSpawner.profile_list = with_user_images(
            base, registry=registry, store=store, namespace=namespace
        )
        _keep_framework_roles(c, base)
    return service


def _keep_framework_roles(c, profiles) -> None:
    """The spawner derives its framework roles from a *list* ``profile_list``; once that is a
    callable, name the roles the admin's profiles use explicitly (unless the admin did)."""
    if not isinstance(profiles, list | tuple):
        return
    if isinstance(c.MesosSpawner.framework_roles, list | tuple):
        return
    roles = ["*"]
    named = [c.MesosSpawner.role, c.MesosSpawner.spark_role]
    for profile in profiles:
        named += [
            (profile.get("mesosspawner_override") or {}).get(k) for k in ("role", "spark_role")
        ]
        for option in (profile.get("profile_options") or {}).values():
            for choice in (option.get("choices") or {}).values():
                override = choice.get("mesosspawner_override") or {}
                named += [override.get("role"), override.get("spark_role")]
    for role in named:
        if isinstance(role, str) and role and role not in roles:
            roles.append(role)
    c.MesosSpawner.framework_roles = roles
