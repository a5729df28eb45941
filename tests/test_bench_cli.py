"""The benchmark command's argument checks: a run that cannot work stops
before it starts Kafka and Redis or loads a million events."""

from pathlib import Path

import pytest

from bench import run


def test_profiling_without_py_spy_stops_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "PY_SPY", str(tmp_path / "py-spy"))
    local = tmp_path / "local"

    code = run.main(["--profile", str(tmp_path / "profiles"), "--local-dir", str(local)])

    assert code == 2
    assert "--profile needs py-spy" in capsys.readouterr().err
    assert not local.exists()
