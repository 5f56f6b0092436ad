"""The API's contract as an OpenAPI 3.1 document, generated from the app's routes at start-up.

Every view declares its operation beside its code (`@operation(...)`: summary, parameters, request
body, responses); `build_document` walks the app's URL map and writes one path item per route, one
operation per method the route answers, taking the path and the methods from the routes themselves.
HEAD and OPTIONS, which Flask answers on every GET route and every route, are derived (HEAD: the
GET's answers without a body; OPTIONS: 204 with Allow). A route whose view declares no operation, or
whose declared path parameters differ from the route's, stops the app with ContractError: there is
no route outside the document, and no second copy of the routes to drift.

The answers every operation can get are added to each: the JSON 400/414/431 of requests gunicorn's
parser rejects (labapi/worker.py) and X-Request-ID on every response. Error answers that are an
operation's designed behaviour (the simulated errors, the database fault, the readiness report) are
marked `x-designed-failure: true`; the contract test (app/tests/test_labapi_contract_server.py) lets
schemathesis accept those 5xx and no other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from labapi.request_id import HEADER as REQUEST_ID_HEADER
from labapi.request_id import MAX_LENGTH as REQUEST_ID_MAX_LENGTH

if TYPE_CHECKING:
    from flask import Flask

OPENAPI_VERSION = "3.1.0"
DESIGNED_FAILURE = "x-designed-failure"  # an error answer the operation gives on purpose
_ATTRIBUTE = "_labapi_operation"
_IMPLICIT = frozenset({"HEAD", "OPTIONS"})  # answered by Flask for every GET route / every route
_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

Spec = dict[str, Any]
View = TypeVar("View", bound=Callable[..., Any])


class ContractError(RuntimeError):
    """The routes and the declared operations disagree."""


def operation(
    summary: str,
    responses: dict[int, Spec],
    *,
    description: str = "",
    parameters: list[Spec] | None = None,
    request_body: Spec | None = None,
    tags: tuple[str, ...] = (),
) -> Callable[[View], View]:
    """Declare the OpenAPI operation a view implements (responses by status code)."""

    spec: Spec = {"summary": summary, "responses": responses, "parameters": parameters or []}
    if description:
        spec["description"] = description
    if request_body is not None:
        spec["requestBody"] = request_body
    if tags:
        spec["tags"] = list(tags)

    def attach(view: View) -> View:
        setattr(view, _ATTRIBUTE, spec)
        return view

    return attach


# ------------------------------------------------------------------------------------------------
# building blocks the views use

ERROR = {"$ref": "#/components/schemas/Error"}


def json_content(schema: Spec) -> Spec:
    return {"application/json": {"schema": schema}}


def answer(description: str, schema: Spec | None = None, *, media_type: str = "application/json") -> Spec:
    """A response with a body of `schema` (none: no body), and X-Request-ID."""
    response: Spec = {"description": description, "headers": {REQUEST_ID_HEADER: _REQUEST_ID_REF}}
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    return response


def error(description: str, *, designed: bool = False, headers: Spec | None = None) -> Spec:
    """A JSON error answer ({"status": "error", ...}); `designed`: the operation's designed behaviour."""
    response = answer(description, ERROR)
    response["headers"].update(headers or {})
    if designed:
        response[DESIGNED_FAILURE] = True
    return response


def query(name: str, description: str, schema: Spec) -> Spec:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def path_parameter(name: str, description: str, schema: Spec) -> Spec:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


_REQUEST_ID_REF = {"$ref": "#/components/headers/X-Request-ID"}
_CONNECTION_CLOSE = {
    "Connection": {"description": "the connection is closed after this answer", "schema": {"const": "close"}}
}

# Answers of gunicorn's HTTP parser (labapi/worker.py), possible on every operation.
_PARSER_ANSWERS: dict[int, Spec] = {
    400: error(
        "Malformed request: a bad request line, method, version, header or chunked framing, rejected by the "
        "server's HTTP parser (Connection: close)",
    ),
    414: error("The request line is longer than 4094 bytes", headers=_CONNECTION_CLOSE),
    431: error("A header field is too large, or there are too many", headers=_CONNECTION_CLOSE),
}

_COMPONENTS: Spec = {
    "schemas": {
        "Error": {
            "type": "object",
            "description": "Every error answer, from every layer: there is no HTML error page.",
            "required": ["status", "error", "message"],
            "additionalProperties": False,
            "properties": {
                "status": {"const": "error"},
                "error": {"type": "string", "description": "the HTTP reason phrase", "minLength": 1},
                "message": {"type": "string", "description": "why", "minLength": 1},
            },
        },
    },
    "headers": {
        REQUEST_ID_HEADER: {
            "description": (
                f"On every response: the request's own {REQUEST_ID_HEADER} when it is 1-{REQUEST_ID_MAX_LENGTH} "
                "characters of A-Z a-z 0-9 . _ : @ / + = -, otherwise a fresh 32-hex-digit id"
            ),
            "required": True,
            "schema": {"type": "string", "pattern": f"^[A-Za-z0-9._:@/+=-]{{1,{REQUEST_ID_MAX_LENGTH}}}$"},
        },
    },
    "parameters": {
        REQUEST_ID_HEADER: {
            "name": REQUEST_ID_HEADER,
            "in": "header",
            "required": False,
            "description": "Any value; a well-formed one is echoed in the response and the log lines, "
            "anything else is replaced by a fresh id",
            "schema": {"type": "string"},
        },
    },
    "responses": {
        "NotFound": error("No route has this path (any path not in this document)"),
        "MethodNotAllowed": error(
            "The path exists, the method does not (any method not listed for a path)",
            headers={
                "Allow": {"description": "the path's methods", "required": True, "schema": {"type": "string"}}
            },
        ),
    },
}

