"""Cheap JSON responses with the Cloud Controller's wire conventions.

CC (Rails) escapes ``&``, ``<`` and ``>`` inside JSON strings as ``\\u0026`` etc.; outside strings
JSON never contains these characters, so a plain replace on the encoded text is exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

JSON_CT = "application/json; charset=utf-8"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode(obj: Any) -> str:
    return _dumps(obj)


def rails_escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return text


def cc_json(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return raw_json(rails_escape(encode(obj)), status, headers)


def raw_json(
    text: str, status: int = 200, headers: Mapping[str, str] | None = None, content_type: str = JSON_CT
) -> Response:
    resp = Response(text.encode(), status_code=status, headers=dict(headers or {}))
    resp.headers["content-type"] = content_type
    return resp


def uaa_json(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return raw_json(encode(obj), status, headers, "application/json;charset=UTF-8")


def accepted(location: str) -> Response:
    """202 with empty body and ``text/html`` content type, as CC's ``head :accepted``."""
    resp = Response(b"", status_code=202, headers={"Location": location})
    resp.headers["content-type"] = "text/html"
    return resp
