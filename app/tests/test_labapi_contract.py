"""The contract (labapi.contract, GET /openapi.json) in-process: generated from the routes, complete, and a route
without an operation stops the app. Its conformance to what the server answers is checked by schemathesis against
real gunicorn (test_labapi_contract_server.py)."""

from __future__ import annotations

import json
import re
from urllib.parse import urljoin

import pytest
from flask import jsonify
from labapi.contract import ContractError, build_document, operation, path_parameter
from labapi.routes.docs import PAGE

IMPLICIT = {"HEAD", "OPTIONS"}


def served_document(lab) -> dict:
    response = lab.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["X-Request-ID"]
    return json.loads(response.data)


def test_the_document_has_every_route_and_method_of_the_app(lab):
    document = served_document(lab)
    assert document["openapi"] == "3.1.0"
    routes = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in lab.app.url_map.iter_rules()
        for method in rule.methods or ()
    }
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented == routes
    assert {path for path, _ in routes} >= {
        "/api/users",
        "/api/echo",
        "/api/error",
        "/health/liveness",
        "/health/readiness",
        "/metrics",
        "/openapi.json",
        "/docs",
    }


def test_every_operation_lists_x_request_id_and_the_parser_answers(lab):
    for path, item in served_document(lab)["paths"].items():
        for method, spec in item.items():
            if method == "parameters":
                continue
            assert {"400", "414", "431"} <= set(spec["responses"]), (method, path)
            for code, response in spec["responses"].items():
                assert "X-Request-ID" in response["headers"], (method, path, code)
            assert {"$ref": "#/components/parameters/X-Request-ID"} in spec["parameters"]
    assert (
        lab.client.get("/openapi.json").data == lab.client.get("/openapi.json").data
    )  # built once, served as is


def test_a_route_without_an_operation_stops_the_app(lab):
    @lab.app.get("/api/new")
    def new_route():
        return jsonify({})

    with pytest.raises(ContractError, match=r"/api/new \(GET\): the view new_route declares no operation"):
        build_document(lab.app, title="t", version="1")


def test_an_operation_whose_path_parameters_differ_from_the_route_stops_the_app(lab):
    @lab.app.get("/api/items/<int:item>")
    @operation("An item", {}, parameters=[path_parameter("id", "the item", {"type": "integer"})])
    def item_route(item: int):
        return jsonify({"item": item})

    with pytest.raises(
        ContractError,
        match=r"/api/items/<int:item>: path parameters \['item'\], the operation declares \['id'\]",
    ):
        build_document(lab.app, title="t", version="1")


def test_path_parameters_go_to_the_path_and_the_path_is_openapi_style(lab):
    @lab.app.get("/api/items/<int:item>")
    @operation("An item", {}, parameters=[path_parameter("item", "the item", {"type": "integer"})])
    def item_route(item: int):
        return jsonify({"item": item})

    item = build_document(lab.app, title="t", version="1")["paths"]["/api/items/{item}"]
    assert item["parameters"] == [path_parameter("item", "the item", {"type": "integer"})]
    assert set(item) == {"parameters", "get", "head", "options"}
    assert all(p.get("in") != "path" for p in item["get"]["parameters"])


def test_head_and_options_are_derived(lab):
    paths = served_document(lab)["paths"]
    users = paths["/api/users"]
    assert set(users["head"]["responses"]) == set(users["get"]["responses"])
    assert all("content" not in response for response in users["head"]["responses"].values())
    assert "content" in users["get"]["responses"]["200"]
    assert set(paths["/api/echo"]) == {"post", "options"}
    allow = lab.client.options("/api/echo").headers["Allow"]
    assert "Allow: OPTIONS, POST" in paths["/api/echo"]["options"]["responses"]["204"]["description"]
    assert set(allow.replace(" ", "").split(",")) == {"OPTIONS", "POST"}


def test_the_docs_page_loads_only_documented_files_of_this_server(lab):
    paths = served_document(lab)["paths"]
    page = lab.client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert page.headers["X-Request-ID"]
    references = re.findall(r'(?:href|src|url)[=:] ?"([^"]+)"', PAGE)
    local = [
        urljoin("http://x/docs", ref).removeprefix("http://x")
        for ref in references
        if not ref.startswith("data:")
    ]
    assert sorted(local) == ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/openapi.json"]
    for path in local:
        assert path in paths
        answer = lab.client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["X-Request-ID"], path
        assert len(answer.data) > 1000, path
    missing = lab.client.get("/docs/other.js")
    assert missing.status_code == 404
    assert missing.json["status"] == "error"
