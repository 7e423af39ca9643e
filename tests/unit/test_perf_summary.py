"""The load benchmark's arithmetic (tests/perf/summary.py, report.py, servers.py): the ratios
and targets are computed from the figures, a partial report still prints, and a vanished
server's exit is put in words."""

from __future__ import annotations

import signal
from typing import Any

from tests.perf.report import errors_in, format_report
from tests.perf.run import FULL, QUICK, chosen
from tests.perf.servers import exit_cause, oom_finding
from tests.perf.summary import ratio, summarize


def load(rps: float, cpu: float = 1.0, p99: float = 10.0, errors: int = 0) -> dict[str, Any]:
    return {
        "rps": rps,
        "cpu_ms_per_request": cpu,
        "latency_ms": {"p50": p99 / 2, "p90": p99 * 0.9, "p99": p99},
        "errors": errors,
        "statuses": "",
    }


def pair(ours: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    return {"c100": ours, "c10": other}


def report() -> dict[str, Any]:
    return {
        "mode": "full",
        "started": "now",
        "git": "abc",
        "scenarios": {
            "list": {
                "ours": pair(load(800, cpu=1.2, p99=30), load(700, p99=30)),
                "floor": pair(load(1000, cpu=1.0, p99=10), load(900, p99=10)),
            },
            # The quick mode measures no floor latency: no p99 ratio, no verdict on it.
            "get": {"ours": pair(load(700), load(600)), "floor": pair(load(1000), {})},
        },
        "reference": {
            "list": {
                "ours": {"c10": load(300), "c100": load(800, errors=2)},
                "reference": {"c10": load(100), "c100": load(50, errors=40)},
            }
        },
        "workers2": {
            "scenarios": {
                "list": {
                    "ours": pair(load(1200, cpu=1.2, p99=30), load(700, p99=30)),
                    "floor": pair(load(1800), load(900)),
                }
            },
            "reference": {},
        },
        "doors": {
            "rest": {"create": pair(load(400, cpu=2.0, p99=20), load(300, cpu=2.0, p99=20))},
            "mcp-add": {"rest_scenario": "create", **pair(load(300, cpu=3.0), load(200, p99=30))},
        },
    }


def test_ratio_is_none_without_both_figures() -> None:
    assert ratio(3, 4) == 0.75
    assert ratio(None, 4) is None
    assert ratio(3, None) is None
    assert ratio(3, 0) is None


def test_summary_ratios_are_computed_from_the_figures() -> None:
    summary = summarize(report())
    one = summary["workers1"]
    assert one["floor"]["list"] == {"throughput": 0.8, "cpu_per_request": 1.2, "p99_c10": 3.0}
    assert one["floor"]["get"]["p99_c10"] is None
    assert one["reference"]["list"] == {
        "throughput_c10": 3.0,
        "ours_errors_c100": 2,
        "reference_errors_c100": 40,
    }
    assert summary["workers2"]["scaling"]["list"] == {
        "ours": 1.5,
        "floor": 1.8,
        "ours_over_floor": 0.833,
    }
    assert summary["doors"]["mcp-add"] == {
        "rest": "create",
        "throughput": 0.75,
        "cpu_per_request": 1.5,
        "p99_c10": 1.5,
        "throughput_c10": 0.667,
    }


def test_targets_are_met_missed_or_unmeasured() -> None:
    summary = summarize(report())
    verdicts = {(t["workers"], t["scenario"], t["ratio"]): t["met"] for t in summary["targets"]}
    assert verdicts[(1, "list", "throughput")] is True  # 0.8 >= 0.75
    assert verdicts[(1, "get", "throughput")] is False  # 0.7
    assert verdicts[(1, "list", "cpu_per_request")] is True  # 1.2 <= 1.35
    assert verdicts[(1, "list", "p99_c10")] is False  # 3x the floor's
    assert verdicts[(1, "get", "p99_c10")] is None
    assert verdicts[(1, "list", "throughput_c10")] is True  # 3x the reference
    assert verdicts[(1, "list", "ours_errors_c100")] is False  # ours erred at 100
    assert verdicts[(2, "list", "throughput")] is False  # 1200/1800
    assert verdicts[(2, "list", "ours_over_floor")] is False  # scaled 1.5 against 1.8
    met, missed = list(verdicts.values()).count(True), list(verdicts.values()).count(False)
    assert (summary["targets_met"], summary["targets_missed"]) == (met, missed)
    assert summary["targets_unmeasured"] == 1


def test_a_partial_report_still_prints_with_its_summary_and_failure() -> None:
    partial = report()
    del partial["workers2"]
    partial["scenarios"]["patch"] = {"ours": pair(load(500), load(400))}  # failed before floor
    partial["failure"] = {"section": "scenarios", "error": "the server ours vanished"}
    partial["summary"] = summarize(partial)
    table = format_report(partial)
    assert "THE RUN FAILED in scenarios: the server ours vanished" in table
    assert "targets:" in table
    assert partial["summary"]["workers1"]["floor"]["patch"]["throughput"] is None


def test_the_reference_errors_are_no_failed_run() -> None:
    assert errors_in(report()) == 2


def test_exit_in_words() -> None:
    assert exit_cause(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_cause(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert exit_cause(3) == "exited with code 3"
    assert exit_cause(None) == "still running"
    assert oom_finding(1, 1, 0).startswith("no")
    assert oom_finding(1, -signal.SIGTERM, 0).startswith("no")


def test_quick_mode_runs_growth_and_two_workers_only_when_named() -> None:
    quick = chosen(None, QUICK)
    assert not quick["growth"]
    assert not quick["workers2"]
    assert quick["observability"]
    assert quick["doors"] == ["mcp-add", "mcp-list", "chat-add"]
    named = chosen(["get", "growth", "workers2", "chat-add"], QUICK)
    assert named["scenarios"] == ["get"]
    assert named["reference"] == ["get"]
    assert named["growth"]
    assert named["workers2"]
    assert not named["observability"]
    assert named["doors"] == ["chat-add"]
    full = chosen(None, FULL)
    assert full["growth"]
    assert full["workers2"]
