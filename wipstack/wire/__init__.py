"""Stateless wire formats: construct declarations, Repr value types, parse() and emit()."""
