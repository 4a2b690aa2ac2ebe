"""Cython hot paths for wipstack; each module has a pure-Python twin in ``wipstack._py``.

This package never imports ``wipstack``; ``wipstack.accel`` selects between the two.
"""
