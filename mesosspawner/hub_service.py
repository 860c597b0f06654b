"""The shape both of the hub's own services (images, GPU queue) share: a tornado app behind
the hub's OAuth, its page at the service's prefix, its JSON API below it, and autoescaped
templates (user-controlled names reach these pages)."""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlparse

import jinja2
from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web


def hub_oauth_app(
    prefix: str, index: type[web.RequestHandler], api: list[tuple], **settings
) -> web.Application:
    """The app: ``index`` at ``prefix`` (also without its slash), the OAuth callback, and
    ``api`` routes as (path below the prefix, handler); ``settings`` reach the handlers."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mesosspawner", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    routes = [
        (prefix, index),
        (prefix.rstrip("/"), web.RedirectHandler, {"url": prefix}),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ]
    routes += [(url_path_join(prefix, path), *rest) for path, *rest in api]
    return web.Application(routes, jinja_env=env, cookie_secret=os.urandom(32), **settings)


def serve_app(app: web.Application, bind_url: str, name: str, about: str = "") -> None:
    """Serve ``app`` on ``bind_url`` (the service's JUPYTERHUB_SERVICE_URL) until stopped,
    logging as ``name``; ``about`` ends the line that says it listens."""
    from tornado.ioloop import IOLoop

    logging.basicConfig(
        level=logging.INFO, format=f"[{name} %(levelname)s %(asctime)s] %(message)s"
    )
    url = urlparse(bind_url)

    async def main() -> None:
        app.listen(url.port or 80, url.hostname or "127.0.0.1")
        logging.getLogger(f"mesosspawner.{name}").info(
            "%s service listening on %s%s", name, bind_url.rstrip("/"), about
        )
        await asyncio.Event().wait()

    IOLoop.current()  # tornado's loop policy for the handlers
    asyncio.run(main())
