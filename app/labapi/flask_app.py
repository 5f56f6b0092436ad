"""The API's Flask class: Flask with a bodiless answer to OPTIONS.

Flask answers OPTIONS on any route with an empty `200 text/html` response. This one answers
`204 No Content` with the `Allow` header, no body and no Content-Type: nothing that looks like an
HTML page.
"""

from __future__ import annotations

from flask import Flask, Response
from flask.globals import request_ctx


class LabFlask(Flask):
    def make_default_options_response(self) -> Response:
        methods = request_ctx.url_adapter.allowed_methods()  # type: ignore[union-attr]
        response = self.response_class(status=204)
        response.allow.update(methods)
        del response.headers["Content-Type"]
        return response
