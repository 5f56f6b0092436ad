"""One story per capacity step: the server's view, the client's view, the generator, and the verdict.

The SLO verdict of a step follows the SLO's definition: the server-side SLIs the alerts use (Prometheus, the
recording rules' expressions over the step's own measured window). Locust's client-side view of the same window
is reported beside it. When the clients breach while the server holds, the step *held* the SLO and the report
says so in words, with the measured gap (client p99 - server p99: time spent before the app sees a request,
in the listen backlog and the accept loop, which the server-side SLI cannot measure). Two capacity figures
follow: by the SLO as defined, and by what the clients saw.

Pure functions over plain dicts: ``step_record`` builds one report.json step from the server figures
(``figures.window_figures``) and Locust's step (steps.json); ``capacity_summary`` reads those records only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loadtest.report.slo import Slo

# A step is generator-limited when Locust sent fewer than this share of the requests its users would send at
# the latency they saw (users x seconds / mean latency: users with no think time keep one request in flight).
OFFERED_SHARE = 0.8
# Throughput has stopped growing with users once a step reaches this share of the best step's throughput.
SATURATION_SHARE = 0.95


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _breaches(side: str, slo: Slo, error_ratio: float | None, under: float | None) -> list[dict[str, str]]:
    """The SLIs that missed their objective, each as {"side", "sli", "detail"}."""
    found = []
    if error_ratio is not None and error_ratio > 1 - slo.availability_objective:
        found.append(
            {
                "side": side,
                "sli": "availability",
                "detail": f"{error_ratio:.3%} of requests failed (budget {1 - slo.availability_objective:.3%})",
            }
        )
    if under is not None and under < slo.latency_objective:
        found.append(
            {
                "side": side,
                "sli": "latency",
                "detail": f"{under:.3%} within {slo.latency_threshold:g} s (objective {slo.latency_objective:.3%})",
            }
        )
    return found


def _generator_limit(
    users: int, seconds: float, client: dict[str, Any], cpu_percent: float | None, cpu_limit: float
) -> str | None:
    """Why the generator, not the server, may have set this step's throughput (None when it kept up)."""
    if cpu_percent is not None and cpu_percent >= cpu_limit:
        return f"Locust used {cpu_percent:.0f}% of a core (limit {cpu_limit:g}%)"
    mean = client.get("mean_seconds")
    requests = client.get("requests")
    if mean and requests is not None and seconds > 0 and users > 0:
        offered = users * seconds / mean
        if requests < OFFERED_SHARE * offered:
            return (
                f"Locust sent {requests:,.0f} requests; its {users} users at a mean latency of {mean * 1000:.1f} ms "
                f"would send {offered:,.0f}"
            )
    return None


