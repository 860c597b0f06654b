"""The Spark profile on real Mesos 1.11: time from spawning it to the first job result, and the
job's time on Mesos executors vs Spark local mode on the same machine (one run, ratios).

    python benchmarks/bench_spark.py [--base-image IMAGE] [--cores 2] [--runs 3] [--json FILE]

One fresh real JupyterHub (with configurable-http-proxy), a real mesos-master and one
mesos-agent with the Docker containerizer whose resources are reserved for role `spark`, the
lab's spark-notebook and spark-executor images (built by content hash on --base-image, pushed
to a loopback registry, pinned by digest), and one system user `msbench-spark`. The job is
`spark.range(10**7).selectExpr("sum(id)")`, sent as a notebook cell through the Jupyter kernel
API:

- spawn -> first result: from `POST /hub/api/users/NAME/server` (profile spark) to the first
  job's result in a new kernel (server start, kernel start, SparkSession registering with the
  master, executors launched in Docker, the job);
- Mesos executors: the same job again --runs times (`spark.cores.max` = --cores executors of one
  core each), median;
- local mode: in a new kernel of the same notebook after the Mesos session stopped,
  `master("local[CORES]")`, the same job --runs times, median: the same machine, image and core
  count, no Mesos.

It imports only the package and its shared test harness (`mesosspawner.testing`: the hub, real
Mesos, the Spark images and their registry, `Hub.run_cell`), never `tests/`.

Needs root, real Mesos installed (scripts/install-mesos.sh), a Docker engine, docker-registry
and the base image (the test suite imports `mesosspawner-test/bookworm-base:1` with debootstrap).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from mesosspawner.images import lab as images  # noqa: E402
from mesosspawner.testing import real_mesos  # noqa: E402
from mesosspawner.testing import spark as spark_testing  # noqa: E402
from mesosspawner.testing.hub import Hub  # noqa: E402
from mesosspawner.testing.notebook_env import ensure_user  # noqa: E402

USER = "msbench-spark"
SUM = spark_testing.SUM

HUB_CONFIG = """
c.JupyterHub.log_level = "INFO"
c.JupyterHub.spawner_class = "mesosspawner.MesosSpawner"
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.MesosSpawner.mesos_master = {master!r}
c.MesosSpawner.ip = "127.0.0.1"
c.MesosSpawner.image = {notebook!r}
c.MesosSpawner.containerizer = "docker"
c.MesosSpawner.network_mode = "host"
c.MesosSpawner.cmd = ["jupyterhub-singleuser"]
c.MesosSpawner.environment = {{}}
c.MesosSpawner.volumes = []
c.MesosSpawner.notebook_dir = "/tmp"
c.MesosSpawner.kill_grace_seconds = 5
c.MesosSpawner.profile_list = [
    {{"display_name": "Spark", "slug": "spark", "default": True, "mesosspawner_override": {{
        "role": "spark", "cpu_limit": 0.5, "mem_limit": "2G",
        "spark_master": {spark_master!r},
        "spark_role": "spark",
        "spark_executor_image": {executor!r},
        "spark_executor_constraints": "spark_cluster:prod",
        "spark_cores_max": {cores},
        "spark_mesos_native_library": {library!r},
        "spark_conf": {{"spark.executor.cores": "1", "spark.executor.memory": "512m"}},
    }}}},
]
"""

# One cell per mode, in a fresh kernel (a new driver JVM): the session, the first job (on Mesos:
# with the executors' launch), then the warm runs; the first result's wall-clock time too.
CELL = """
import json, time
t = time.perf_counter()
from pyspark.sql import SparkSession
spark = SparkSession.builder{master}.getOrCreate()
session = time.perf_counter() - t
def job():
    t = time.perf_counter()
    total = spark.range(10**7).selectExpr("sum(id)").collect()[0][0]
    assert total == {total}, total
    return time.perf_counter() - t
