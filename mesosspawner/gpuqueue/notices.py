"""A person's GPU notices on the hub's pages: "Your GPU server will be stopped in 8 min
because it has not been used for 52 min; ... Use it to keep it."

Where a person sees the warning before a cull: at the top of every hub page they open (home,
spawn, token...), JupyterHub's ``announcement`` slot, filled per person by a callable in
``c.JupyterHub.template_vars`` (``hubconfig.register_gpu_queue_service`` sets it). The hub
page is where someone whose notebook sits idle comes back to; JupyterLab itself has no channel
the hub can write into. The hub log says it too, and after the cull the spawn page says why
the server stopped.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any


def notices_for(username: str) -> list[str]:
    """Every GPU notice for ``username`` from the frameworks of this hub process."""
    from ..framework import MesosFramework

    out: list[str] = []
    for fw in list(MesosFramework._instances.values()):
        out.extend(fw.gpu_queue.notices_for(username))
    return out


def announcement(existing: Any = None) -> Callable[[Any], str]:
    """A ``template_vars["announcement"]`` value: the person's GPU notices (escaped), after
    the admin's own announcement (``existing``: a string, a callable of the user, or None)."""

    def render(user: Any) -> str:
        admin = existing(user) if callable(existing) else existing
        parts = [admin] if admin else []
        name = getattr(user, "name", None)
        if name:
            parts.extend(
                f'<span class="mesosspawner-gpu-notice">{html.escape(n)}</span>'
                for n in notices_for(name)
            )
        return "<br>".join(parts)

    return render
