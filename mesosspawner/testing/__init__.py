"""Real processes for the test suite and the benchmarks: a JupyterHub with its proxy
(``hub``), localmesos masters and agents as processes (``localmesos_procs``), real Apache Mesos
1.11.0 (``real_mesos``), the notebook environment and system users notebooks run as
(``notebook_env``), a scripted fake master (``fake_master``), a loopback Docker registry
(``registry``), and the Spark images and helpers of the Spark test and benchmark (``spark``).

Nothing here is used by the spawner at run time; it lives in the package (as
``mesosspawner.localmesos.testing`` does) so that the tests and ``benchmarks/`` share one copy
without either importing the other.
"""
