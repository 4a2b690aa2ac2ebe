"""I/O drivers: the only part of wipstack that touches clocks, fds, terminals and threads."""
