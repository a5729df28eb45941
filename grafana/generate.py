"""Writes (or, with --check, verifies) every file generated from grafana/cc_grafana/.

    python grafana/generate.py          # rewrite the generated files
    python grafana/generate.py --check  # exit 1 and name the files that differ

Generated files:
    grafana/dashboards/<uid>.json                         dashboards (provisioned)
    grafana/provisioning/alerting/cc-kpi-sla-rules.yaml   Grafana-managed SLA alert rules
    deploy/prometheus/rules/cc-kpi-alerts.yml             the same rules for Prometheus
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from cc_grafana import dashboards, render, sla  # noqa: E402


def outputs() -> dict[Path, Callable[[], str]]:
    """Every generated file and how to produce its text."""
    files: dict[Path, Callable[[], str]] = {
        HERE / "dashboards" / f"{name}.json": (
            lambda name=name: render.to_json(dashboards.render(name))
        )
        for name in dashboards.DASHBOARDS
    }
    files[HERE / "provisioning" / "alerting" / "cc-kpi-sla-rules.yaml"] = lambda: render.to_yaml(
        sla.grafana_rules()
    )
    files[ROOT / "deploy" / "prometheus" / "rules" / "cc-kpi-alerts.yml"] = lambda: render.to_yaml(
        sla.prometheus_rules()
    )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for path, produce in outputs().items():
        text = produce()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("out of date (run python grafana/generate.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
