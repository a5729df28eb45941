"""Grafana dashboards and SLA alert rules of the cc-kpi pipeline, as code.

Built with Grafana's grafana-foundation-sdk (Python, Grafana 11.6 schema).
`python grafana/generate.py` writes the files Grafana and Prometheus load;
`python grafana/generate.py --check` fails when a committed file differs from
what the code generates. See grafana/README.md.
"""
