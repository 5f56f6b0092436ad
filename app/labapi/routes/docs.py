"""GET /openapi.json (the contract, labapi.contract) and GET /docs (Swagger UI rendering it).

Swagger UI's files come from the pinned flask-swagger-ui wheel (app/requirements.txt; Swagger UI's dist files,
Apache-2.0, with their LICENSE, in the package's `dist` folder): no network at run time, in the image or on the
host. Only its stylesheet and bundle are served, as /docs/swagger-ui.css and /docs/swagger-ui-bundle.js; the page
is ours (no external fetches: the validator badge, which calls an outside service, is off). /docs and its two files
are the only answers that are not JSON besides OPTIONS and the /metrics text; their errors are JSON like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, current_app, send_file

from labapi import extensions as ext
from labapi.contract import answer, operation

bp = Blueprint("docs", __name__)

SWAGGER_UI = Path(str(files("flask_swagger_ui") / "dist"))  # a folder of the installed package
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}

# Relative URLs: the page works behind a path prefix too (docs/... and openapi.json resolve from /docs).
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>labapi: the API contract</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true});
</script>
</body>
</html>
"""


@bp.get("/openapi.json")
@operation(
    "This contract (OpenAPI 3.1)",
    {
        200: answer(
            "The OpenAPI document of every route",
            {
                "type": "object",
                "required": ["openapi", "info", "paths"],
                "properties": {"openapi": {"const": "3.1.0"}},
            },
        )
    },
    tags=("contract",),
)
def openapi_document() -> Response:
    return Response(current_app.extensions[ext.CONTRACT], mimetype="application/json")


@bp.get("/docs")
@operation(
    "This contract as a page (Swagger UI)",
    {
        200: answer(
            "The page; it loads docs/swagger-ui.css, docs/swagger-ui-bundle.js and openapi.json",
            {"type": "string"},
            media_type="text/html",
        )
    },
    tags=("contract",),
)
def docs_page() -> Response:
    return Response(PAGE, mimetype="text/html")


def _asset_view(asset: str, media_type: str) -> Callable[[], Response]:
    @operation(
        f"Swagger UI's {asset}, a file of the page (from the pinned flask-swagger-ui package)",
        {
            200: answer("The file", {"type": "string"}, media_type=media_type),
            304: answer("Not modified: the client's copy (If-None-Match, If-Modified-Since) is current"),
        },
        tags=("contract",),
    )
    def view() -> Response:
        return send_file(SWAGGER_UI / asset, mimetype=media_type, conditional=True, max_age=3600)

    return view


for _asset, _media_type in ASSETS.items():
    bp.add_url_rule(
        f"/docs/{_asset}", _asset.replace("-", "_").replace(".", "_"), _asset_view(_asset, _media_type)
    )
