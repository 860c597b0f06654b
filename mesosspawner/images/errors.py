"""The images wing's one error type."""

from __future__ import annotations


class ImagesError(Exception):
    """A problem the person running the command can fix; printed without a traceback."""
