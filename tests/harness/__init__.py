"""Test harnesses that run real peers for wipstack (see uml.py: pppd in a User-Mode-Linux guest)."""
