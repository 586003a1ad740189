"""Placeholder (filled below in this branch)."""