def step_record(
    number: int,
    phase: dict[str, Any],
    server: dict[str, Any],
    slo: Slo,
    cpu_limit: float,
) -> dict[str, Any]:
    """One step of report.json: users, duration, requests, both views, CPU, verdict and reason.

    ``phase``: the step from steps.json as ``phases.capacity_steps`` gives it ("generator" = Locust's record);
    ``server``: ``figures.window_figures`` over the same window.
    """
    gen = phase.get("generator", {})
    seconds = float(phase["to"]) - float(phase["from"])
    users = int(phase["users"])
    server_view = {
        "requests": server.get("requests"),
        "throughput_rps": server.get("throughput_rps"),
        "error_ratio": server.get("error_ratio"),
        "under_threshold_ratio": server.get("latency_under_threshold_ratio"),
        "p50_seconds": server.get("latency_p50_seconds"),
        "p95_seconds": server.get("latency_p95_seconds"),
        "p99_seconds": server.get("latency_p99_seconds"),
    }
    p99_ms, mean_ms = gen.get("p99_ms"), gen.get("mean_ms")
    client_view = {
        "requests": gen.get("requests"),
        "failures": gen.get("failures"),
        "throughput_rps": gen.get("throughput_rps"),
        "error_ratio": gen.get("failure_ratio"),
        "under_threshold_ratio": gen.get("under_threshold_ratio"),
        "p99_seconds": None if p99_ms is None else p99_ms / 1000,
        "mean_seconds": None if mean_ms is None else mean_ms / 1000,
    }
    has_server = bool(server_view["requests"]) and server_view["error_ratio"] is not None
    server_breaches = _breaches(
        "server", slo, server_view["error_ratio"], server_view["under_threshold_ratio"]
    )
    client_breaches = _breaches(
        "client", slo, client_view["error_ratio"], client_view["under_threshold_ratio"]
    )
    cpu = gen.get("cpu") or {}
    # The server's CPU: its processes as the generator sampled them (local platform), else cAdvisor's figure for the
    # API's containers (Kubernetes: the generator runs in a pod and cannot see the server).
    server_cpu = cpu.get("server_cpu_percent")
    server_cpu_source: str | None = "processes"
    if server_cpu is None:
        server_cpu = server.get("server_cpu_cadvisor_percent")
        server_cpu_source = "cadvisor" if server_cpu is not None else None
    generator_cpu = gen.get("generator_cpu_percent")
    limited = _generator_limit(users, seconds, client_view, generator_cpu, cpu_limit)
    gap = (
        client_view["p99_seconds"] - server_view["p99_seconds"]
        if client_view["p99_seconds"] is not None and server_view["p99_seconds"] is not None
        else None
    )
    if not has_server:
        verdict = "no_data"
        reason = "Prometheus holds no API requests for this step's window: no SLO verdict"
    elif server_breaches:
        verdict = "broke"
        reason = "; ".join(f"{b['sli']} (server side): {b['detail']}" for b in server_breaches)
    else:
        verdict = "held"
        reason = (
            f"both SLOs held on the server side ({_pct(server_view['under_threshold_ratio'])} within "
            f"{slo.latency_threshold:g} s, {_pct(server_view['error_ratio'])} 5xx)"
        )
    if client_breaches and verdict == "held":
        reason += (
            "; the clients breached ("
            + "; ".join(f"{b['sli']} (client side): {b['detail']}" for b in client_breaches)
            + f"): client p99 {_ms(client_view['p99_seconds'])} vs server p99 {_ms(server_view['p99_seconds'])}, "
            f"a gap of {_ms(gap)} spent before the app saw the requests (listen backlog, accept loop)"
        )
    if limited:
        reason += f"; generator-limited: {limited}"
    return {
        "step": number,
        "label": phase["phase"],
        "users": users,
        "kind": gen.get("kind", "search"),
        "users_running": gen.get("users_running"),
        "from": float(phase["from"]),
        "to": float(phase["to"]),
        "duration_seconds": seconds,
        "warmup_seconds": gen.get("warmup_seconds", 0.0),
        "requests": server_view["requests"],
        "server": {**server_view, "meets_slo": None if not has_server else not server_breaches},
        "client": {**client_view, "meets_slo": not client_breaches if client_view["requests"] else None},
        "p99_gap_seconds": gap,
        "generator_cpu_percent": generator_cpu,
        "generator_total_cpu_percent": cpu.get("generator_total_cpu_percent"),
        "server_cpu_percent": server_cpu,
        "server_cpu_source": server_cpu_source,
        "others_cpu_percent": cpu.get("others_cpu_percent"),
        "machine_cpu_percent": cpu.get("machine_cpu_percent"),
        "cores": cpu.get("cores"),
        "load1": cpu.get("load1"),
        "generator_limited": limited is not None,
        "breaches": server_breaches + client_breaches,
        "verdict": verdict,
        "reason": reason,
    }


def _broke(step: dict[str, Any], side: str) -> bool:
    """Whether this view calls the step broken (the clients' view also breaks where the server did)."""
    if side == "server":
        return bool(step["verdict"] == "broke")
    return step["client"]["meets_slo"] is False or step["verdict"] == "broke"


