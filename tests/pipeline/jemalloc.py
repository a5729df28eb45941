"""Tests that need jemalloc in the process they start (streams.allocator)."""

from __future__ import annotations

import ctypes.util
import os

import pytest

needs_jemalloc = pytest.mark.skipif(
    ctypes.util.find_library("jemalloc") is None and not os.environ.get("CI"),
    reason="libjemalloc2 is installed by make setup (in CI a missing one fails)",
)
