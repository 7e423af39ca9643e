"""The run's ratios and the issue's targets, computed from the report's figures (never by
hand): ours against the floor, against the reference, the MCP and chat doors against REST,
and 1 against 2 workers. A figure the run did not measure (a partial run, the quick mode's
floor latency) gives no ratio, and its target is neither met nor missed."""

from __future__ import annotations

from typing import Any

# The issue's targets: each ratio, the bound it must keep, and which side of it is good.
THROUGHPUT = 0.75  # ours/floor rps at 100 connections, at least
CPU = 1.35  # ours/floor server CPU per request, at most
P99 = 2.0  # ours/floor p99 at 10 connections, at most
REFERENCE = 1.5  # ours/reference rps at 10 connections, at least


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator/denominator to three places, or None when either is missing or the
    denominator is 0 (nothing to compare with)."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def dig(node: Any, *path: str) -> Any:
    """node[path[0]][path[1]]..., or None where any step is missing."""
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _figure(result: Any, *path: str) -> float | None:
    value = dig(result, *path)
    return float(value) if isinstance(value, int | float) else None


def _rps(result: Any) -> float | None:
    return _figure(result, "rps")


def _cpu(result: Any) -> float | None:
    return _figure(result, "cpu_ms_per_request")


def _p99(result: Any) -> float | None:
    return _figure(result, "latency_ms", "p99")


def _three(ours: Any, other: Any) -> dict[str, float | None]:
    """Throughput and CPU per request at 100 connections, p99 at 10: ours over the other."""
    return {
        "throughput": ratio(_rps(dig(ours, "c100")), _rps(dig(other, "c100"))),
        "cpu_per_request": ratio(_cpu(dig(ours, "c100")), _cpu(dig(other, "c100"))),
        "p99_c10": ratio(_p99(dig(ours, "c10")), _p99(dig(other, "c10"))),
    }


def against_floor(scenarios: dict[str, Any]) -> dict[str, Any]:
    return {name: _three(r.get("ours"), r.get("floor")) for name, r in scenarios.items()}


def against_reference(reference: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "throughput_c10": ratio(_rps(dig(r, "ours", "c10")), _rps(dig(r, "reference", "c10"))),
            "ours_errors_c100": dig(r, "ours", "c100", "errors"),
            "reference_errors_c100": dig(r, "reference", "c100", "errors"),
        }
        for name, r in reference.items()
    }


