"""Run in a subprocess by test_locustfile.py, so Locust's gevent monkey-patching stays out of pytest's process.

``python -m loadtest.tests.locust_probe describe`` prints the task mix and the shape's ticks;
``python -m loadtest.tests.locust_probe run HOST SECONDS`` runs ApiUser with Locust's local runner and prints stats.
Settings come from the LAB_* environment, as for the real locustfile.
"""

from __future__ import annotations

import json
import random
import sys


def describe() -> dict[str, object]:
    import loadtest.locustfile as module

    shape = module.LabShape()
    first = shape.tick()
    shape.start_time -= module.SHAPE.duration + 0.5
    rng = random.Random(1)
    payloads = [module.echo_payload(rng) for _ in range(200)]
    return {
        "tasks": [t.__name__ for t in module.ApiUser.tasks],
        "first_tick": first,
        "tick_after_duration": shape.tick(),
        "payload_kinds": sorted({type(p).__name__ for p in payloads}),
        "payload_sizes": sorted({len(json.dumps(p)) for p in payloads}),
        "distinct_payloads": len({json.dumps(p) for p in payloads}),
    }


def run(host: str, seconds: float) -> dict[str, object]:
    import gevent
    from locust.env import Environment

    import loadtest.locustfile as module

    env = Environment(user_classes=[module.ApiUser], host=host)
    runner = env.create_local_runner()
    runner.start(4, spawn_rate=4)
    gevent.sleep(seconds)
    runner.quit()
    return {
        "entries": {
            f"{method} {name}": {"requests": e.num_requests, "failures": e.num_failures}
            for (name, method), e in env.stats.entries.items()
        },
        "failures": env.stats.total.num_failures,
        "errors": [str(e.error) for e in env.stats.errors.values()],
    }


if __name__ == "__main__":
    if sys.argv[1] == "describe":
        print(json.dumps(describe()))
    else:
        print(json.dumps(run(sys.argv[2], float(sys.argv[3]))))