first = job()
first_at = time.time()
runs = [job() for _ in range({runs})]
master = spark.sparkContext.master
spark.stop()
print(json.dumps(dict(session=session, first=first, first_at=first_at, runs=runs, master=master)))
"""


async def bench(args: argparse.Namespace, work: Path) -> dict:
    library = spark_testing.java_library()
    if library is None:
        raise SystemExit("real Mesos with lib/libmesos-java.so is needed: scripts/install-mesos.sh")
    client = images.connect()
    cluster = None
    hub = None
    figures: dict = {}
    with spark_testing.cached_registry(work / "registry") as registry:
        try:
            t0 = time.perf_counter()
            pinned = spark_testing.build_images(
                client, registry, args.base_image, log=lambda msg: None
            )
            figures["images_seconds"] = round(time.perf_counter() - t0, 1)
            base = random.randrange(46000, 49000, 100)
            agent = {
                "hostname": "localhost",  # executors bind to the offer's hostname: it resolves
                "resources": f"cpus(spark):{args.cores + 2};mem(spark):8192;disk:20000;"
                f"ports:[{base}-{base + 49}]",
                "attributes": "spark_cluster:prod",
            }
            cluster = await asyncio.to_thread(
                real_mesos.start_cluster,
                work / "mesos",
                (agent,),
                docker=True,
                agent_extra=("--executor_registration_timeout=5mins",),
            )
            config = HUB_CONFIG.format(
                master=cluster.url,
                notebook=pinned["spark-notebook"],
                spark_master="mesos://" + cluster.url.removeprefix("http://"),
                executor=pinned["spark-executor"],
                cores=args.cores,
                library=str(library),
            )
            ensure_user(USER)
            hub = Hub(work / "hub", extra_config=config, notebook_cmd=["jupyterhub-singleuser"],
                      log_level="INFO", start_timeout=600)  # fmt: skip
            await hub.launch()
            await hub.create_user(USER)
            await hub.user_token(USER)

            t_spawn, spawned_at = time.perf_counter(), time.time()
            code = await hub.start_server(USER, "", {"profile": "spark"})
            assert code in (201, 202), code
            await hub.wait_server_ready(USER, timeout=600)
            t_ready = time.perf_counter()
            modes = {}
            # Mesos first (its first result is the spawn's), then local mode in a new kernel:
            # the Mesos session has stopped, so the notebook's driver ports are free again.
            for mode, master in (("mesos", ""), ("local", f'.master("local[{args.cores}]")')):
                cell = CELL.format(master=master, total=SUM, runs=args.runs)
                out = await hub.run_cell(USER, cell, timeout=600)  # each in a new kernel
                modes[mode] = json.loads(out.strip().splitlines()[-1])
            assert modes["mesos"]["master"].startswith("mesos://"), modes["mesos"]["master"]
            assert modes["local"]["master"] == f"local[{args.cores}]", modes["local"]["master"]
            figures.update(
                spawn_to_ready=t_ready - t_spawn,
                spawn_to_first_result=modes["mesos"]["first_at"] - spawned_at,
                modes=modes,
            )
            await hub.stop_server(USER, timeout=120)
        finally:
            if hub is not None:
                hub.cleanup()
            if cluster is not None:
                spark_testing.remove_containers_under(client, work / "mesos")
                await asyncio.to_thread(cluster.stop)
                spark_testing.remove_containers_under(client, work / "mesos")
    return figures


def report(f: dict, args: argparse.Namespace) -> str:
    mesos, local = f["modes"]["mesos"], f["modes"]["local"]

    def row(name: str, m: float, lo: float) -> str:
        return f"  {name:<34}{m:9.2f}{lo:9.2f}{m / lo:9.2f}x"

    med_m, med_l = statistics.median(mesos["runs"]), statistics.median(local["runs"])
    return "\n".join(
        [
            f"Spark profile on real Mesos 1.11, PySpark 3.5.9, {os.cpu_count()} cores"
            f" ({platform.node()}), spark.cores.max={args.cores}, one run",
            f"  images (build/push, or reuse by content hash) {f['images_seconds']:8.1f} s",
            f"  spawn -> server ready                         {f['spawn_to_ready']:8.1f} s",
            f"  spawn -> first job result                     {f['spawn_to_first_result']:8.1f} s",
            "",
            f"  sum(id) over range(10**7), seconds      Mesos  local[{args.cores}]  Mesos/local",
            row("SparkSession (new kernel)", mesos["session"], local["session"]),
            row("first job (Mesos: executors launch)", mesos["first"], local["first"]),
            row(f"job, median of {args.runs} warm runs", med_m, med_l),
            f"  warm runs: Mesos {', '.join(f'{x:.2f}' for x in mesos['runs'])};"
            f" local {', '.join(f'{x:.2f}' for x in local['runs'])}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-image", default="mesosspawner-test/bookworm-base:1")
    parser.add_argument("--cores", type=int, default=2, help="spark.cores.max and local[N]")
    parser.add_argument("--runs", type=int, default=3, help="warm runs of the job per mode")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: notebooks run as the benchmark's system user")
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        os.chmod(tmp, 0o755)
        figures = asyncio.run(bench(args, Path(tmp)))
    print(report(figures, args))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
