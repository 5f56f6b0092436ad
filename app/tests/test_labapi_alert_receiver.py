"""The webhook receiver of Alertmanager: one JSON log line per notification, 200 so Alertmanager counts it sent."""

from __future__ import annotations

import io
import json

from labapi.alert_receiver import create_app
from werkzeug.test import Client

NOTIFICATION = {
    "version": "4",
    "receiver": "page",
    "status": "firing",
    "groupLabels": {"alertname": "ApiAvailabilityFastBurn", "slo": "availability"},
    "externalURL": "http://127.0.0.1:19093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "ApiAvailabilityFastBurn", "severity": "page", "slo": "availability"},
            "annotations": {
                "summary": "flask-api: availability error budget burning fast",
                "runbook_url": "file:///r",
            },
            "startsAt": "2026-11-27T16:00:00Z",
        }
    ],
}


def client() -> tuple[Client, io.StringIO]:
    stream = io.StringIO()
    return Client(create_app(stream=stream, level="INFO")), stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_line_per_notification() -> None:
    c, stream = client()
    for route in ("page", "ticket"):
        resp = c.post(f"/alerts/{route}", json={**NOTIFICATION, "receiver": route})
        assert resp.status_code == 200
    logged = lines(stream)
    assert [entry["route"] for entry in logged] == ["page", "ticket"]
    first = logged[0]
    assert first["event"] == "alert_notification"
    assert first["level"] == "INFO"
    assert first["status"] == "firing"
    assert first["alert_count"] == 1
    assert first["alerts"][0]["alertname"] == "ApiAvailabilityFastBurn"
    assert first["alerts"][0]["severity"] == "page"
    assert "ApiAvailabilityFastBurn" in first["message"]
    assert "timestamp" in first


def test_bad_requests_are_refused_and_not_logged_as_notifications() -> None:
    c, stream = client()
    assert c.post("/alerts/page", data=b"{not json", content_type="application/json").status_code == 400
    assert c.post("/alerts/page", json=[1, 2]).status_code == 400
    assert c.post("/alerts/nowhere", json=NOTIFICATION).status_code == 404
    assert c.get("/alerts/page").status_code == 405
    assert c.get("/health").status_code == 200
    assert all(entry["event"] == "alert_notification_rejected" for entry in lines(stream))
    assert len(lines(stream)) == 2
