"""Test services' ports: never one the kernel may hand to another process meanwhile."""

from __future__ import annotations

import socket
import subprocess
import sys

from mesosspawner.testing import net

_OTHER_PROCESS = """
from mesosspawner.testing.net import free_port
import sys
print(*[free_port() for _ in range(20)])
sys.stdin.read()  # hold the block until the test has its own ports
"""


def test_ports_are_outside_the_kernels_ephemeral_range_and_no_two_processes_share_one():
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_PROCESS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        theirs = {int(p) for p in other.stdout.readline().split()}
        ours = {net.free_port() for _ in range(20)}
    finally:
        other.communicate("")
    ephemeral = net._ephemeral_range()
    assert len(theirs) == 20 and len(ours) == 20
    assert not (theirs & ours)
    assert all(p in net.SERVICE_PORTS and p not in ephemeral for p in ours | theirs)


def test_a_port_something_listens_on_is_never_handed_out():
    first = net.free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", first))
        squatter.listen()
        # Every other port of the block comes round before `first` would again.
        handed = [net.free_port() for _ in range(net.BLOCK_SIZE)]
    assert first not in handed
