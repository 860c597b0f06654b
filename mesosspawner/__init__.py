"""mesosspawner: a JupyterHub spawner that runs each notebook server as an Apache Mesos task."""

__version__ = "0.1.0"
__all__ = ["MesosSpawner", "__version__"]


def __getattr__(name: str):
    # Lazy so that `mesosspawner.localmesos` and the pure modules import without JupyterHub.
    if name == "MesosSpawner":
        from .spawner import MesosSpawner

        return MesosSpawner
    raise AttributeError(name)
