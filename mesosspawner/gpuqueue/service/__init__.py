"""The GPU queue's page for admins: a JupyterHub service at /services/gpu-queue/ (hub OAuth).

It reads the live snapshot the hub's GPU queue writes into its state file (``hubqueue``):
no API into the hub, nothing to call back. ``hubconfig.register_gpu_queue_service`` adds it
to a hub's config; ``python -m mesosspawner.gpuqueue.service`` runs it.
"""
