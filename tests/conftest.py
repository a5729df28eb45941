"""Settings for every test.

Hypothesis fails an example that runs longer than 200 ms by default: a
timing assertion, which on a shared 2-core machine in a slow hour fails
property tests whose examples are large by design (a backlog of 150,000
events replayed one at a time took 245 ms). Speed is the benchmark's to
measure (`bench/`), so the property tests carry no deadline.

`make test` runs the suite in two processes (pytest-xdist, `--dist
loadgroup`). The tests on the test services (the Kafka and Redis `make test`
starts) stop, restart and share that broker, so they form one group that one
process runs in order; the TLS/SASL tests start services of their own and
form another. Everything else is spread over whichever process is free.
"""

from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("cc-kpi", deadline=None)
settings.load_profile("cc-kpi")

TESTS = Path(__file__).resolve().parent
SERVICE_GROUPS = {TESTS / "security": "secure-services"}
"""Directories whose tests run on services of their own, one group each."""


def service_group(item: pytest.Item) -> str | None:
    """The xdist group of a test that needs running services, or None."""
    for directory, group in SERVICE_GROUPS.items():
        if item.path.is_relative_to(directory):
            return group
    if item.path.is_relative_to(TESTS / "integration") or item.get_closest_marker("integration"):
        return "test-services"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: before xdist's own hook turns the group marker into the node id.
    for item in items:
        group = service_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a service test, before it touches a service, if xdist did not put
    it in its group: spread over two processes, one test would stop the
    broker under another, and their failures would not say why (pytest 9.2
    does that, pytest-xdist#1386)."""
    group = service_group(item)
    if (
        group is not None
        and item.config.getoption("loadgroup", default=False)
        and not item.nodeid.endswith(f"@{group}")
    ):
        pytest.fail(
            f"pytest-xdist did not put this test in group {group!r}"
            f" (pytest {pytest.__version__}, pytest-xdist#1386): install the versions"
            " pyproject.toml allows, or run with PYTEST_WORKERS=0",
            pytrace=False,
        )
