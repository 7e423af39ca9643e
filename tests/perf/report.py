"""The printed table and the results file. Both are made from whatever the report holds, so
that a run that failed half-way still shows and keeps the figures it measured."""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from pathlib import Path
from typing import Any

from tests.perf.scenarios import TITLES
from tests.perf.servers import ROOT
from tests.perf.summary import dig, summary_rows

RESULTS = Path(__file__).resolve().parent / "results"
NAN = {"p50": math.nan, "p90": math.nan, "p99": math.nan}


def run_stem(name: str, mode: str) -> str:
    """The run's name: its results file's stem, and its kept logs' folder's prefix."""
    return f"{name}-{mode}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"


def write_results(report: dict[str, Any], name: str, stem: str | None = None) -> Path:
    """The run's figures as JSON in tests/perf/results/ (not committed)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{stem or run_stem(name, report['mode'])}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {path.relative_to(ROOT)}")
    return path


def errors_in(report: dict[str, Any]) -> int:
    """Every error counted in the report, but the reference backend's (beside ours, in the
    reference sections): those are a finding about it, not a failed run."""
    total = 0

    def walk(node: Any) -> None:
        nonlocal total
        if isinstance(node, dict):
            if "errors" in node and isinstance(node["errors"], int):
                total += node["errors"]
            for key, value in node.items():
                if key == "summary" or (key == "reference" and "ours" in node):
                    continue
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(report)
    return total


def _cell(value: float | None, width: int, places: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{places}f}"


def format_report(report: dict[str, Any]) -> str:
    """The table: throughput at 100 connections, latency at 10, ours against the floor; then
    the reference, the doors, growth, metrics and logging, 2 workers, and the summary."""
    lines = [
        f"{report['mode']} run, {report['started']}, commit {report['git']}; "
        "rps at 100 connections, latency (ms) at 10 connections, server CPU ms per request "
        "at 100 connections (cpu ratio = floor/ours, comparable to ours/floor rps)",
        "",
    ]
    scenarios = report.get("scenarios", {})
    lines += scenario_rows(scenarios)
    lines += reference_rows(report.get("reference", {}))
    lines += door_rows(report.get("doors", {}))
    lines.append("")
    if "list" in scenarios and "deep" in scenarios:
        for name in ("ours", "floor"):
            deep = ratio_text(scenarios, "deep", "list", name)
            lines.append(f"deep page / first page throughput, {name}: {deep}")
    for key in report:
        if key.startswith("c") and key[1:].isdigit():
            for name, result in report[key].items():
                lines.append(
                    f"mix at {key[1:]} connections, {name}: {result['rps']:.0f}/s, "
                    f"p99 {result['latency_ms']['p99']:.0f} ms, errors {result['errors']}"
                    + (f" ({result['statuses']})" if result["statuses"] else "")
                )
    for name in ("ours", "floor"):
        before = dig(report, "rss_kib_before", name)
        after = dig(report, "rss_kib_after", name)
        if before is not None:
            shown = [
                ", ".join(f"{kib / 1024:.0f}" for kib in s) if s else "-" for s in (before, after)
            ]
            lines.append(f"worker RSS, {name}: {shown[0]} MiB before, {shown[1]} MiB after")
    lines += growth_rows(report.get("growth", {}))
    lines += observability_rows(report.get("observability", {}))
    if "workers2" in report:
        lines += ["", "2 workers each:"]
        lines += scenario_rows(report["workers2"].get("scenarios", {}))
        lines += reference_rows(report["workers2"].get("reference", {}))
    lines += summary_rows(report.get("summary", {}))
    errors = errors_in(report)
    lines.append("")
    lines.append(
        f"errors: {errors}"
        + ("  (A RUN WITH ERRORS IS NOT A RESULT)" if errors else "")
        + f"; took {report.get('seconds')} s"
    )
    if "failure" in report:
        failure = report["failure"]
        lines.append(f"THE RUN FAILED in {failure['section']}: {failure['error'].splitlines()[0]}")
    return "\n".join(lines)


def ratio_text(scenarios: dict[str, Any], top: str, bottom: str, name: str) -> str:
    a, b = dig(scenarios, top, name, "c100", "rps"), dig(scenarios, bottom, name, "c100", "rps")
    return f"{a / b:.2f}" if a is not None and b else "-"


def scenario_rows(scenarios: dict[str, Any]) -> list[str]:
    if not scenarios:
        return []
    lines = [
        f"{'scenario':<16} {'ours rps':>9} {'floor rps':>9} {'ours/floor':>10} "
        f"{'ours p50':>8} {'ours p90':>8} {'ours p99':>8} {'floor p50':>9} {'floor p90':>9} "
        f"{'floor p99':>9} {'ours cpu':>8} {'floor cpu':>9} {'cpu ratio':>9} {'errors':>6}",
    ]
    for scenario, result in scenarios.items():
        ours, floor = result.get("ours", {}), result.get("floor", {})
        ours_rps, floor_rps = dig(ours, "c100", "rps"), dig(floor, "c100", "rps")
        ours_cpu = dig(ours, "c100", "cpu_ms_per_request")
        floor_cpu = dig(floor, "c100", "cpu_ms_per_request")
        errors = sum(r.get(c, {}).get("errors", 0) for r in (ours, floor) for c in ("c100", "c10"))
        ours_latency = dig(ours, "c10", "latency_ms") or NAN
        floor_latency = dig(floor, "c10", "latency_ms") or NAN
        lines.append(
            f"{TITLES[scenario]:<16} {_cell(ours_rps, 9, 0)} {_cell(floor_rps, 9, 0)} "
            f"{_cell(ours_rps / floor_rps if ours_rps and floor_rps else None, 10)} "
            f"{ours_latency['p50']:>8.1f} {ours_latency['p90']:>8.1f} "
            f"{ours_latency['p99']:>8.1f} {floor_latency['p50']:>9.1f} "
            f"{floor_latency['p90']:>9.1f} {floor_latency['p99']:>9.1f} "
            f"{_cell(ours_cpu, 8)} {_cell(floor_cpu, 9)} "
            f"{_cell(floor_cpu / ours_cpu if ours_cpu and floor_cpu else None, 9)} {errors:>6}"
        )
    return lines


def reference_rows(reference: dict[str, Any]) -> list[str]:
    """Ours against the FastAPI + SQLModel reference: rps and p99 at 10 and 100 connections."""
    if not reference:
        return []
    lines = [
        "",
        "against the FastAPI + SQLModel reference (tests/perf/reference.py): rps, p99 ms, errors",
        f"{'scenario':<16} {'conns':>5} {'ours rps':>9} {'ref rps':>9} {'ours/ref':>8} "
        f"{'ours p99':>8} {'ref p99':>8} {'ours err':>8} {'ref err':>8}",
    ]
    for scenario, result in reference.items():
        for connections in ("c10", "c100"):
            ours, ref = result["ours"].get(connections), result["reference"].get(connections)
            if not ours or not ref:
                continue
            lines.append(
                f"{TITLES[scenario]:<16} {connections[1:]:>5} {ours['rps']:>9.0f} "
                f"{ref['rps']:>9.0f} {ours['rps'] / ref['rps'] if ref['rps'] else math.inf:>8.2f} "
                f"{ours['latency_ms']['p99']:>8.1f} {ref['latency_ms']['p99']:>8.1f} "
                f"{ours['errors']:>8} {ref['errors']:>8}"
                + (
                    f"  (the reference answered again after {ref['recovered_after_s']} s)"
                    if ref.get("recovered_after_s")
                    else ""
                )
            )
    return lines


def _against(a: float | None, b: float | None, places: int = 0) -> str:
    """a, b and a/b, in three columns."""
    shown = a / b if a is not None and b else None
    return f"{_cell(a, 7, places)} {_cell(b, 7, places)} {_cell(shown, 6)}"


def door_rows(doors: dict[str, Any]) -> list[str]:
    """The MCP door's tool calls and a chat turn against the REST scenario doing the same."""
    if not doors:
        return []
    lines = [
        "",
        "MCP tool calls and a chat turn against REST, on ours: rps at 100 and at 10 connections, "
        "p99 ms at 10, server CPU ms per request at 100 (the fake model's CPU is not counted)",
        f"{'call':<16} {'REST':<7} {'rps@100':>7} {'REST':>7} {'ratio':>6} {'rps@10':>7} "
        f"{'REST':>7} {'ratio':>6} {'p99@10':>7} {'REST':>7} {'ratio':>6} {'cpu':>7} "
        f"{'REST':>7} {'ratio':>6} {'errors':>6}",
    ]
    for door, result in doors.items():
        if door == "rest":
            continue
        rest = doors["rest"].get(result["rest_scenario"], {})
        errors = sum(dig(result, c, "errors") or 0 for c in ("c100", "c10"))
        columns = [
            _against(dig(result, *path), dig(rest, *path), places)
            for path, places in (
                (("c100", "rps"), 0),
                (("c10", "rps"), 0),
                (("c10", "latency_ms", "p99"), 1),
                (("c100", "cpu_ms_per_request"), 2),
            )
        ]
        lines.append(
            f"{TITLES[door]:<16} {result['rest_scenario']:<7} {' '.join(columns)} {errors:>6}"
        )
    return lines


