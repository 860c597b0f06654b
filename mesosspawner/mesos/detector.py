"""Finding the leading Mesos master: a static URL, a comma list, or ZooKeeper (``zk://``).

A detector only answers "which masters should the client try, in what order" and signals when
that answer changes; following 307 redirects is the client's job. ZooKeeper runs on kazoo's own
threads: every blocking kazoo call happens there or in an executor, and results reach the event
loop through ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

LEADER_PREFIX = "json.info_"

logger = logging.getLogger(__name__)


class DetectorError(ValueError):
    """A master address that cannot be understood."""


def normalize_url(address: str, scheme: str = "http") -> str:
    """``host:5050`` -> ``http://host:5050``; keep an explicit scheme and path prefix."""
    address = original = address.strip()
    if not address:
        raise DetectorError("empty master address; expected e.g. http://host:5050 or host:5050")
    if address.startswith("//"):
        address = f"{scheme}:{address}"
    elif "://" not in address:
        address = f"{scheme}://{address}"
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https"):
        raise DetectorError(
            f"master address {original!r} has scheme {parts.scheme!r}; expected http, https or zk"
        )
    if not parts.hostname:
        raise DetectorError(f"master address {original!r} has no host; expected host:port")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as e:
        raise DetectorError(f"master address {original!r} has an invalid port: {e}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def leader_child(children: list[str]) -> str | None:
    """The lowest-sequence ``json.info_<seq>`` child: the leading master's znode."""
    best: tuple[int, str] | None = None
    for child in children:
        if not child.startswith(LEADER_PREFIX):
            continue
        digits = child[len(LEADER_PREFIX) :]
        if not digits.isdigit():
            continue
        key = (int(digits), child)
        if best is None or key < best:
            best = key
    return best[1] if best else None


def master_info_url(info: dict, scheme: str = "http") -> str:
    """The HTTP base URL of a master from its MasterInfo JSON.

    Prefers ``address.ip`` (hostnames need not resolve from here), but the hostname over https,
    where the certificate names the host.
    """
    address = info.get("address") or {}
    port = address.get("port") or info.get("port")
    ip = address.get("ip")
    hostname = address.get("hostname") or info.get("hostname")
    if not ip and isinstance(info.get("ip"), int):
        # Legacy MasterInfo.ip: an IPv4 address packed in network order read as little-endian.
        raw = info["ip"]
        ip = ".".join(str((raw >> shift) & 0xFF) for shift in (0, 8, 16, 24))
    host = (hostname or ip) if scheme == "https" else (ip or hostname)
    if not host or not port:
        raise DetectorError(
            f"MasterInfo {json.dumps(info)[:200]} has no address; expected address.ip/hostname "
            "and address.port"
        )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{int(port)}"


class Detector:
    """Base: the masters to try, in order, and an event set whenever that list changes."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    async def start(self) -> None:
        """Begin detection; idempotent. May raise on a transient failure (the caller retries)."""

    async def stop(self) -> None:
        """Release resources; the detector cannot be restarted."""

    def candidates(self) -> list[str]:
        """Base URLs (``http://host:port``) to try in order; empty while no leader is known."""
        raise NotImplementedError

    def describe(self) -> str:
        """A loggable description without credentials."""
        raise NotImplementedError


class StaticDetector(Detector):
    """A fixed URL or comma list, tried in order (a non-leader redirects to the leader)."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        if not urls:
            raise DetectorError("no master address given; expected e.g. http://host:5050")
        self._urls = list(urls)

    def candidates(self) -> list[str]:
        return list(self._urls)

    def describe(self) -> str:
        return ",".join(self._urls)


class ZooKeeperDetector(Detector):
    """The leader named by the lowest ``json.info_`` znode under a path, watched through kazoo."""

    def __init__(
        self,
        hosts: str,
        path: str,
        *,
        auth: str | None = None,
        scheme: str = "http",
        timeout: float = 10.0,
        log: logging.Logger | None = None,
    ) -> None:
        super().__init__()
        self.hosts = hosts
        self.path = "/" + path.strip("/")
        self.scheme = scheme
        self.timeout = timeout
        self.log = log or logger
        self._auth = auth
        self._leader: str | None = None
        self._leader_info: dict | None = None
        self._zk: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._last_problem: str | None = None

    @property
    def leader_info(self) -> dict | None:
        """The leading master's MasterInfo JSON, if known."""
        return self._leader_info

    def describe(self) -> str:
        return f"zk://{self.hosts}{self.path}"

    def candidates(self) -> list[str]:
        return [self._leader] if self._leader else []

    async def start(self) -> None:
        if self._zk is not None:
            return
        from kazoo.client import KazooClient

        self._loop = asyncio.get_running_loop()
        auth_data = [("digest", self._auth)] if self._auth else None
        zk = KazooClient(
            hosts=self.hosts,
            timeout=self.timeout,
            auth_data=auth_data,
            connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 5},
            command_retry={"max_tries": 3, "delay": 0.1, "backoff": 2, "max_delay": 2},
        )
        try:
            # KazooClient.start blocks until connected: never on the loop.
            await self._loop.run_in_executor(None, zk.start, self.timeout)
        except Exception:
            await self._loop.run_in_executor(None, _close_quietly, zk)
            raise
        if self._closed:
            await self._loop.run_in_executor(None, _close_quietly, zk)
            return
        self._zk = zk
        zk.add_listener(self._on_state)
        await self._loop.run_in_executor(None, self._refresh)

    async def stop(self) -> None:
        self._closed = True
        zk, self._zk = self._zk, None
        if zk is not None:
            await asyncio.get_running_loop().run_in_executor(None, _close_quietly, zk)

    # --- below runs on kazoo's threads (or an executor thread), never on the loop ---

    def _on_state(self, state: str) -> None:
        # Called on kazoo's connection thread, which must not block: spawn the re-read.
        if state == "CONNECTED" and self._zk is not None:
            self._zk.handler.spawn(self._refresh)

    def _on_watch(self, event: Any) -> None:
        if self._zk is not None:
            self._zk.handler.spawn(self._refresh)

    def _refresh(self) -> None:
        from kazoo.exceptions import KazooException, NoNodeError, ZookeeperError

        with self._lock:
            zk = self._zk
            if zk is None or self._closed:
                return
            for _ in range(5):  # the leader's znode can vanish between listing and reading
                try:
                    if zk.exists(self.path, watch=self._on_watch) is None:
                        self._publish(None, None, f"{self.describe()} does not exist yet")
                        return
                    children = zk.get_children(self.path, watch=self._on_watch)
                    child = leader_child(children)
                    if child is None:
                        self._publish(None, None, f"no {LEADER_PREFIX} znode under {self.path}")
                        return
                    data, _stat = zk.get(f"{self.path}/{child}")
                except NoNodeError:
                    continue
                except (KazooException, ZookeeperError) as e:
                    # Connection trouble: the state listener re-reads once reconnected.
                    self._problem(f"reading {self.describe()} failed: {e!r}")
                    return
                try:
                    info = json.loads(data)
                    url = master_info_url(info, self.scheme)
                except (ValueError, DetectorError) as e:
                    self._problem(f"znode {self.path}/{child} holds no usable MasterInfo: {e}")
                    return
                self._publish(url, info, None)
                return

    def _problem(self, message: str) -> None:
        if message != self._last_problem:
            self._last_problem = message
            self.log.warning("Mesos master detection: %s", message)

    def _publish(self, url: str | None, info: dict | None, problem: str | None) -> None:
        if problem:
            self._problem(problem)
        else:
            self._last_problem = None
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._set_leader, url, info)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    # --- back on the loop ---

    def _set_leader(self, url: str | None, info: dict | None) -> None:
        if url == self._leader:
            return
        if url:
            self.log.info("Leading Mesos master (from %s): %s", self.describe(), url)
        self._leader = url
        self._leader_info = info
        self.changed.set()


