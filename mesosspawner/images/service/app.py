"""The images service: a JupyterHub service at /services/images/ (hub OAuth login).

Registry browser (the lab's images and the person's own built images, with digest, size,
created time, the content hash and Dockerfile it came from, and the running servers on each
digest) and "build my image" (validated request -> template Dockerfile -> build -> push). Thin:
validation and templating are ``userimages``; builds are ``builder``; registry reads are
``registry``, cached here (``CatalogCache``); what was built is ``store``.

A person's images are the ones the service recorded in its store, never whatever a registry path
holds: a tag planted under someone's path is not shown to them and has no spawn link (admins see
it listed as "unrecorded", to look into). Spawn links go to the viewer's own images only.

Which servers run which digest comes from the hub REST API: ``GET /users`` with the service's
token (scopes ``list:users``, ``read:servers``, ``admin:server_state``), reading each running
server's spawner state, where MesosSpawner records the ``image`` it launched.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import pwd
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jinja2
from jupyterhub.services.auth import HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ...hub_service import hub_oauth_app, serve_app
from .. import lab
from .. import registry as registry_api
from ..errors import ImagesError
from ..registry import Credentials, TagInfo
from ..store import ImageStore, Record
from ..userimages import (
    LABEL_BASE,
    LABEL_DOCKERFILE,
    LABEL_HASH,
    LABEL_PACKAGES,
    USER_NAMESPACE,
    RequestError,
    UserImage,
    owner_of,
    spawn_query,
    user_component,
    validate_request,
)
from .builder import FINISHED, Builder, BuildRefused, Limits

log = logging.getLogger("mesosspawner.imageservice")


def ids_from_passwd(username: str) -> tuple[int | None, int | None]:
    """uid and primary gid of the system user named like the hub user (the spawner's default)."""
    try:
        pw = pwd.getpwnam(username)
    except KeyError:
        return None, None
    return pw.pw_uid, pw.pw_gid


class CatalogCache:
    """The registry's tags with their details, read at most once per *ttl* seconds (and after
    each push), by one reader at a time; details of a digest are read once (they never change).
    """

    def __init__(self, registry: str, auth: Credentials | None, ttl: float = 60.0) -> None:
        self.registry, self.auth, self.ttl = registry, auth, ttl
        self._tags: list[TagInfo] = []
        self._at = -1e9
        self._known: dict[str, TagInfo] = {}
        self._lock = asyncio.Lock()
        self.walks = 0  # how many times the catalog was walked (tests, logs)

    def invalidate(self) -> None:
        self._at = -1e9

    async def tags(self) -> list[TagInfo]:
        async with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return self._tags
            known = dict(self._known)
            tags = await asyncio.to_thread(
                registry_api.catalog, self.registry, auth=self.auth, known=known
            )
            self.walks += 1
            self._known.update({t.digest: t for t in tags if t.digest})
            self._tags, self._at = tags, time.monotonic()
            return tags


@dataclass
class ServiceConfig:
    registry: str
    bases: dict[str, str]  # slug -> reference (tag or digest); resolved to digests per request
    store: str = "images-service/images.json"  # the images it built (``store.ImageStore``)
    auth: Credentials | None = None  # the registry login for reads, pulls and pushes
    catalog_ttl: float = 60.0
    namespace: str = USER_NAMESPACE
    limits: Limits = field(default_factory=Limits)
    docker_host: str | None = None
    prefix: str = "/services/images/"
    hub_base_url: str = "/"
    hub_api_url: str = ""
    api_token: str = ""
    resolve_ids: Callable[[str], tuple[int | None, int | None]] = ids_from_passwd


class Service:
    """What the handlers share: config, builder, and the registry/hub look-ups."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config

        def connect(timeout: float):
            client = lab.connect(config.docker_host)
            client.api.timeout = timeout  # socket reads: a silent build cannot outlive the limit
            return client

        self.store = ImageStore(config.store, config.namespace)
        self.catalog = CatalogCache(config.registry, config.auth, config.catalog_ttl)
        self.builder = Builder(
            config.registry,
            config.namespace,
            config.limits,
            connect,
            self.store,
            auth=config.auth,
            on_pushed=lambda record: self.catalog.invalidate(),
        )
        self._bases: dict[str, str] = {}
        self._bases_at = 0.0

    async def pinned_bases(self) -> dict[str, str]:
        """Base slug -> REPO@sha256:... (tags resolved in the registry, cached a minute)."""
        if self._bases and time.monotonic() - self._bases_at < 60:
            return self._bases
        out = {}
        for slug, ref in self.config.bases.items():
            if "@sha256:" in ref:
                out[slug] = ref
                continue
            repo, tag = lab.split_ref(ref)
            host, _, path = repo.partition("/")
            auth = self.config.auth if host == self.config.registry else registry_api.AUTO
            try:
                digest = await asyncio.to_thread(
                    registry_api.registry_digest, host, path, tag, auth=auth
                )
            except ImagesError as exc:
                log.warning("base image %s (%s) not resolved: %s", slug, ref, exc)
                continue
            if digest:
                out[slug] = f"{repo}@{digest}"
            else:
                log.warning("base image %s (%s) is not in the registry", slug, ref)
        self._bases, self._bases_at = out, time.monotonic()
        return out

    async def servers_by_digest(self) -> dict[str, list[dict]]:
        """digest -> [{user, server}] of every running server, from the hub's REST API."""
        if not self.config.hub_api_url or not self.config.api_token:
            return {}
        request = HTTPRequest(
            url_path_join(self.config.hub_api_url, "users") + "?state=active",
            headers={"Authorization": f"token {self.config.api_token}"},
            request_timeout=20,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except Exception as exc:  # noqa: BLE001 - the browser still works without this column
            log.warning("hub API users list failed: %s", exc)
            return {}
        out: dict[str, list[dict]] = {}
        for user in json.loads(response.body):
            for name, server in (user.get("servers") or {}).items():
                image = (server.get("state") or {}).get("image") or ""
                if "@sha256:" in image and server.get("ready"):
                    digest = image.split("@", 1)[1]
                    out.setdefault(digest, []).append({"user": user["name"], "server": name})
        return out

    async def visible_images(self, username: str, admin: bool) -> tuple[list[dict], str | None]:
        """The rows of the registry browser, and a message when the registry could not be read
        (the person's recorded images are still listed then, without sizes)."""
        namespace = self.config.namespace
        error = None
        try:
            tags = await self.catalog.tags()
        except ImagesError as exc:
            log.warning("registry browser of %s: %s", username, exc)
            tags, error = [], f"The registry could not be read: {exc}"
        records, servers = await asyncio.gather(
            asyncio.to_thread(self.store.records), self.servers_by_digest()
        )
        recorded = {(r.repo, r.tag): r for r in records if r.registry == self.config.registry}
        by_ref = {(t.repo, t.tag): t for t in tags}
        rows = []

        def row(info: TagInfo | None, record: Record | None, kind: str) -> dict:
            repo = record.repo if record else info.repo
            tag = record.tag if record else info.tag
            digest = record.digest if record else info.digest
            details = info or TagInfo(repo, tag, digest, None)
            running = servers.get(digest, [])
            mine = [s for s in running if admin or s["user"] == username]
            own = record is not None and record.user == username
            image = UserImage(self.config.registry, repo, tag, digest)
            return {
                "repo": repo,
                "tag": tag,
                "digest": digest,
                "pinned": f"{self.config.registry}/{repo}@{digest}",
                "size": details.size,
                "size_text": _size(details.size),
                "created": _when(record.created if record else details.created),
                "content_hash": details.labels.get(LABEL_HASH) or tag,
                "base": details.labels.get(LABEL_BASE, ""),
                "packages": record.packages if record else details.labels.get(LABEL_PACKAGES, ""),
                "dockerfile": details.labels.get(LABEL_DOCKERFILE, ""),
                "user": record.user if record else "",
                "kind": kind,
                "servers": mine,
                "other_servers": len(running) - len(mine),
                # Only a person's own recorded images: never a link to start someone else's.
                "spawn_url": (
                    url_path_join(self.config.hub_base_url, "hub/spawn")
                    + "?"
                    + urlencode(spawn_query(image))
                    if own
                    else None
                ),
            }

        for info in tags:
            owner = owner_of(info.repo, namespace)
            if owner is None:
                rows.append(row(info, None, "lab"))
                continue
            record = recorded.get((info.repo, info.tag))
            if record is not None and record.digest == info.digest:
                continue  # listed below, from the record
            if admin:
                rows.append(row(info, None, "unrecorded"))
            elif owner == user_component(username):
                log.warning(
                    "not showing %s:%s to %s: not an image this service built%s",
                    info.repo,
                    info.tag,
                    username,
                    " (the tag now names another digest)" if record else "",
                )
        for (repo, tag), record in sorted(recorded.items()):
            if record.user == username or admin:
                info = by_ref.get((repo, tag))
                info = info if info is not None and info.digest == record.digest else None
                rows.append(row(info, record, "user"))
        order = {"user": 0, "lab": 1, "unrecorded": 2}
        rows.sort(key=lambda r: (order[r["kind"]], r["repo"], r["created"]))
        return rows, error


def _when(created: str) -> str:
    return created[:19].replace("T", " ") if created else ""


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def api_authenticated(method):
    """Like ``web.authenticated`` but 403 instead of a login redirect: API and log-stream
    readers (fetch, EventSource) cannot follow the OAuth dance, and must not loop through it."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.current_user:
            raise web.HTTPError(
                403, "not logged in: open the page through the hub, or send a hub API token"
            )
        return method(self, *args, **kwargs)

    return wrapper


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def service(self) -> Service:
        return self.settings["images_service"]

    @property
    def who(self) -> tuple[str, bool]:
        user = self.current_user
        return user["name"], bool(user.get("admin"))

    def write_error(self, status_code: int, **kwargs) -> None:
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))

    def json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class IndexHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        username, admin = self.who
        env: jinja2.Environment = self.settings["jinja_env"]
        bases = await self.service.pinned_bases()
        rows, registry_error = await self.service.visible_images(username, admin)
        builds = self.service.builder.builds_of(None if admin else username)
        self.finish(
            env.get_template("images_service.html").render(
                user=username,
                admin=admin,
                prefix=self.service.config.prefix,
                hub_base_url=self.service.config.hub_base_url,
                registry=self.service.config.registry,
                bases=bases,
                images=rows,
                registry_error=registry_error,
                builds=[b.model() for b in builds[:20]],
                limits=self.service.config.limits,
                xsrf_token=self.xsrf_token.decode()
                if isinstance(self.xsrf_token, bytes)
                else self.xsrf_token,
            )
        )


class ImagesAPIHandler(BaseHandler):
    @api_authenticated
    async def get(self) -> None:
        username, admin = self.who
        rows, error = await self.service.visible_images(username, admin)
        self.json({"images": rows, "registry_error": error})


class BuildsAPIHandler(BaseHandler):
    @api_authenticated
    def get(self) -> None:
        username, admin = self.who
        builds = self.service.builder.builds_of(None if admin else username)
        self.json({"builds": [b.model() for b in builds]})

    @api_authenticated
    async def post(self) -> None:
        username, _ = self.who
        if self.request.headers.get("Content-Type", "").startswith("application/json"):
            try:
                body = json.loads(self.request.body or b"{}")
            except ValueError:
                raise web.HTTPError(400, "the request body is not JSON") from None
            if not isinstance(body, dict):
                raise web.HTTPError(400, 'send a JSON object like {"base": ..., "pip": [...]}')
        else:
            body = {k: self.get_body_argument(k, "") for k in ("base", "apt", "pip")}
        unknown = sorted(set(body) - {"base", "apt", "pip"})
        if unknown:
            raise web.HTTPError(400, f"unknown field(s) {', '.join(unknown)}: use base, apt, pip")
        uid, gid = self.service.config.resolve_ids(username)
        limits = self.service.config.limits
        try:
            req = validate_request(
                username=username,
                uid=uid,
                gid=gid,
                base=body.get("base"),
                bases=await self.service.pinned_bases(),
                apt=body.get("apt"),
                pip=body.get("pip"),
                max_packages=limits.max_packages,
                allow_apt=limits.allow_apt,
            )
            build = self.service.builder.submit(req)
        except RequestError as exc:
            log.warning("refused a build request of %s: %s", username, exc)
            raise web.HTTPError(400, str(exc)) from None
        except BuildRefused as exc:
            raise web.HTTPError(429, str(exc)) from None
        model = build.model()
        model["log_url"] = url_path_join(self.service.config.prefix, f"api/builds/{build.id}/log")
        self.json({"build": model}, status=202)


class BuildAPIHandler(BaseHandler):
    def _build(self, build_id: str):
        username, admin = self.who
        build = self.service.builder.get(build_id)
        if build is None or not (admin or build.username == username):
            raise web.HTTPError(404, f"no build {build_id} of yours")
        return build

    @api_authenticated
    def get(self, build_id: str) -> None:
        self.json({"build": self._build(build_id).model(with_log=True)})


class BuildLogHandler(BuildAPIHandler):
    """The build log as Server-Sent Events: one ``line`` event per line, then ``done``."""

    @api_authenticated
    async def get(self, build_id: str) -> None:
        build = self._build(build_id)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        sent = 0
        start = self.request.headers.get("Last-Event-ID")
        if start and start.isdigit():
            sent = int(start)
        while True:
            while sent < len(build.lines):
                payload = json.dumps({"line": build.lines[sent], "status": build.status})
                self.write(f"id: {sent + 1}\nevent: line\ndata: {payload}\n\n")
                sent += 1
            if build.status in FINISHED and sent >= len(build.lines):
                self.write(f"event: done\ndata: {json.dumps(build.model())}\n\n")
                await self.flush()
                break
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the reader went away
                return
            await build.wait_change(15)
            if self.request.connection.stream.closed():
                return
        self.finish()


def make_app(config: ServiceConfig) -> web.Application:
    api = [
        ("api/images", ImagesAPIHandler),
        ("api/builds", BuildsAPIHandler),
        (r"api/builds/([0-9a-f]+)", BuildAPIHandler),
        (r"api/builds/([0-9a-f]+)/log", BuildLogHandler),
    ]
    return hub_oauth_app(config.prefix, IndexHandler, api, images_service=Service(config))


def serve(config: ServiceConfig, bind_url: str) -> None:
    """Listen on *bind_url* (JUPYTERHUB_SERVICE_URL) until stopped."""
    bases = ", ".join(f"{k}={v}" for k, v in config.bases.items()) or "none"
    about = f"{config.prefix} (registry {config.registry}, bases {bases})"
    serve_app(make_app(config), bind_url, "images", about)