def growth_rows(growth: dict[str, Any]) -> list[str]:
    if not growth:
        return []
    lines = [
        "",
        "list latency (ms) at 10 connections for one user, by task count:",
        f"{'tasks':>8} {'ours p50':>8} {'ours p90':>8} {'ours p99':>8} {'floor p50':>9} "
        f"{'floor p90':>9} {'floor p99':>9}",
    ]
    for result in growth.values():
        ours = dig(result, "ours", "latency_ms") or NAN
        floor = dig(result, "floor", "latency_ms") or NAN
        lines.append(
            f"{result['tasks']:>8,} {ours['p50']:>8.1f} {ours['p90']:>8.1f} {ours['p99']:>8.1f} "
            f"{floor['p50']:>9.1f} {floor['p90']:>9.1f} {floor['p99']:>9.1f}"
        )
    return lines


def observability_rows(observed: dict[str, Any]) -> list[str]:
    if not observed:
        return []
    lines = [
        "",
        "metrics and logging on against off: rps at 100 connections (median of turns), "
        "server CPU ms per request (median)",
        f"{'scenario':<16} {'on rps':>8} {'off rps':>8} {'on/off':>7} "
        f"{'on cpu':>7} {'off cpu':>7} {'off/on cpu':>10}",
    ]
    for scenario, turns in observed.items():
        if not turns["on"] or not turns["off"]:
            continue
        on, off = medians(turns["on"]), medians(turns["off"])
        lines.append(
            f"{TITLES[scenario]:<16} {on['rps']:>8.0f} {off['rps']:>8.0f} "
            f"{on['rps'] / off['rps']:>7.2f} {on['cpu']:>7.2f} {off['cpu']:>7.2f} "
            f"{off['cpu'] / on['cpu']:>10.2f}"
        )
    return lines


def medians(results: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "rps": statistics.median(r["rps"] for r in results),
        "cpu": statistics.median(r["cpu_ms_per_request"] for r in results),
    }
