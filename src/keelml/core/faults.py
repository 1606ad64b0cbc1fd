"""Crash points for durability tests.

A test sets ``KEELML_CRASH_AT=<point>`` in a child process; when the write path reaches that point
the process dies at once (``os._exit``), exactly like ``kill -9``. Unset, each call is one dict lookup.
"""

from __future__ import annotations

import os


def crash_point(name: str) -> None:
    if os.environ.get("KEELML_CRASH_AT") == name:
        os._exit(137)
