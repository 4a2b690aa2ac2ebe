"""Applications on wipstack's sockets (sans-I/O): the FTP client."""
