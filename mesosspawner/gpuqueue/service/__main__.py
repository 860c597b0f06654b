"""``python -m mesosspawner.gpuqueue.service --state-file PATH``: the GPU queue service."""

from __future__ import annotations

import argparse
import os
import sys

from .app import ServiceConfig, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mesosspawner.gpuqueue.service",
        description="The GPU queue's page for admins, as a JupyterHub service (hub OAuth).",
    )
    parser.add_argument(
        "--state-file",
        required=True,
        help="the GPU queue state file the hub writes (c.MesosSpawner.gpu_queue_state_file)",
    )
    parser.add_argument(
        "--bind-url",
        default=os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10102"),
        help="where to listen (default: $JUPYTERHUB_SERVICE_URL, set by the hub)",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/gpu-queue/"),
        help="URL prefix (default: $JUPYTERHUB_SERVICE_PREFIX)",
    )
    opts = parser.parse_args(argv)
    serve(ServiceConfig(state_file=opts.state_file, prefix=opts.prefix), opts.bind_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
