"""pytest fixtures for tests against the host kernel in a network namespace over TUN.

Import them into a test module (or a conftest.py)::

    from tests.harness.netns_fixtures import netns, tun_in_netns  # noqa: F401

``netns`` is a fresh :class:`~tests.harness.netns.NetNamespace` with loopback up.
``tun_in_netns`` is ``(netns, tun)``: a :class:`~wipstack.drivers.tun.TunDevice` whose fd
stays in this (the host's) namespace while its interface was moved into ``netns`` and
configured there as the kernel's end of a point-to-point link::

    wipstack (the fd)  LOCAL 192.0.2.2  <-- tun -->  PEER 192.0.2.1  the kernel in netns

Both skip (or fail under WIPSTACK_REQUIRE_INTEROP=1) where namespaces or TUN are missing.
Teardown closes the TUN device first (the device goes), then the namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wipstack.drivers.tun import TunDevice

from .netns import NetNamespace, skip_unless_netns_tun

KERNEL_ADDRESS = "192.0.2.1"  # the kernel's end of the TUN link, inside the namespace
WIPSTACK_ADDRESS = "192.0.2.2"  # wipstack's end: whoever reads and writes the fd
TUN_MTU = 1500


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    """A new network namespace with loopback up; deleted (its processes killed) afterwards."""
    skip_unless_netns_tun()
    ns = NetNamespace()
    try:
        ns.run("ip", "link", "set", "lo", "up")
        yield ns
    finally:
        ns.close()


@pytest.fixture
def tun_in_netns(netns: NetNamespace) -> Iterator[tuple[NetNamespace, TunDevice]]:
    """(netns, tun): the kernel's end of the TUN link is 192.0.2.1 in netns, wipstack's end 192.0.2.2."""
    tun = TunDevice(mtu=TUN_MTU)
    try:
        tun.move_to_netns(netns.name)
        tun.configure_kernel_side(WIPSTACK_ADDRESS, KERNEL_ADDRESS)
        yield netns, tun
    finally:
        tun.close()
