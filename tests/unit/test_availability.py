"""availability: the options form's one sentence per profile, about that profile only."""

from __future__ import annotations

from mesosspawner.availability import capacity, duration_words
from mesosspawner.mesos.resources import parse_resources
from mesosspawner.placement import AgentCapacity, Request

PLAIN = "cpus:2;mem:8000;ports:[31000-31999]"
GPU = "cpus:2;mem:8000;gpus:2;ports:[32000-32999]"
SPARK = "cpus(spark):2;mem(spark):4000;cpus:1;mem:1024;ports:[33000-33999]"

CPU_NB = Request("cpu", cpus=0.5, mem=256)
GPU_NB = Request("gpu", cpus=1, mem=256, gpus=1)
SPARK_NB = Request("spark", cpus=0.5, mem=256, ports=4, role="spark")


def agent(host, total, free=None):
    return AgentCapacity(
        f"id-{host}",
        host,
        tuple(parse_resources(total)),
        tuple(parse_resources(total if free is None else free)),
    )


def cluster(gpu_free=GPU, plain_free=PLAIN):
    return [agent("agent-1", PLAIN, plain_free), agent("gpu-1", GPU, gpu_free)]


def test_gpu_profile_counts_gpus_and_starts_now():
    line = capacity(GPU_NB, cluster())
    assert (line.status, line.detail) == ("now", "2 of 2 GPUs free — starts now")
    assert (line.free_gpus, line.total_gpus) == (2, 2)
    one = capacity(GPU_NB, cluster(gpu_free="cpus:1;mem:7000;gpus:1;ports:[32001-32999]"))
    assert one.detail == "1 of 2 GPUs free — starts now"


def test_all_gpus_in_use_says_so_and_how_long_a_spawn_waits():
    line = capacity(GPU_NB, cluster(gpu_free="mem:7000;ports:[32002-32999]"), patience=300)
    assert line.status == "wait"
    assert line.detail == "All 2 GPUs are in use — you will wait, up to 5 minutes"
    assert line.free_gpus == 0


def test_a_free_gpu_without_cpus_beside_it_is_not_called_free_to_start():
    """The demo's old shape: 1 GPU free, but its agent's cpus are taken."""
    line = capacity(GPU_NB, cluster(gpu_free="mem:7000;gpus:1;ports:[32001-32999]"))
    assert line.status == "wait"
    assert line.detail.startswith("1 of 2 GPUs free, but no agent has 1 cpu free")
    assert line.detail.endswith("— you will wait")


def test_cpu_and_spark_lines_say_nothing_about_gpus():
    for request in (CPU_NB, SPARK_NB):
        agents = [*cluster(), agent("spark-1", SPARK)]
        line = capacity(request, agents)
        assert line.detail == "Room free now — starts now"
        assert line.free_gpus is None and "GPU" not in line.detail
    full = capacity(CPU_NB, cluster(plain_free="mem:100", gpu_free="gpus:2"), patience=30)
    assert full.status == "wait" and "GPU" not in full.detail
    assert full.detail.startswith("No agent has 0.5 cpus") and "up to 30 seconds" in full.detail


def test_a_spark_profiles_sentence_says_what_its_executors_can_get():
    """One sentence still: the Spark role's free share, then the verdict."""
    spark_free = "cpus(spark):1;mem(spark):3000;cpus:1;mem:1024;ports:[33000-33999]"
    agents = [*cluster(), agent("spark-1", SPARK, spark_free)]
    line = capacity(SPARK_NB, agents, spark_role="spark")
    assert line.status == "now"
    assert line.detail == (
        "Room free now; 1 of 2 CPUs and 2.9 of 3.9 GiB free for Spark executors — starts now"
    )
    busy = "mem:1024;ports:[33000-33999]"  # executors and notebooks hold every CPU
    wait = capacity(SPARK_NB, [agent("spark-1", SPARK, busy)], spark_role="spark")
    assert wait.status == "wait" and wait.detail.count(" — ") == 1
    assert "; 0 of 2 CPUs and 0 of 3.9 GiB free for Spark executors — you will wait" in wait.detail
    # A role nothing is reserved for (or a CPU profile) says nothing about Spark.
    assert "Spark" not in capacity(SPARK_NB, agents, spark_role="other").detail


def test_never_names_what_no_agent_has():
    line = capacity(Request("big", cpus=1, mem=256, gpus=3), cluster())
    assert line.status == "never"
    assert line.detail.startswith("Cannot start on this cluster: no agent has 3 GPUs")


def test_before_the_cluster_answers():
    line = capacity(GPU_NB, [])
    assert line.status == "wait" and "not answered yet" in line.detail


def test_memory_is_in_mib_like_the_form():
    line = capacity(Request("m", cpus=0.5, mem=9000), cluster())
    assert "MiB" in line.detail and " MB" not in line.detail


def test_duration_words():
    assert duration_words(1) == "1 second"
    assert duration_words(6) == "6 seconds"
    assert duration_words(298) == "5 minutes"
    assert duration_words(7200) == "2 hours"
