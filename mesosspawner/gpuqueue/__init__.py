"""The GPU queue: who gets the next free GPU, how long they wait, and GPUs given back.

Pure policy (data in, data out, the clock passed in), shared by the hub and
``benchmarks/bench_queue.py``:

- ``policy``    the admin's groups, shares, quotas and limits, validated once;
- ``fairshare`` usage decayed over a half-life and the fair-share order (Slurm's 2^(-U/S));
- ``quotas``    per-user and per-group ceilings, nominal quotas and borrowing: who may start;
- ``culling``   idle, max-age and reclaim deadlines, and the warning before each cull;
- ``eta``       where a request stands and when it should start, in words for the person.

The hub's side (I/O): ``hubqueue.GpuQueue``, owned by the framework (tickets, sessions, usage
persisted as JSON next to the framework id file, the cull loop, metrics); ``notices`` puts a
person's warnings on the hub's pages; ``service/`` is the admins' page at /services/gpu-queue/.
"""
