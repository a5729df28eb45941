"""The environment `cc-kpi worker` gives the Faust process (streams.allocator)."""

from __future__ import annotations

from streams.allocator import worker_environment


def found(name: str) -> str | None:
    return {"jemalloc": "libjemalloc.so.2"}.get(name)


def missing(name: str) -> str | None:
    return None


def test_jemalloc_is_preloaded_and_serves_every_object() -> None:
    env, warning = worker_environment({"PATH": "/bin"}, "jemalloc", found)
    assert env == {"PATH": "/bin", "LD_PRELOAD": "libjemalloc.so.2", "PYTHONMALLOC": "malloc"}
    assert warning is None


def test_a_preload_of_the_callers_own_is_kept_after_jemalloc() -> None:
    env, _ = worker_environment({"LD_PRELOAD": "libfoo.so"}, "jemalloc", found)
    assert env["LD_PRELOAD"] == "libjemalloc.so.2 libfoo.so"


def test_jemalloc_already_preloaded_is_not_loaded_twice() -> None:
    preload = "/opt/lib/libjemalloc.so.2"
    env, _ = worker_environment({"LD_PRELOAD": preload}, "jemalloc", found)
    assert env["LD_PRELOAD"] == preload


def test_a_pythonmalloc_of_the_callers_own_wins() -> None:
    env, _ = worker_environment({"PYTHONMALLOC": "pymalloc_debug"}, "jemalloc", found)
    assert env["PYTHONMALLOC"] == "pymalloc_debug"


def test_without_jemalloc_installed_the_worker_runs_on_pymalloc_and_says_so() -> None:
    environ = {"PATH": "/bin"}
    env, warning = worker_environment(environ, "jemalloc", missing)
    assert env == environ
    assert warning is not None and "libjemalloc2" in warning


def test_pymalloc_leaves_the_environment_as_it_is() -> None:
    def unused(name: str) -> str | None:
        raise AssertionError("looked for a library with pymalloc configured")

    environ = {"LD_PRELOAD": "libfoo.so"}
    assert worker_environment(environ, "pymalloc", unused) == (environ, None)


def test_the_installed_jemalloc_is_found() -> None:
    """deploy/local/setup.sh installs libjemalloc2."""
    env, warning = worker_environment({}, "jemalloc")
    assert warning is None
    assert "libjemalloc" in env["LD_PRELOAD"]
