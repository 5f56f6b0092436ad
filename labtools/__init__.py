"""Python helpers the lab's tools share, installed (editable) into the controller's virtualenv by requirements/lab.txt.

- labtools.slo_windows: the Google SRE Workbook's burn-rate windows scaled to the SLO window, used by the rules'
  rendering (filter_plugins/slo.py) and by the drills' deadlines (drills/plan.py).
- labtools.appserver: start the API under gunicorn on loopback, as the lab runs it, for the benchmarks and the tests.
"""
