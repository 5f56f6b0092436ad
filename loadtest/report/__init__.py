"""The stress test's verdict and visual report, from the server's own metrics over exactly the run's window.

``python -m loadtest.report --run <dir>/run.json --prometheus-url URL`` (or ``--prometheus-service ns/name:port``)
reads the run's metadata (written by the stress_test role), waits until Prometheus has scraped the API after the
run ended, and writes ``report.json``, ``report.md`` and the self-contained ``report.html`` beside run.json.
``--check`` only checks that Prometheus answers, scrapes the API and has loaded the SLO rules (the preflight).

Modules: ``slo`` (objectives), ``sli`` (SLI queries read from the loaded recording rules), ``figures``
(window figures), ``phases`` (steps and spike phases), ``locust_csv`` (Locust's files), ``verdict``
(the verdict and capacity), ``markdown``, ``panels`` (dashboard panel queries), ``charts`` (matplotlib SVG),
``html`` (the reusable HTML writer), and ``cli`` (this command).
"""