def _figure(steps: Sequence[dict[str, Any]], side: str, stopped: dict[str, Any] | None) -> dict[str, Any]:
    """Capacity by one view: below the fewest users that broke it, the number of users with the best mean
    throughput among those measured at least twice (else among all), with the spread of its measurements (the
    search repeats the best level after refining the break)."""
    broken = [s for s in steps if _broke(s, side)]
    first_broken = min(broken, key=lambda s: (s["users"], s["step"]), default=None)
    limit = first_broken["users"] if first_broken else None
    held = [
        s
        for s in steps
        if not _broke(s, side)
        and s["verdict"] != "no_data"
        and s[side]["throughput_rps"] is not None
        and (limit is None or s["users"] < limit)
    ]
    # The number of users with the best mean throughput over its measurements (the search repeats one level).
    levels: dict[int, list[float]] = {}
    for s in held:
        levels.setdefault(s["users"], []).append(s[side]["throughput_rps"])
    # Levels measured at least twice first: a figure needs its spread. On a saturated plateau a level measured once
    # can beat the repeated one's mean by noise alone (the search repeats the best single step; its second
    # measurement is usually lower); it is the figure only when no level was measured twice.
    pool = {u: v for u, v in levels.items() if len(v) >= 2} or levels
    best_users = max(pool, key=lambda u: sum(pool[u]) / len(pool[u]), default=None)
    best = next((s for s in held if s["users"] == best_users), None)
    measured = levels.get(best_users, []) if best_users is not None else []
    at_least = []
    if first_broken is None:
        why = (stopped or {}).get("reason", "end of the run")
        at_least.append(f"the search stopped ({why}) before this view broke")
    if best and any(s["generator_limited"] for s in held if s["users"] == best["users"]):
        at_least.append(f"the generator limited {best['label']}")
    breaches = [b for b in (first_broken or {}).get("breaches", []) if b["side"] == side] or [
        b for b in (first_broken or {}).get("breaches", [])
    ]
    mean = sum(measured) / len(measured) if measured else None
    return {
        "rps": mean,
        "users": best["users"] if best else None,
        "step": best["label"] if best else None,
        "spread": {
            "measurements": len(measured),
            "min_rps": min(measured) if measured else None,
            "max_rps": max(measured) if measured else None,
            "relative": (max(measured) - min(measured)) / mean if mean else None,
        },
        "at_least": bool(at_least) and best is not None,
        "at_least_because": at_least,
        "broke_at": first_broken["label"] if first_broken else None,
        "broke_by": [f"{b['sli']} ({b['side']} side)" for b in breaches],
    }


