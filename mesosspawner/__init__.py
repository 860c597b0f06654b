"""mesosspawner: a JupyterHub spawner that runs each notebook server as an Apache Mesos task."""

__version__ = "0.1.0"
__all__ = ["MesosSpawner", "__version__", "check_config"]


def check_config(config, *, cluster: bool = True) -> None:
    """Validate the MesosSpawner section of a hub config, and the cluster it names, at hub start.

    JupyterHub builds spawners only when a server starts, so a typo in a trait (a
    ``placement_strategy`` of "binpak", an unknown ``containerizer``) would otherwise surface at
    the first spawn. Call it last in ``jupyterhub_config.py`` (``check_config(c)``): a bad value
    raises a TraitError naming the trait, the value and the choices, and the hub does not start.

    Then (``cluster``, on by default) it checks the Mesos cluster (``start_check``): a cluster
    that lets notebooks take it over, or one it cannot read, stops the hub with an error naming
    the flags to set, unless ``c.MesosSpawner.allow_insecure_cluster = True``.
    """
    from types import SimpleNamespace

    from .spawner import MesosSpawner
    from .start_check import check_cluster

    spawner = MesosSpawner(
        config=config, user=SimpleNamespace(name="config-check", id=0, groups=[])
    )
    if cluster:
        check_cluster(spawner, spawner.log)


def __getattr__(name: str):
    # Lazy so that `mesosspawner.localmesos` and the pure modules import without JupyterHub.
    if name == "MesosSpawner":
        from .spawner import MesosSpawner

        return MesosSpawner
    raise AttributeError(name)
