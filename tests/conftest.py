"""Settings for every test.

Hypothesis fails an example that runs longer than 200 ms by default: a
timing assertion, which on a shared 2-core machine in a slow hour fails
property tests whose examples are large by design (a backlog of 150,000
events replayed one at a time took 245 ms). Speed is the benchmark's to
measure (`bench/`), so the property tests carry no deadline.
"""

from hypothesis import settings

settings.register_profile("cc-kpi", deadline=None)
settings.load_profile("cc-kpi")