def saturation(steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Where server throughput stops growing with users: the fewest users whose mean throughput (over the steps run
    at that number of users) is within SATURATION_SHARE of the best level's."""
    levels: dict[int, list[float]] = {}
    for s in steps:
        if s["server"]["throughput_rps"]:
            levels.setdefault(s["users"], []).append(s["server"]["throughput_rps"])
    if len(levels) < 2:
        return {
            "reached": False,
            "rps": None,
            "users": None,
            "step": None,
            "why": "fewer than two numbers of users",
        }
    means = {users: sum(v) / len(v) for users, v in sorted(levels.items())}
    peak = max(means.values())
    users = next(u for u, rps in means.items() if rps >= SATURATION_SHARE * peak)
    label = next(s["label"] for s in steps if s["users"] == users)
    if users == max(means):
        return {
            "reached": False,
            "rps": peak,
            "users": None,
            "step": None,
            "why": "throughput still grew at the last step",
        }
    return {
        "reached": True,
        "rps": peak,
        "users": users,
        "step": label,
        "why": (
            f"from {users} users on, more users added no throughput (within {1 - SATURATION_SHARE:.0%} "
            f"of {peak:,.1f} requests/s): they only queued"
        ),
    }


def _spread(figure: dict[str, Any]) -> str:
    spread = figure["spread"]
    if spread["measurements"] < 2:
        return "; one measurement"
    return (
        f"; {spread['measurements']} measurements, {spread['min_rps']:,.1f}-{spread['max_rps']:,.1f} requests/s, "
        f"spread {spread['relative']:.1%}"
    )


def physical_limit(wrk: dict[str, Any] | None, sat: dict[str, Any]) -> dict[str, Any] | None:
    """wrk's requests/s on the same /api/ mix, and saturation throughput / that maximum."""
    if not wrk:
        return None
    if "error" in wrk:
        return {"wrk_rps": None, "ratio": None, "error": wrk["error"]}
    rps = wrk.get("requests_per_second")
    return {
        "wrk_rps": rps,
        "ratio": sat["rps"] / rps if rps and sat.get("rps") else None,
        # the saturation throughput, or the best step's while throughput still grew
        "ratio_of": "saturation" if sat.get("reached") else "best step (saturation not reached)",
        "connections": wrk.get("connections"),
        "seconds": wrk.get("seconds"),
        "non_2xx": wrk.get("non_2xx"),
        "mix": wrk.get("mix"),
    }


def capacity_summary(
    steps: Sequence[dict[str, Any]], stopped: dict[str, Any] | None, wrk: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Both capacity figures, saturation, the client-server gap, the physical limit and the story, from the steps."""
    # Where each view broke: at the fewest users it broke (the search may have refined below its first break).
    slo_broken = min(
        (s for s in steps if _broke(s, "server")), key=lambda s: (s["users"], s["step"]), default=None
    )
    client_broken = min(
        (s for s in steps if _broke(s, "client")), key=lambda s: (s["users"], s["step"]), default=None
    )
    by_slo = _figure(steps, "server", stopped)
    by_client = _figure(steps, "client", stopped)
    gap_step = client_broken or (steps[-1] if steps else None)
    gap = (
        {
            "step": gap_step["label"],
            "client_p99_seconds": gap_step["client"]["p99_seconds"],
            "server_p99_seconds": gap_step["server"]["p99_seconds"],
            "p99_gap_seconds": gap_step["p99_gap_seconds"],
        }
        if gap_step
        else None
    )
    sat = saturation(steps)
    limited = [s["label"] for s in steps if s["generator_limited"]]
    story = []
    if by_slo["rps"] is None:
        story.append("No step held the SLO (server-side SLIs, the ones the alerts use).")
    else:
        story.append(
            f"Capacity by the SLO (server-side SLIs, the ones the alerts use): "
            f"{'at least ' if by_slo['at_least'] else ''}{by_slo['rps']:,.1f} requests/s ({by_slo['step']}"
            f"{_spread(by_slo)})."
        )
    if slo_broken:
        story.append(f"The SLO broke at {slo_broken['label']}: {slo_broken['reason']}.")
    if by_client["rps"] is not None:
        story.append(
            f"Capacity by what the clients saw (Locust): {'at least ' if by_client['at_least'] else ''}"
            f"{by_client['rps']:,.1f} requests/s ({by_client['step']}{_spread(by_client)})."
        )
    if client_broken and client_broken["verdict"] == "held":
        story.append(
            f"At {client_broken['label']} the clients breached while the server held its SLOs: the requests "
            f"waited {_ms(gap['p99_gap_seconds'] if gap else None)} (client p99 - server p99) before the app saw "
            "them (listen backlog, accept loop), which the server-side SLI cannot measure. This is a client-side "
            "breach, not a server-side one."
        )
    if sat["reached"]:
        story.append(
            f"Saturation: {sat['rps']:,.1f} requests/s, reached at {sat['users']} users ({sat['step']}); {sat['why']}."
        )
    else:
        story.append(f"Saturation not reached: {sat['why']}.")
    if limited:
        story.append(f"Generator-limited steps (the figures are lower bounds there): {', '.join(limited)}.")
    physical = physical_limit(wrk, sat)
    if physical and physical["wrk_rps"]:
        ratio = physical["ratio"]
        story.append(
            f"wrk on the same /api/ mix ({physical['connections']} connections, {physical['seconds']} s, before the "
            f"search): {physical['wrk_rps']:,.1f} requests/s"
            + (f"; {physical['ratio_of']} / wrk = {ratio:.0%}." if ratio is not None else ".")
        )
    elif physical:
        story.append(f"No physical-limit ratio: {physical['error']}.")
    return {
        "slo": by_slo,
        "client": by_client,
        "saturation": sat,
        "gap": gap,
        "generator_limited_steps": limited,
        "physical": physical,
        "stopped": stopped,
        "story": story,
    }
