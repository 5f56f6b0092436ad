"""``python -m drills <plan|check|watch|report>``: the steps of roles/drill that talk to Prometheus/Alertmanager.

- check:    Prometheus and Alertmanager answer, Prometheus scrapes the API, no page is firing already, and how much
            data Prometheus holds (slo:period_covered:seconds)
- plan:     validate lab_drills, pick the drill for the platform, derive its deadlines from the rules and the data
            Prometheus holds; a drill that cannot succeed yet stops here, saying when it can run (plan.json)
- watch:    poll both until the expected alerts fire (phase fire) or resolve (phase resolve), bounded by --until;
            each look goes to watch-<phase>.status.json, the result to watch-<phase>.json
- progress: wait up to --interval seconds (less when the watch ends), then print one line: where the watch stands
- report:   read the ALERTS samples for the drill's window and the alert receiver's log, judge, write report.json
            and report.md
Exit status 2 = bad input (message on stderr), 3 = not yet (the lab is too young for this drill), 1 = a source
cannot be reached; the verdict is in report.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drills.plan import NotYet, PlanError, Rules, plan, seconds, span
from drills.report import markdown, summary
from drills.sources import Alerts, Receiver, SourceError, fetcher, notifications
from drills.timeline import Times, first_notification, judge
from drills.watch import progress_line, snapshot, watch
from loadtest.prom import PrometheusError


def _sources(args: argparse.Namespace) -> Alerts:
    prom_fetch, prom_where = fetcher(
        args.prometheus_url, args.prometheus_service, args.kubeconfig, args.context, "Prometheus"
    )
    am_fetch, am_where = fetcher(
        args.alertmanager_url, args.alertmanager_service, args.kubeconfig, args.context, "Alertmanager"
    )
    return Alerts(prom_fetch, prom_where, am_fetch, am_where, args.app)


def _json_arg(value: str) -> Any:
    return json.loads(Path(value[1:]).read_text() if value.startswith("@") else value)


def cmd_plan(args: argparse.Namespace) -> int:
    slo = _json_arg(args.slo)
    rules = Rules(
        slo=slo,
        scrape_s=seconds(args.scrape_interval, "the scrape interval"),
        eval_s=seconds(args.evaluation_interval, "the evaluation interval"),
        not_ready_window_s=seconds(args.not_ready_window, "lab_not_ready_window"),
    )
    drill = plan(
        _json_arg(args.drills),
        args.name,
        args.platform,
        rules,
        args.runbook_base,
        args.max_seconds,
        covered_s=args.covered_seconds,
        warmup_s=args.warmup_seconds,
    )
    out = drill.as_dict() | {
        "deadline_basis": (
            f"lab_slo window {slo['window']}, scrape {rules.scrape_s}s, evaluation {rules.eval_s}s, "
            f"ApiNotReady window {rules.not_ready_window_s}s"
            + (f", bad_share {drill.bad_share:g}" if drill.bad_share is not None else "")
        ),
        "evaluation_seconds": rules.eval_s,
        "lag_seconds": rules.lag_s(),
        "takes": (
            f"at most {span(drill.takes_at_most_s())}: {drill.warmup_s}s of warm-up, up to {drill.deadline_s}s to "
            f"detect, up to {drill.resolve_deadline_s}s to resolve (plus switching the fault on and off)"
        ),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


def _unreachable(err: Exception, what: str, where: str) -> SourceError:
    """The lab is down (nothing answers): one line saying so and what to run; any other error as it is."""
    text = str(err)
    if "cannot be reached" in text:
        return SourceError(
            f"{what} is not reachable at {where}: is the lab up? Run `make lab` (playbooks/site.yml, with the same "
            "settings as this drill), then the drill again."
        )
    return SourceError(text)


def cmd_check(args: argparse.Namespace) -> int:
    alerts = _sources(args)
    prom = alerts.prom
    selector = f'app="{args.app}",namespace="{args.namespace}"'
    try:
        prom.check()
        # A lab just brought up: Prometheus answers before its first scrape of the API; give it a few scrapes.
        stop = time.time() + args.wait_seconds
        while not (up := prom.query(f"up{{{selector}}} == 1", time.time())) and time.time() < stop:
            time.sleep(2)
        # The figure of the last evaluation, brought to now (it is up to an evaluation interval old).
        covered = prom.scalar(
            f"min(slo:period_covered:seconds{{{selector}}} + (time() - timestamp(slo:period_covered:seconds{{{selector}}})))",
            time.time(),
        )
    except PrometheusError as err:
        raise _unreachable(err, "Prometheus", prom.where) from None
    if not up:
        raise SourceError(
            f"Prometheus ({prom.where}) does not scrape the API (no up{{{selector}}} == 1 after "
            f"{args.wait_seconds:.0f}s): is the API up? Run `make lab`."
        )
    obs = snapshot(alerts, time.time())
    if "errors" in obs:
        raise _unreachable(SourceError("; ".join(obs["errors"])), "Alertmanager", alerts.am_where)
    pages = sorted(
        {a["alertname"] for a in obs["prometheus"] if a["severity"] == "page" and a["state"] == "firing"}
    )
    if pages and not args.allow_firing_pages:
        print(
            f"A page is already firing ({', '.join(pages)}): the drill could not tell what it caused. Resolve it "
            "first: restore the baseline faults (make faults) and wait until it resolves.",
            file=sys.stderr,
        )
        return 2
    # No series yet (Prometheus has not evaluated the SLO rules): it holds no usable data.
    print(json.dumps(obs | {"covered_seconds": covered or 0.0}))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    alerts = _sources(args)
    expected = [a for a in args.expected.split(",") if a]
    until: float | Callable[[], float] = args.until
    if args.effective_file:
        # Started before the fault: the deadline counts from the fault in effect, once the role writes it.
        def until() -> float:
            try:
                return float(args.effective_file.read_text()) + float(args.deadline_seconds)
            except (OSError, ValueError):
                return float(args.until)

    status = args.dir / f"watch-{args.phase}.status.json"

    def on_look(look: dict[str, Any]) -> None:
        tmp = status.with_suffix(".tmp")
        tmp.write_text(json.dumps(look) + "\n")
        tmp.replace(status)

    receiver = Receiver(args.receiver_log, args.receiver_pods, args.kubeconfig, args.receiver_context)
    since = time.time()  # started just before the fault: a notification of this drill comes after it

    def notified() -> set[str]:
        lines = notifications(receiver.lines())
        return {a for a in expected if first_notification(lines, a, since) is not None}

    seen = watch(
        alerts,
        args.phase,
        expected,
        until,
        args.interval,
        on_change=lambda line: print(line, flush=True),
        on_look=on_look,
        notified=notified if (args.receiver_log or args.receiver_pods) else None,
        notify_grace=args.notify_grace,
    )
    out = args.dir / f"watch-{args.phase}.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(seen) + "\n")
    tmp.replace(out)
    return 0


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cmd_progress(args: argparse.Namespace) -> int:
    """Wait up to --interval seconds for the watch of --phase to end, then print one line about it."""
    result = args.dir / f"watch-{args.phase}.json"
    status_file = args.dir / f"watch-{args.phase}.status.json"
    stop = time.time() + args.interval
    while time.time() < stop and not result.exists():
        time.sleep(min(0.5, max(0.0, stop - time.time())))
    status = _read_json(status_file)
    now = time.time()
    finished = result.exists()
    zero = _read_json(args.dir / args.zero_file) if args.zero_file else None
    if not finished and status is not None and now > float(status["until"]) + args.grace:
        # The watch should have ended long ago: it died (its own output says why; the play reads it next).
        print(f"done: the {args.phase} watch stopped answering (last look {now - status['t']:.0f}s ago)")
        return 0
    if not finished and status is None and args.give_up and now > args.give_up:
        print(f"done: the {args.phase} watch never looked at the alerts")
        return 0
    print(progress_line(status, now, finished, float(zero) if zero is not None else None))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    alerts = _sources(args)
    drill = json.loads((args.dir / "plan.json").read_text())
    run = json.loads((args.dir / "times.json").read_text())
    times = Times(**run["times"])
    observations: list[dict[str, Any]] = []
    for phase in ("fire", "resolve"):
        path = args.dir / f"watch-{phase}.json"
        if path.exists():
            observations += json.loads(path.read_text())
    eval_s = float(drill["evaluation_seconds"])
    samples = alerts.alert_samples(times.started - 2 * eval_s, times.ended)
    receiver = Receiver(args.receiver_log, args.receiver_pods, args.kubeconfig, args.receiver_context)
    receiver_error = None
    try:
        notes = [n for n in notifications(receiver.lines()) if n["t"] >= times.fault_requested]
    except SourceError as err:
        notes, receiver_error = [], str(err)
    verdict = judge(drill, samples, observations, times, eval_s, None if receiver_error else notes)
    if receiver_error:
        verdict["notes"].append(receiver_error)
    report = {
        "drill": drill,
        "platform": run["platform"],
        "prometheus": alerts.prom_where,
        "alertmanager": alerts.am_where,
        "fault_document": run["fault_document"],
        "baseline_document": run["baseline_document"],
        "deadline_basis": drill["deadline_basis"],
        "times": times.as_dict(),
        "alert_samples": samples,
        "receiver": receiver.where,
        "receiver_notifications": notes,
        **verdict,
    }
    (args.dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.dir / "report.md").write_text(markdown(report))
    print("\n".join(summary(report)))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m drills", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--drills", required=True, help="lab_drills as JSON (or @file)")
    p.add_argument("--name", required=True)
    p.add_argument("--platform", required=True)
    p.add_argument("--slo", required=True, help="lab_slo as JSON (or @file)")
    p.add_argument("--scrape-interval", required=True)
    p.add_argument("--evaluation-interval", required=True)
    p.add_argument("--not-ready-window", required=True)
    p.add_argument("--runbook-base", required=True)
    p.add_argument("--max-seconds", type=int, required=True)
    p.add_argument(
        "--covered-seconds",
        type=float,
        help="how much data Prometheus holds now (python -m drills check); without it the lab is taken as old",
    )
    p.add_argument("--warmup-seconds", type=int, default=0, help="seconds of load before the fault")
    p.add_argument("--out", type=Path)
    p.set_defaults(func=cmd_plan)
    for name, func in (("check", cmd_check), ("watch", cmd_watch), ("report", cmd_report)):
        s = sub.add_parser(name)
        s.add_argument("--prometheus-url", default="")
        s.add_argument("--prometheus-service", default="", help="namespace/name:port through the API server")
        s.add_argument("--alertmanager-url", default="")
        s.add_argument(
            "--alertmanager-service", default="", help="namespace/name:port through the API server"
        )
        s.add_argument("--kubeconfig", default="")
        s.add_argument("--context", default="")
        s.add_argument("--app", required=True)
        s.set_defaults(func=func)
        if name == "check":
            s.add_argument("--namespace", required=True)
            s.add_argument("--allow-firing-pages", action="store_true")
            s.add_argument(
                "--wait-seconds",
                type=float,
                default=0.0,
                help="how long to wait for the first scrape of the API",
            )
        if name in ("watch", "report"):
            s.add_argument("--dir", type=Path, required=True)
        if name == "watch":
            s.add_argument("--phase", choices=("fire", "resolve"), required=True)
            s.add_argument("--expected", default="", help="comma-separated alert names")
            s.add_argument("--until", type=float, required=True, help="epoch seconds: stop watching then")
            s.add_argument(
                "--effective-file", type=Path, help="file the role writes the fault's in-effect time to"
            )
            s.add_argument(
                "--deadline-seconds", type=float, default=0.0, help="with --effective-file: until = it + this"
            )
            s.add_argument("--interval", type=float, default=1.0)
            s.add_argument(
                "--notify-grace",
                type=float,
                default=0.0,
                help="seconds after the deadline to wait for the receiver's notification (Alertmanager's grouping)",
            )
        if name in ("watch", "report"):
            s.add_argument("--receiver-log", default="", help="the alert receiver's log file (local)")
            s.add_argument(
                "--receiver-pods", default="", help="namespace/app-label of the receiver's pods (Kubernetes)"
            )
            s.add_argument(
                "--receiver-context", default="", help="kubeconfig context for the receiver's pods"
            )
    g = sub.add_parser("progress")
    g.add_argument("--dir", type=Path, required=True)
    g.add_argument("--phase", choices=("fire", "resolve"), required=True)
    g.add_argument("--interval", type=float, default=15.0)
    g.add_argument("--zero-file", default="", help="file in --dir holding the moment the phase counts from")
    g.add_argument("--grace", type=float, default=120.0, help="seconds past the watch's bound to wait for it")
    g.add_argument("--give-up", type=float, default=0.0, help="epoch seconds: stop if the watch never looked")
    g.set_defaults(func=cmd_progress)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NotYet as err:
        print(f"drill: {err}", file=sys.stderr)
        return 3
    except (PlanError, json.JSONDecodeError) as err:
        print(f"drill: {err}", file=sys.stderr)
        return 2
    except SourceError as err:
        print(f"drill: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
