"""The app's JSON provider: Flask's, compact and unsorted, with its encoder built once.

`json.dumps` with any non-default argument (Flask passes `default`, `sort_keys` and `separators`)
builds a new JSONEncoder on every call; this provider builds it once per app. The bytes are the
same as DefaultJSONProvider's with `sort_keys = False` and `compact = True`, except that NaN and
Infinity raise ValueError instead of being written as the non-JSON tokens `NaN`/`Infinity`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flask.json.provider import DefaultJSONProvider

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.sansio.response import Response  # what DefaultJSONProvider.response declares


class CompactJSONProvider(DefaultJSONProvider):
    sort_keys = False
    compact = True

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self._encode = json.JSONEncoder(
            ensure_ascii=self.ensure_ascii,
            sort_keys=False,
            separators=(",", ":"),
            default=self.default,
            allow_nan=False,  # NaN/Infinity are not JSON: raise (a 500) rather than emit them
        ).encode

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """jsonify(): the compact document and a newline, as application/json."""
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(f"{self._encode(obj)}\n", mimetype=self.mimetype)
