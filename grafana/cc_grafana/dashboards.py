"""The four dashboards: wallboard, queue drill-down, quality, pipeline health.

Every query uses only the metrics the pipeline exports (README, "Prometheus
metrics"). Windowed KPIs are read from the pipeline's own series: the channel
roll-up is `queue="*"` with `network` `-` (non-social) or `*` (social), so
nothing is summed twice. Each KPI with an SLA target is drawn with the target
the pipeline exports (`cc_target_*`) as a dashed red series.

`max by (...)` around a KPI only drops the `instance`/`job` labels: every record
has exactly one author (one worker per channel), so there is one series.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

DS: Final = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS: Final = ["cc-kpi"]
GRID_WIDTH: Final = 24

ROLLUP: Final = 'queue="*", network=~"-|\\\\*"'
"""The channel roll-up series: every queue, every network."""

LEAF: Final = 'queue!="*", network!="*"'

RATE: Final = "$__rate_interval"

TARGET_STYLE: Final = [
    models.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
    models.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"}),
    models.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    models.DynamicConfigValue(id_val="custom.lineWidth", value=2),
]

REFS: Final = "ABCDEFGHIJ"


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str
    target: bool = False
    """A target (SLA) series: drawn dashed red."""


@dataclass(slots=True)
class Layout:
    """Places panels left to right in rows of 24 columns."""

    x: int = 0
    y: int = 0
    row_height: int = 0

    def place(self, w: int, h: int) -> models.GridPos:
        if self.x + w > GRID_WIDTH:
            self.newline()
        pos = models.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def row(self) -> models.GridPos:
        self.newline()
        pos = models.GridPos(h=1, w=GRID_WIDTH, x=0, y=self.y)
        self.y += 1
        return pos


def _targets(queries: Sequence[Query]) -> list[prometheus.Dataquery]:
    return [
        prometheus.Dataquery()
        .ref_id(REFS[i])
        .datasource(DS)
        .expr(q.expr)
        .legend_format(q.legend)
        .range()
        for i, q in enumerate(queries)
    ]


def _legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .calcs(["lastNotNull", "min", "max"])
    )


def graph(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    pos: models.GridPos,
    *,
    min_val: float | None = None,
    max_val: float | None = None,
    decimals: int | None = None,
    thresholds: Sequence[tuple[float | None, str]] | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .grid_pos(pos)
        .targets(_targets(queries))
        .legend(_legend())
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
        .line_width(2)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
    )
    if min_val is not None:
        panel = panel.min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    if decimals is not None:
        panel = panel.decimals(decimals)
    if thresholds:
        panel = panel.thresholds(_thresholds(thresholds)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED
            )
        )
    for i, q in enumerate(queries):
        if q.target:
            panel = panel.override_by_query(REFS[i], TARGET_STYLE)
    return panel


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


def single(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    pos: models.GridPos,
    *,
    thresholds: Sequence[tuple[float | None, str]],
    mappings: Sequence[tuple[str, str, str]] = (),
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .grid_pos(pos)
        .targets(_targets(queries))
        .thresholds(_thresholds(thresholds))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if mappings:
        panel = panel.mappings(_value_mappings(mappings))
    return panel


def _value_mappings(mappings: Sequence[tuple[str, str, str]]) -> list[models.ValueMap]:
    return [
        models.ValueMap(
            options={
                value: models.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, text, color) in enumerate(mappings)
            }
        )
    ]


def _datasource_variable() -> dashboard.DatasourceVariable:
    return (
        dashboard.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(models.VariableOption(selected=True, text="Prometheus", value="cc-prometheus"))
    )


def _query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool,
    include_all: bool,
    current: str | None = None,
    description: str,
) -> dashboard.QueryVariable:
    variable = (
        dashboard.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DS)
        .query(query)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    if include_all:
        variable = variable.all_value(".+")
    if current == "$__all":
        variable = variable.current(
            models.VariableOption(selected=True, text=["All"], value=["$__all"])
        )
    elif current is not None:
        variable = variable.current(
            models.VariableOption(selected=True, text=current, value=current)
        )
    return variable


def _job_variable() -> dashboard.QueryVariable:
    return _query_variable(
        "job",
        "Job",
        "label_values(cc_worker_up, job)",
        multi=True,
        include_all=True,
        current="$__all",
        description="Prometheus scrape job(s) of the pipeline workers.",
    )


def _window_variable() -> dashboard.QueryVariable:
    return _query_variable(
        "window",
        "Window",
        'label_values(cc_kpi_volume{job=~"$job"}, window)',
        multi=False,
        include_all=False,
        current="1h",
        description="Rolling window of the KPIs (the SLA alerts use 1h).",
    )


def _base(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .readonly()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone(common.TimeZoneBrowser)
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard.DashboardLink("cc-kpi dashboards")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


# --- 1. wallboard -----------------------------------------------------------------


def wallboard() -> dashboard.Dashboard:
    sel = f'job=~"$job", channel="$channel", {ROLLUP}'
    win = f'{sel}, window="$window"'
    by = "max by (channel)"
    layout = Layout()
    board = (
        _base(
            "cc-wallboard",
            "Contact center / Wallboard",
            "One row per channel: service level, answer rate, abandonment, first "
            "response time, queue now, oldest waiting and contacts at risk, each "
            "with the SLA target the pipeline exports.",
        )
        .refresh("10s")
        .time("now-3h", "now")
        .with_variable(_datasource_variable())
        .with_variable(_job_variable())
        .with_variable(
            _query_variable(
                "channel",
                "Channel",
                # "unknown" holds only what could not be attributed (surveys of
                # forgotten interactions): none of the wallboard's KPIs.
                'label_values(cc_kpi_volume{job=~"$job", channel!="unknown"}, channel)',
                multi=True,
                include_all=True,
                current="$__all",
                description="Channels to show, one row each.",
            )
        )
        .with_variable(_window_variable())
        .with_row(dashboard.Row("$channel").repeat("channel").grid_pos(layout.row()))
    )
    panels = [
        graph(
            "Service level",
            "Contacts answered within the channel's first-response target / (answered + "
            "abandoned), short abandons excluded. Dashed: target.",
            "percentunit",
            [
                Query(f"{by} (cc_kpi_service_level_ratio{{{win}}})", "service level"),
                Query(f"{by} (cc_target_service_level_ratio{{{sel}}})", "target", target=True),
            ],
            layout.place(4, 8),
            min_val=0,
            max_val=1,
        ),
        graph(
            "Answer rate",
            "Answered / (answered + abandoned). Dashed: target (calls by default).",
            "percentunit",
            [
                Query(f"{by} (cc_kpi_answer_ratio{{{win}}})", "answer rate"),
                Query(f"{by} (cc_target_answer_ratio{{{sel}}})", "target", target=True),
            ],
            layout.place(3, 8),
            min_val=0,
            max_val=1,
        ),
        graph(
            "Abandonment",
            "Abandoned / (answered + abandoned), short abandons excluded. Dashed: "
            "target (calls and chats by default).",
            "percentunit",
            [
                Query(f"{by} (cc_kpi_abandonment_ratio{{{win}}})", "abandonment"),
                Query(f"{by} (cc_target_abandonment_ratio{{{sel}}})", "target", target=True),
            ],
            layout.place(3, 8),
            min_val=0,
            max_val=1,
        ),
        graph(
            "First response time",
            "Median and 90th percentile of the first response time in the window. "
            "Dashed: the channel's first-response target.",
            "s",
            [
                Query(f"{by} (cc_kpi_frt_p50_seconds{{{win}}})", "p50"),
                Query(f"{by} (cc_kpi_frt_p90_seconds{{{win}}})", "p90"),
                Query(f"{by} (cc_target_frt_seconds{{{sel}}})", "target", target=True),
            ],
            layout.place(4, 8),
            min_val=0,
        ),
        graph(
            "Queue now",
            "Contacts waiting for a first response now. kpis.md sets no target on the "
            "queue length; the red series is the part of the queue already at risk.",
            "short",
            [
                Query(f"{by} (cc_queue_contacts{{{sel}}})", "waiting"),
                Query(f"{by} (cc_queue_at_risk_contacts{{{sel}}})", "at risk", target=True),
            ],
            layout.place(3, 8),
            min_val=0,
            decimals=0,
        ),
        graph(
            "Oldest waiting",
            "Wait of the oldest contact in the queue now. Dashed: first-response target.",
            "s",
            [
                Query(f"{by} (cc_queue_oldest_wait_seconds{{{sel}}})", "oldest"),
                Query(f"{by} (cc_target_frt_seconds{{{sel}}})", "target", target=True),
            ],
            layout.place(4, 8),
            min_val=0,
        ),
        graph(
            "At risk",
            "Waiting contacts past the at-risk share (default 80 %) of the first-response "
            "target. Target: none at risk (dashed line at 1 contact).",
            "short",
            [Query(f"{by} (cc_queue_at_risk_contacts{{{sel}}})", "at risk")],
            layout.place(3, 8),
            min_val=0,
            decimals=0,
            thresholds=[(None, "green"), (1, "red")],
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board


# --- 2. queue drill-down --------------------------------------------------------------


def queue() -> dashboard.Dashboard:
    sel = 'job=~"$job", channel="$channel", queue="$queue", network="$network"'
    win = f'{sel}, window="$window"'
    by = "max by (channel, queue, network)"
    layout = Layout()

    def kpi(metric: str, legend: str) -> Query:
        return Query(f"{by} ({metric}{{{win}}})", legend)

    def live(metric: str, legend: str) -> Query:
        return Query(f"{by} ({metric}{{{sel}}})", legend)

    def target(metric: str) -> Query:
        return Query(f"{by} ({metric}{{{sel}}})", "target", target=True)

    board = (
        _base(
            "cc-queue",
            "Contact center / Queue drill-down",
            "Every KPI of one channel, queue and social network over a rolling window. "
            'Queue "*" is the channel roll-up; network "-" outside social, "*" for all '
            "networks.",
        )
        .with_variable(_datasource_variable())
        .with_variable(_job_variable())
        .with_variable(
            _query_variable(
                "channel",
                "Channel",
                'label_values(cc_kpi_volume{job=~"$job"}, channel)',
                multi=False,
                include_all=False,
                current="call",
                description="Channel.",
            )
        )
        .with_variable(
            _query_variable(
                "queue",
                "Queue",
                'label_values(cc_kpi_volume{job=~"$job", channel="$channel"}, queue)',
                multi=False,
                include_all=False,
                current="*",
                description='Queue; "*" is the whole channel.',
            )
        )
        .with_variable(
            _query_variable(
                "network",
                "Network",
                'label_values(cc_kpi_volume{job=~"$job", channel="$channel", queue="$queue"}, '
                "network)",
                multi=False,
                include_all=False,
                current="-",
                description='Social network; "-" outside social, "*" all networks.',
            )
        )
        .with_variable(_window_variable())
    )

    ratio = {"min_val": 0, "max_val": 1}
    sections: list[tuple[str, Callable[[], list[Any]]]] = [
        (
            "Service",
            lambda: [
                graph(
                    "Volume",
                    "Contacts offered (contact.started) in the window.",
                    "short",
                    [kpi("cc_kpi_volume", "contacts")],
                    layout.place(6, 8),
                    min_val=0,
                    decimals=0,
                ),
                graph(
                    "Service level",
                    "Answered within the first-response target / (answered + abandoned).",
                    "percentunit",
                    [
                        kpi("cc_kpi_service_level_ratio", "service level"),
                        target("cc_target_service_level_ratio"),
                    ],
                    layout.place(6, 8),
                    **ratio,
                ),
                graph(
                    "Answer rate",
                    "Answered / (answered + abandoned).",
                    "percentunit",
                    [kpi("cc_kpi_answer_ratio", "answer rate"), target("cc_target_answer_ratio")],
                    layout.place(6, 8),
                    **ratio,
                ),
                graph(
                    "Abandonment",
                    "Abandoned / (answered + abandoned), short abandons excluded.",
                    "percentunit",
                    [
                        kpi("cc_kpi_abandonment_ratio", "abandonment"),
                        target("cc_target_abandonment_ratio"),
                    ],
                    layout.place(6, 8),
                    **ratio,
                ),
                graph(
                    "First response time",
                    "Mean and percentiles of the first response time (sketch, 0.5 % "
                    "relative error).",
                    "s",
                    [
                        kpi("cc_kpi_frt_mean_seconds", "mean"),
                        kpi("cc_kpi_frt_p50_seconds", "p50"),
                        kpi("cc_kpi_frt_p90_seconds", "p90"),
                        kpi("cc_kpi_frt_p99_seconds", "p99"),
                        target("cc_target_frt_seconds"),
                    ],
                    layout.place(8, 8),
                    min_val=0,
                ),
                graph(
                    "Average speed of answer",
                    "Mean first response time of calls (calls only).",
                    "s",
                    [kpi("cc_kpi_asa_seconds", "ASA"), target("cc_target_frt_seconds")],
                    layout.place(8, 8),
                    min_val=0,
                ),
                graph(
                    "Next response time",
                    "From a customer message to the next agent reply (async channels).",
                    "s",
                    [
                        kpi("cc_kpi_next_response_mean_seconds", "mean"),
                        kpi("cc_kpi_next_response_p90_seconds", "p90"),
                    ],
                    layout.place(8, 8),
                    min_val=0,
                ),
            ],
        ),
        (
            "Live queue",
            lambda: [
                graph(
                    "Queue now",
                    "Contacts waiting for a first response now; red: those at risk. "
                    "kpis.md sets no target on the queue length.",
                    "short",
                    [
                        live("cc_queue_contacts", "waiting"),
                        Query(f"{by} (cc_queue_at_risk_contacts{{{sel}}})", "at risk", target=True),
                    ],
                    layout.place(8, 8),
                    min_val=0,
                    decimals=0,
                ),
                graph(
                    "Oldest waiting",
                    "Wait of the oldest waiting contact. Dashed: first-response target.",
                    "s",
                    [
                        live("cc_queue_oldest_wait_seconds", "oldest"),
                        target("cc_target_frt_seconds"),
                    ],
                    layout.place(8, 8),
                    min_val=0,
                ),
                graph(
                    "At risk",
                    "Waiting contacts past 80 % of the first-response target. Target: none.",
                    "short",
                    [live("cc_queue_at_risk_contacts", "at risk")],
                    layout.place(8, 8),
                    min_val=0,
                    decimals=0,
                    thresholds=[(None, "green"), (1, "red")],
                ),
            ],
        ),
        (
            "Outcomes",
            lambda: [
                graph(
                    "Escalation rate",
                    "Ended contacts with at least one escalation / ended contacts.",
                    "percentunit",
                    [
                        kpi("cc_kpi_escalation_ratio", "escalation"),
                        target("cc_target_escalation_ratio"),
                    ],
                    layout.place(6, 8),
                    **ratio,
                ),
                graph(
                    "Transfer rate",
                    "Ended contacts with at least one transfer / ended contacts.",
                    "percentunit",
                    [kpi("cc_kpi_transfer_ratio", "transfer")],
                    layout.place(6, 8),
                    **ratio,
                ),
                graph(
                    "First contact resolution",
                    "Resolved on first contact / resolved.",
                    "percentunit",
                    [kpi("cc_kpi_fcr_ratio", "FCR"), target("cc_target_fcr_ratio")],
                    layout.place(6, 8),
                    **ratio,
                ),
                graph(
                    "Repeat contacts",
                    "Started contacts with an earlier contact of the same customer (and "
                    "reason) in the repeat window / started.",
                    "percentunit",
                    [
                        kpi("cc_kpi_repeat_contact_ratio", "repeat"),
                        kpi("cc_kpi_reopen_ratio", "reopened / resolved"),
                    ],
                    layout.place(6, 8),
                    min_val=0,
                ),
                graph(
                    "Contacts per resolution",
                    "Started / resolved contacts in the window.",
                    "none",
                    [kpi("cc_kpi_contacts_per_resolution", "contacts per resolution")],
                    layout.place(8, 8),
                    min_val=0,
                    decimals=2,
                ),
                graph(
                    "Handle and resolution time",
                    "Average handle time (talk + hold + wrap) and mean time from start to "
                    "resolution.",
                    "s",
                    [
                        kpi("cc_kpi_aht_seconds", "AHT"),
                        kpi("cc_kpi_resolution_time_mean_seconds", "resolution time"),
                    ],
                    layout.place(8, 8),
                    min_val=0,
                ),
                graph(
                    "Contacts by outcome",
                    "Counts in the window: the numerators and denominators of the ratios.",
                    "short",
                    [
                        kpi("cc_window_started", "started"),
                        kpi("cc_window_answered", "answered"),
                        kpi("cc_window_answered_within_target", "within target"),
                        kpi("cc_window_abandoned", "abandoned"),
                        kpi("cc_window_short_abandoned", "short abandoned"),
                        kpi("cc_window_ended", "ended"),
                        kpi("cc_window_resolved", "resolved"),
                    ],
                    layout.place(8, 8),
                    min_val=0,
                    decimals=0,
                ),
            ],
        ),
        (
            "Surveys and SLA state",
            lambda: [
                graph(
                    "CSAT",
                    "Survey answers of 4 or 5 / survey answers.",
                    "percentunit",
                    [kpi("cc_kpi_csat_ratio", "CSAT"), target("cc_target_csat_ratio")],
                    layout.place(6, 8),
                    **ratio,
                ),
                graph(
                    "NPS",
                    "% promoters (9-10) - % detractors (0-6), -100..100.",
                    "none",
                    [kpi("cc_kpi_nps_score", "NPS")],
                    layout.place(6, 8),
                    min_val=-100,
                    max_val=100,
                    decimals=1,
                ),
                graph(
                    "CES",
                    "Mean customer effort score, 1..7 (7 = very easy).",
                    "none",
                    [kpi("cc_kpi_ces_score", "CES")],
                    layout.place(6, 8),
                    min_val=1,
                    max_val=7,
                    decimals=2,
                ),
                statetimeline.Panel()
                .title("SLA state")
                .description(
                    "The pipeline's own breach state per KPI over the alerting window "
                    "(held while the window is under the minimum volume)."
                )
                .datasource(DS)
                .unit("none")
                .grid_pos(layout.place(6, 8))
                .targets(
                    _targets(
                        [
                            Query(
                                f'max by (kpi) (cc_sla_breached{{{sel}, window="1h"}})',
                                "{{kpi}}",
                            )
                        ]
                    )
                )
                .mappings(_value_mappings([("0", "ok", "green"), ("1", "breach", "red")]))
                .thresholds(_thresholds([(None, "green"), (1, "red")])),
            ],
        ),
    ]
    for title, make_panels in sections:
        board = board.with_row(dashboard.Row(title).grid_pos(layout.row()))
        for panel in make_panels():
            board = board.with_panel(panel)
    return board


# --- 3. quality ---------------------------------------------------------------------


def quality() -> dashboard.Dashboard:
    sel = f'job=~"$job", channel=~"$channel", {ROLLUP}'
    win = f'{sel}, window="$window"'
    by = "max by (channel)"
    layout = Layout()

    def kpi(metric: str) -> Query:
        return Query(f"{by} ({metric}{{{win}}})", "{{channel}}")

    def target(metric: str) -> Query:
        return Query(f"{by} ({metric}{{{sel}}})", "{{channel}} target", target=True)

    board = (
        _base(
            "cc-quality",
            "Contact center / Quality",
            "Resolution and customer-experience KPIs per channel (channel roll-ups), "
            "with the SLA targets the pipeline exports.",
        )
        .with_variable(_datasource_variable())
        .with_variable(_job_variable())
        .with_variable(
            _query_variable(
                "channel",
                "Channel",
                'label_values(cc_kpi_volume{job=~"$job"}, channel)',
                multi=True,
                include_all=True,
                current="$__all",
                description="Channels to compare.",
            )
        )
        .with_variable(_window_variable())
    )
    panels = [
        graph(
            "First contact resolution",
            "Resolved on first contact / resolved. Dashed: target.",
            "percentunit",
            [kpi("cc_kpi_fcr_ratio"), target("cc_target_fcr_ratio")],
            layout.place(12, 8),
            min_val=0,
            max_val=1,
        ),
        graph(
            "Repeat contacts",
            "Started contacts that repeat an earlier contact of the same customer "
            "(and reason) within the repeat window / started.",
            "percentunit",
            [kpi("cc_kpi_repeat_contact_ratio")],
            layout.place(12, 8),
            min_val=0,
            max_val=1,
        ),
        graph(
            "Escalation rate",
            "Ended contacts with at least one escalation / ended. Dashed: target.",
            "percentunit",
            [kpi("cc_kpi_escalation_ratio"), target("cc_target_escalation_ratio")],
            layout.place(12, 8),
            min_val=0,
            max_val=1,
        ),
        graph(
            "Transfer rate",
            "Ended contacts with at least one transfer / ended.",
            "percentunit",
            [kpi("cc_kpi_transfer_ratio")],
            layout.place(12, 8),
            min_val=0,
            max_val=1,
        ),
        graph(
            "CSAT",
            "Survey answers of 4 or 5 / survey answers. Dashed: target.",
            "percentunit",
            [kpi("cc_kpi_csat_ratio"), target("cc_target_csat_ratio")],
            layout.place(8, 8),
            min_val=0,
            max_val=1,
        ),
        graph(
            "NPS",
            "% promoters (9-10) - % detractors (0-6), -100..100.",
            "none",
            [kpi("cc_kpi_nps_score")],
            layout.place(8, 8),
            min_val=-100,
            max_val=100,
            decimals=1,
        ),
        graph(
            "CES",
            "Mean customer effort score, 1..7 (7 = very easy).",
            "none",
            [kpi("cc_kpi_ces_score")],
            layout.place(8, 8),
            min_val=1,
            max_val=7,
            decimals=2,
        ),
        graph(
            "Average handle time",
            "Mean talk + hold + wrap time of ended contacts that report it.",
            "s",
            [kpi("cc_kpi_aht_seconds")],
            layout.place(12, 8),
            min_val=0,
        ),
        graph(
            "Contacts per resolution",
            "Started / resolved contacts in the window.",
            "none",
            [kpi("cc_kpi_contacts_per_resolution")],
            layout.place(12, 8),
            min_val=0,
            decimals=2,
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board


# --- 4. pipeline health ---------------------------------------------------------------


def health() -> dashboard.Dashboard:
    sel = 'job=~"$job", instance=~"$instance"'
    layout = Layout()
    board = (
        _base(
            "cc-pipeline-health",
            "Contact center / Pipeline health",
            "The KPI pipeline itself: throughput, consumer lag, rejected and late "
            "events, snapshot freshness, Redis and the number of workers.",
        )
        .with_variable(_datasource_variable())
        .with_variable(_job_variable())
        .with_variable(
            _query_variable(
                "instance",
                "Instance",
                'label_values(cc_worker_up{job=~"$job"}, instance)',
                multi=True,
                include_all=True,
                current="$__all",
                description="Worker processes.",
            )
        )
    )
    panels = [
        single(
            "Workers",
            "Worker processes reporting (cc_worker_up). Red below one.",
            "short",
            [Query(f"sum(cc_worker_up{{{sel}}})", "workers")],
            layout.place(4, 8),
            thresholds=[(None, "red"), (1, "green")],
        ),
        graph(
            "Events consumed",
            "Valid input events per second, per topic.",
            "ops",
            [Query(f"sum by (topic) (rate(cc_events_total{{{sel}}}[{RATE}]))", "{{topic}}")],
            layout.place(10, 8),
            min_val=0,
        ),
        graph(
            "Consumer lag",
            "Messages behind the end of the input partitions, per topic.",
            "short",
            [Query(f"sum by (topic) (cc_consumer_lag_messages{{{sel}}})", "{{topic}}")],
            layout.place(10, 8),
            min_val=0,
            decimals=0,
        ),
        graph(
            "Internal backlog",
            "Events, facts and deltas waiting on the internal topics (estimated; the same "
            "figure on every worker, max over them), and the workers holding off input "
            "because it is above pipeline.max_internal_backlog (backpressure, e.g. during "
            "a replay or after an outage).",
            "short",
            [
                Query(f"max(cc_internal_backlog_items{{{sel}}})", "items waiting"),
                Query(f"sum(cc_input_held{{{sel}}})", "workers holding input"),
            ],
            layout.place(8, 8),
            min_val=0,
            decimals=0,
        ),
        graph(
            "Input skew",
            "Event time between each worker's furthest-ahead input partition and its slowest "
            "one with unread messages (event clock). Input alignment pauses a partition more "
            "than pipeline.max_input_skew ahead (cc_input_ahead_partitions); it can stay "
            "above that by what the partition fetched before its pause.",
            "s",
            [Query(f"max by (instance) (cc_input_skew_seconds{{{sel}}})", "{{instance}}")],
            layout.place(8, 8),
            min_val=0,
        ),
        graph(
            "Dead letters",
            "Rejected messages per second, by reason (cc.deadletter).",
            "ops",
            [
                Query(
                    f"sum by (reason) (rate(cc_deadletter_total{{{sel}}}[{RATE}]))",
                    "{{reason}}",
                )
            ],
            layout.place(8, 8),
            min_val=0,
        ),
        graph(
            "Late events",
            "Events older than the allowed lateness (not counted), per second and topic.",
            "ops",
            [Query(f"sum by (topic) (rate(cc_late_events_total{{{sel}}}[{RATE}]))", "{{topic}}")],
            layout.place(8, 8),
            min_val=0,
        ),
        graph(
            "Duplicates and unknown interactions",
            "Repeated event ids, and events of interactions whose start was never seen, "
            "per second and channel.",
            "ops",
            [
                Query(
                    f"sum by (channel) (rate(cc_duplicate_events_total{{{sel}}}[{RATE}]))",
                    "duplicates {{channel}}",
                ),
                Query(
                    "sum by (channel) "
                    f"(rate(cc_unknown_interaction_events_total{{{sel}}}[{RATE}]))",
                    "unknown {{channel}}",
                ),
            ],
            layout.place(8, 8),
            min_val=0,
        ),
        graph(
            "Snapshot age",
            "Seconds since each worker holding part of the KPI board (cc_board_partitions) "
            "last published its snapshot (every 5 s by default). Dashed: 30 s. "
            "CcKpiSnapshotStale pages above 2 min.",
            "s",
            [
                Query(
                    f"(time() - max by (instance) (cc_snapshot_timestamp_seconds{{{sel}}}))"
                    f" and on (instance) (max by (instance) (cc_board_partitions{{{sel}}}) > 0)",
                    "{{instance}}",
                )
            ],
            layout.place(8, 8),
            min_val=0,
            thresholds=[(None, "green"), (30, "red")],
        ),
        graph(
            "Pipeline clock behind wall time",
            "Wall time minus the pipeline clock (event-time watermark in event mode).",
            "s",
            [
                Query(
                    f"time() - max by (instance) (cc_watermark_timestamp_seconds{{{sel}}})",
                    "{{instance}}",
                )
            ],
            layout.place(8, 8),
        ),
        single(
            "Redis",
            "1 if Redis took every selected worker's last snapshot write (or, before its "
            "first snapshot, answered its last check).",
            "none",
            [Query(f"min(cc_redis_up{{{sel}}})", "redis up")],
            layout.place(4, 8),
            thresholds=[(None, "red"), (1, "green")],
            mappings=[("0", "down", "red"), ("1", "up", "green")],
        ),
        graph(
            "Redis errors",
            "Failed Redis snapshot writes per second.",
            "ops",
            [
                Query(
                    f"sum by (instance) (rate(cc_redis_errors_total{{{sel}}}[{RATE}]))",
                    "{{instance}}",
                )
            ],
            layout.place(4, 8),
            min_val=0,
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board


DASHBOARDS: Final = {
    "cc-wallboard": wallboard,
    "cc-queue": queue,
    "cc-quality": quality,
    "cc-pipeline-health": health,
}


def render(name: str) -> dict[str, Any]:
    """The JSON model of one dashboard, as Grafana's provisioning loads it."""
    model = json.loads(JSONEncoder().encode(DASHBOARDS[name]().build()))
    # Stable, unique panel ids (the SDK leaves rows at 0 and panels unset).
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number
    return model
