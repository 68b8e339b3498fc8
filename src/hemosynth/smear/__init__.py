"""Smear synthesis: counts, placement, planning and rendering."""
