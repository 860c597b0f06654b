"""The traits of Spark notebooks: how a Spark profile's driver reaches Spark on Mesos.

A part of ``MesosSpawner`` (its base class): set them as ``c.MesosSpawner.<name>``, usually in a
Spark profile's ``mesosspawner_override``. ``spark_settings()`` turns them into the pure
``spark.SparkSettings`` the TaskInfo is built from (docs/spark.md).
"""

from __future__ import annotations

from traitlets import Dict, Float, Unicode
from traitlets.config import LoggingConfigurable

from . import spark


class SparkTraits(LoggingConfigurable):
    """Where a notebook's Spark runs its executors, and how much of the cluster it may take."""

    spark_master = Unicode(
        None,
        allow_none=True,
        help="""Spark master URL (`mesos://HOST:5050` or `mesos://zk://HOST:2181/mesos`). Set, the
        notebook's `SparkSession.builder.getOrCreate()` registers with it as a Spark framework
        and runs its executors as Mesos tasks (docs/spark.md).""",
    ).tag(config=True)
    spark_executor_image = Unicode(
        None,
        allow_none=True,
        help="""Docker image of the Spark executors (`spark.mesos.executor.docker.image`; the
        lab's docker/spark-executor). Pin it by digest (`REF@sha256:...`).""",
    ).tag(config=True)
    spark_role = Unicode(None, allow_none=True, help="`spark.mesos.role` for executors.").tag(
        config=True
    )
    spark_conf = Dict(help="Extra `spark.*` settings passed to the notebook's Spark.").tag(
        config=True
    )
    spark_cores_max = Float(
        2.0,
        allow_none=True,
        help="""`spark.cores.max`: the CPUs one notebook's executors may hold together, so one
        notebook cannot take the whole Spark cluster. None: no limit.""",
    ).tag(config=True)
    spark_executor_constraints = Unicode(
        None,
        allow_none=True,
        help="""`spark.mesos.constraints` (Spark's syntax, e.g. `spark_cluster:prod`): keeps
        executors on the Spark machines. Mesos also offers plain agents' unreserved resources to
        the Spark role, so without it executors spread onto every agent.""",
    ).tag(config=True)
    spark_mesos_native_library = Unicode(
        None,
        allow_none=True,
        help="""Path on the agents of Mesos's JNI library, which the Spark driver loads
        (MESOS_NATIVE_JAVA_LIBRARY): PREFIX/lib/libmesos-java.so as scripts/install-mesos.sh
        installs it, or libmesos.so of a Mesos built with Java. Its directory (libmesos beside
        it) is mounted read-only at /opt/mesos/lib into Spark notebook images, so the driver
        always speaks the agents' Mesos version.""",
    ).tag(config=True)
    spark_principal = Unicode(
        None, allow_none=True, help="`spark.mesos.principal` of notebooks' Spark frameworks."
    ).tag(config=True)
    spark_secret = Unicode(
        None,
        allow_none=True,
        help="""The Spark principal's secret. It reaches the driver as SPARK_MESOS_SECRET through
        the one-time env file (Docker notebooks), never in the TaskInfo.""",
    ).tag(config=True)
    spark_cleanup_interval = Float(
        60.0,
        help="""Seconds between sweeps for Spark frameworks whose notebook is gone (torn down
        through the master's operator API); 0: no sweep. Stopping a server always tears its
        notebook's Spark frameworks down.""",
    ).tag(config=True)

    def spark_settings(self, system_user: str | None) -> spark.SparkSettings | None:
        """The notebook's Spark settings from the traits, or None without ``spark_master``."""
        if not self.spark_master:
            return None
        return spark.SparkSettings(
            master=self.spark_master,
            executor_image=self.spark_executor_image,
            role=self.spark_role,
            conf=dict(self.spark_conf),
            cores_max=self.spark_cores_max,
            executor_constraints=self.spark_executor_constraints,
            mesos_native_library=self.spark_mesos_native_library,
            principal=self.spark_principal,
            user=system_user,
        )
