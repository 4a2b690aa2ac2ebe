"""wipstack: a from-scratch userspace TCP/IP stack with its own PPP.

The protocol core is sans-I/O: objects take bytes and ``now`` and return bytes, events and
their next deadline.  Only ``wipstack.drivers`` touches clocks, file descriptors and threads.
"""

__version__ = "0.1.0"
