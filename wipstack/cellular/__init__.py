"""Cellular modems: the 3GPP TS 27.010 multiplexer, the 27.007 dialer, and a modem simulator (sans-I/O)."""
