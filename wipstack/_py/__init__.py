"""Pure-Python reference implementations of the hot paths (the spec for ``wipstack_c``)."""
