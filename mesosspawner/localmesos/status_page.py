"""``GET /``: a small HTML page of the master's state (agents, frameworks, tasks), where a
real master serves its web UI, so a person opening the master's address sees something.

Pure: ``render`` takes the ``/master/state`` dict and returns HTML. Every value from the state
(task names, labels and ids come from frameworks, that is from users) is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

_SCALARS = ("cpus", "mem", "gpus", "disk")
_LIVE = {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"}

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; } th, td { padding: .25em .8em; text-align: left; }
th { background: #eee; } tr:nth-child(even) td { background: #f7f7f7; }
.muted { color: #777; } code { font-size: .95em; }
"""


def _amount(name: str, value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    text = str(int(value)) if float(value).is_integer() else f"{value:g}"
    return f"{text} MiB" if name in ("mem", "disk") else text


def _resources(res: Mapping[str, Any] | None, names: Iterable[str] = _SCALARS) -> str:
    res = res or {}
    parts = [f"{n} {_amount(n, res.get(n))}" for n in names if res.get(n)]
    if res.get("ports"):
        parts.append(f"ports {res['ports']}")
    return ", ".join(parts) or "—"


def _used(agent: Mapping[str, Any]) -> str:
    total, used = agent.get("resources") or {}, agent.get("used_resources") or {}
    parts = []
    for name in _SCALARS:
        if total.get(name):
            amount, whole = _amount(name, used.get(name, 0)), _amount(name, total[name])
            parts.append(f"{name} {amount} of {whole}")
    return ", ".join(parts) or "—"


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _attributes(attrs: Mapping[str, Any] | None) -> str:
    return "; ".join(f"{k}:{v}" for k, v in sorted((attrs or {}).items())) or "—"


def render(state: Mapping[str, Any]) -> str:
    """The status page for a ``/master/state`` dict."""
    agents = list(state.get("slaves") or [])
    hostnames = {a.get("id"): a.get("hostname", "") for a in agents}
    frameworks = list(state.get("frameworks") or [])
    agent_rows = [
        [
            a.get("hostname", ""),
            "active" if a.get("active", True) else "disconnected",
            _used(a),
            _resources(a.get("resources"), ()),
            _attributes(a.get("attributes")),
            a.get("id", ""),
        ]
        for a in agents
    ]
    framework_rows = [
        [
            f.get("name", ""),
            "connected" if f.get("connected") else "disconnected",
            ", ".join(f.get("roles") or []) or f.get("role", ""),
            sum(1 for t in f.get("tasks") or [] if t.get("state") in _LIVE),
            _resources(f.get("used_resources")),
            f.get("id", ""),
        ]
        for f in frameworks
    ]
    names = {f.get("id"): f.get("name", "") for f in frameworks}
    task_rows = [
        [
            t.get("name", ""),
            str(t.get("state", "")).removeprefix("TASK_").lower(),
            hostnames.get(t.get("slave_id"), t.get("slave_id", "")),
            names.get(t.get("framework_id"), ""),
            _resources(t.get("resources")),
            t.get("id", ""),
        ]
        for f in frameworks
        for t in [*(f.get("tasks") or []), *(f.get("completed_tasks") or [])[-20:]]
    ]
    version = escape(str(state.get("version", "")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>localmesos master</title><style>{_STYLE}</style></head>
<body>
<h1>localmesos master <span class="muted">(Mesos {version} API)</span></h1>
<p class="muted">A single-process stand-in for a Mesos master and its agents. Machine-readable:
<a href="master/state">/master/state</a>, <a href="master/slaves">/master/slaves</a>,
<a href="version">/version</a>. This page does not refresh itself; reload it.</p>
<h2>Agents ({len(agent_rows)})</h2>
{
        _table(
            ["hostname", "state", "used of total", "ports", "attributes", "id"],
            agent_rows,
            "No agents.",
        )
    }
<h2>Frameworks ({len(framework_rows)})</h2>
{
        _table(
            ["name", "state", "roles", "live tasks", "using", "id"],
            framework_rows,
            "No framework has subscribed yet.",
        )
    }
<h2>Tasks ({len(task_rows)})</h2>
{_table(["name", "state", "agent", "framework", "resources", "id"], task_rows, "No tasks yet.")}
</body></html>
"""
