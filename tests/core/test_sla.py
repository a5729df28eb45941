"""SLA transitions: breach and recovery once each, held below the minimum volume."""

from streams.core.sla import evaluate


def record(service_level, answered, abandoned=0):
    return {
        "channel": "call",
        "queue": "billing",
        "network": None,
        "window": "1h",
        "kpis": {"service_level": service_level, "answer_rate": None},
        "counts": {"answered": answered, "abandoned": abandoned},
        "targets": {"service_level": 0.8},
    }


def test_breach_then_recovery_one_event_each():
    states: dict[str, str] = {}
    first = evaluate(record(0.7, 30), states, 20, "t1")
    assert [(e["state"], e["kpi"], e["value"], e["target"], e["contacts"]) for e in first] == [
        ("breach", "service_level", 0.7, 0.8, 30)
    ]
    assert evaluate(record(0.6, 40), states, 20, "t2") == []
    recovered = evaluate(record(0.85, 50), states, 20, "t3")
    assert [e["state"] for e in recovered] == ["recovered"]
    assert evaluate(record(0.9, 60), states, 20, "t4") == []


def test_low_volume_neither_pages_nor_clears():
    states: dict[str, str] = {}
    assert evaluate(record(0.1, 3), states, 20, "night") == []
    evaluate(record(0.5, 25), states, 20, "t")
    assert evaluate(record(0.99, 2), states, 20, "quiet") == []
    assert states["service_level"] == "breach"


def test_healthy_start_announces_nothing():
    assert evaluate(record(0.9, 100), {}, 20, "t") == []


def test_lower_is_better_kpis():
    r = {
        "channel": "chat",
        "queue": "q",
        "network": None,
        "window": "1h",
        "kpis": {"abandonment_rate": 0.2},
        "counts": {"answered": 20, "abandoned": 5},
        "targets": {"abandonment_rate": 0.1},
    }
    assert [e["state"] for e in evaluate(r, {}, 20, "t")] == ["breach"]