def _close_quietly(zk: Any) -> None:
    try:
        zk.stop()
        zk.close()
    except Exception:  # noqa: BLE001 - closing a broken client must not mask the real error
        logger.debug("closing the ZooKeeper client failed", exc_info=True)


def make_detector(
    master: str,
    *,
    scheme: str = "http",
    zk_timeout: float = 10.0,
    log: logging.Logger | None = None,
) -> Detector:
    """A detector for ``http://host:5050``, ``host:5050``, a comma list, or ``zk://h1,h2/path``.

    ``scheme`` applies to addresses without one and to masters found in ZooKeeper.
    """
    master = master.strip()
    if master.startswith("zk://"):
        rest = master[len("zk://") :]
        auth = None
        if "@" in rest.split("/", 1)[0]:
            auth, rest = rest.split("@", 1)
        hosts, sep, path = rest.partition("/")
        if not hosts or not sep or not path.strip("/"):
            raise DetectorError(
                f"ZooKeeper address {redact(master)!r} needs hosts and a path, "
                "e.g. zk://h1:2181,h2:2181/mesos"
            )
        if importlib.util.find_spec("kazoo") is None:
            raise DetectorError(
                f"master {redact(master)!r}: zk:// masters need the kazoo package; "
                "pip install 'mesosspawner[zookeeper]' (or give the masters as http://host:5050)"
            )
        return ZooKeeperDetector(hosts, path, auth=auth, scheme=scheme, timeout=zk_timeout, log=log)
    urls = [normalize_url(part, scheme) for part in master.split(",") if part.strip()]
    return StaticDetector(urls)


def redact(master: str) -> str:
    """Hide ``user:password@`` in a zk:// URL (what may be logged or stored)."""
    if master.startswith("zk://") and "@" in master:
        return "zk://***@" + master.split("@", 1)[1]
    return master