def scaling(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """rps at 100 connections with 2 workers over with 1, for ours and for the floor."""
    found = {}
    for name in [s for s in two if s in one]:
        ours = ratio(_rps(dig(two, name, "ours", "c100")), _rps(dig(one, name, "ours", "c100")))
        floor = ratio(_rps(dig(two, name, "floor", "c100")), _rps(dig(one, name, "floor", "c100")))
        found[name] = {"ours": ours, "floor": floor, "ours_over_floor": ratio(ours, floor)}
    return found


def against_rest(doors: dict[str, Any]) -> dict[str, Any]:
    """Each door's figures over those of the REST scenario doing the same, on ours; rps at 10
    connections too, where a chat turn takes a fraction of the window (100 concurrent turns
    each take seconds, and a short window ends before many of them do)."""
    found = {}
    for name, r in doors.items():
        if name != "rest":
            rest = doors.get("rest", {}).get(r["rest_scenario"])
            c10 = ratio(_rps(dig(r, "c10")), _rps(dig(rest, "c10")))
            found[name] = {"rest": r["rest_scenario"], **_three(r, rest), "throughput_c10": c10}
    return found


# Each target: the part of the summary it reads, the ratio's key there, its words, and its bound.
TARGETS: tuple[tuple[str, str, str, str, float], ...] = (
    ("floor", "throughput", "ours/floor rps at 100", ">=", THROUGHPUT),
    ("floor", "cpu_per_request", "ours/floor CPU per request", "<=", CPU),
    ("floor", "p99_c10", "ours/floor p99 at 10", "<=", P99),
    ("reference", "throughput_c10", "ours/reference rps at 10", ">=", REFERENCE),
    ("reference", "ours_errors_c100", "our errors at 100 (beside the reference)", "<=", 0),
    ("scaling", "ours_over_floor", "our 1->2 workers scaling over the floor's", ">=", 1.0),
)


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its value and whether it is met (None: not measured)."""
    found: list[dict[str, Any]] = []
    for workers in ("workers1", "workers2"):
        for part, key, words, goal, bound in TARGETS:
            for scenario, ratios in summary.get(workers, {}).get(part, {}).items():
                value = ratios[key]
                met = (
                    None if value is None else (value >= bound if goal == ">=" else value <= bound)
                )
                found.append(
                    {
                        "workers": int(workers[-1]),
                        "scenario": scenario,
                        "ratio": key,
                        "target": f"{scenario}: {words} {goal} {bound}",
                        "value": value,
                        "met": met,
                    }
                )
    return found


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """Every ratio the report's figures give, and the targets, met or missed."""
    summary: dict[str, Any] = {}
    one: dict[str, Any] = summary.setdefault("workers1", {})
    if report.get("scenarios"):
        one["floor"] = against_floor(report["scenarios"])
    if report.get("reference"):
        one["reference"] = against_reference(report["reference"])
    two = report.get("workers2") or {}
    if two:
        part: dict[str, Any] = summary.setdefault("workers2", {})
        if two.get("scenarios"):
            part["floor"] = against_floor(two["scenarios"])
            part["scaling"] = scaling(report.get("scenarios") or {}, two["scenarios"])
        if two.get("reference"):
            part["reference"] = against_reference(two["reference"])
    if report.get("doors"):
        summary["doors"] = against_rest(report["doors"])
    summary["targets"] = targets(summary)
    verdicts = [t["met"] for t in summary["targets"]]
    summary["targets_met"] = verdicts.count(True)
    summary["targets_missed"] = verdicts.count(False)
    summary["targets_unmeasured"] = verdicts.count(None)
    return summary


def summary_rows(summary: dict[str, Any]) -> list[str]:
    """The summary as printed: one row a scenario and worker count, `!` after a ratio that
    misses its target; the doors' ratios; the targets missed, by name."""
    if not summary:
        return []
    verdicts = {(t["workers"], t["scenario"], t["ratio"]): t["met"] for t in summary["targets"]}

    def cell(
        at: tuple[int, str], ratios: dict[str, Any], key: str, width: int, judged: str = ""
    ) -> str:
        """The value, and `!` if the target on `judged` (by default the value's) is missed."""
        value = ratios.get(key)
        if value is None:
            return f" {'-':>{width}} "
        mark = "!" if verdicts.get((*at, judged or key)) is False else " "
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        return f" {shown:>{width}}{mark}"

    lines = [
        "",
        "summary, ours over: the floor (rps at 100 connections, CPU per request, p99 at 10), "
        "the reference (rps at 10; errors at 100); 2 workers over 1 (rps at 100). "
        "! marks a missed target",
        f"{'workers':>7} {'scenario':<16}  {'rps/floor':>9}  {'cpu/floor':>9}  {'p99/floor':>9}  "
        f"{'rps/ref':>7}  {'our err':>7}  {'ref err':>7}  {'ours 2w/1w':>11}  {'floor 2w/1w':>11}",
    ]
    for workers in (1, 2):
        part = summary.get(f"workers{workers}", {})
        floor, reference = part.get("floor", {}), part.get("reference", {})
        scaled = part.get("scaling", {})
        for scenario in [*floor, *(s for s in reference if s not in floor)]:
            f, r, g = floor.get(scenario, {}), reference.get(scenario, {}), scaled.get(scenario, {})
            at = (workers, scenario)
            lines.append(
                f"{workers:>7} {scenario:<16}"
                + cell(at, f, "throughput", 9)
                + cell(at, f, "cpu_per_request", 9)
                + cell(at, f, "p99_c10", 9)
                + cell(at, r, "throughput_c10", 7)
                + cell(at, r, "ours_errors_c100", 7)
                + cell(at, r, "reference_errors_c100", 7)
                + cell(at, g, "ours", 11, judged="ours_over_floor")
                + cell(at, g, "floor", 11)
            )
    for door, ratios in summary.get("doors", {}).items():
        shown = {k: "-" if v is None else f"{v:.2f}" for k, v in ratios.items() if k != "rest"}
        lines.append(
            f"{door}/{ratios['rest']} (ours, over REST): rps {shown['throughput']} at 100, "
            f"{shown['throughput_c10']} at 10; CPU per request {shown['cpu_per_request']}; "
            f"p99 at 10 {shown['p99_c10']}"
        )
    missed = [t for t in summary["targets"] if t["met"] is False]
    lines.append(
        f"targets: {summary['targets_met']} met, {summary['targets_missed']} missed, "
        f"{summary['targets_unmeasured']} not measured"
    )
    for target in missed:
        lines.append(
            f"  missed, {target['workers']} worker(s), {target['target']}: {target['value']}"
        )
    return lines