_INFO_DESCRIPTION = """\
The lab's instrumented API (app/labapi). Every answer carries X-Request-ID. Every answer is JSON except
OPTIONS (204, no body), the Prometheus text of GET /metrics and this contract's page GET /docs with its two
static files; every error, on those paths too, is the JSON `Error` body.

Any path not in this document: JSON 404 (`#/components/responses/NotFound`). A method not listed for a path:
JSON 405 with Allow (`#/components/responses/MethodNotAllowed`). An exception the code did not expect: JSON 500
(a defect: no operation lists it unless it is designed, `x-designed-failure`). Requests the server's HTTP
parser rejects before any route: JSON 400, 414 or 431 with Connection: close, listed on every operation.
"""


def _openapi_path(rule: str) -> str:
    return _PARAMETER.sub(r"{\1}", rule)


def _with_common_answers(spec: Spec) -> Spec:
    responses = {str(code): _PARSER_ANSWERS[code] for code in _PARSER_ANSWERS}
    for code, response in spec["responses"].items():
        if code in _PARSER_ANSWERS:  # the operation's own answer with this code; the parser's stays possible
            response = {
                **response,
                "description": f"{response['description']}. Or: {_PARSER_ANSWERS[code]['description']}",
            }
        responses[str(code)] = response
    parameters = [{"$ref": f"#/components/parameters/{REQUEST_ID_HEADER}"}, *spec["parameters"]]
    return {**spec, "parameters": parameters, "responses": dict(sorted(responses.items()))}


def _head_of(get: Spec) -> Spec:
    """HEAD: the GET's answers, headers only."""
    responses = {
        code: {key: value for key, value in response.items() if key != "content"}
        for code, response in get["responses"].items()
    }
    summary = f"Headers of GET: {get['summary'][0].lower()}{get['summary'][1:]}"
    return {**get, "summary": summary, "responses": responses, "operationId": get["operationId"] + "_head"}


def _options(path: str, methods: list[str], tags: list[str]) -> Spec:
    return {
        "summary": "The methods of this path, in Allow",
        "tags": tags,
        "operationId": "options_" + re.sub(r"\W+", "_", path).strip("_"),
        "parameters": [{"$ref": f"#/components/parameters/{REQUEST_ID_HEADER}"}],
        "responses": {
            "204": {
                "description": f"No body, no Content-Type; Allow: {', '.join(methods)}",
                "headers": {
                    REQUEST_ID_HEADER: _REQUEST_ID_REF,
                    "Allow": {"required": True, "schema": {"type": "string"}},
                },
            },
            **{str(code): response for code, response in _PARSER_ANSWERS.items()},
        },
    }


def build_document(app: Flask, *, title: str, version: str) -> Spec:
    """The OpenAPI document of every route of `app`; ContractError when a route has no operation."""
    paths: dict[str, Spec] = {}
    problems: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        spec: Spec | None = getattr(view, _ATTRIBUTE, None)
        methods = sorted(rule.methods or ())
        explicit = [m for m in methods if m not in _IMPLICIT]
        if spec is None:
            problems.append(
                f"{rule.rule} ({', '.join(explicit)}): the view {rule.endpoint} declares no operation"
            )
            continue
        if len(explicit) != 1:
            problems.append(f"{rule.rule}: one operation per view, but it answers {', '.join(explicit)}")
            continue
        declared = {p["name"] for p in spec["parameters"] if p.get("in") == "path"}
        if declared != set(rule.arguments):
            problems.append(
                f"{rule.rule}: path parameters {sorted(rule.arguments)}, the operation declares {sorted(declared)}"
            )
            continue
        path = _openapi_path(rule.rule)
        if path in paths:
            problems.append(f"{path}: more than one route")
            continue
        method = explicit[0].lower()
        # Path parameters belong to the path: every method of it (OPTIONS, HEAD too) shares them.
        shared = [p for p in spec["parameters"] if p.get("in") == "path"]
        own = {**spec, "parameters": [p for p in spec["parameters"] if p.get("in") != "path"]}
        item: Spec = {"parameters": shared} if shared else {}
        item[method] = {**_with_common_answers(own), "operationId": rule.endpoint.replace(".", "_")}
        if "HEAD" in methods:
            item["head"] = _head_of(item[method])
        if "OPTIONS" in methods:
            item["options"] = _options(path, methods, spec.get("tags", []))
        paths[path] = item
    if problems:
        raise ContractError(
            "routes without a matching operation in the contract:\n  " + "\n  ".join(problems)
        )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": _INFO_DESCRIPTION},
        "paths": paths,
        "components": _COMPONENTS,
    }
