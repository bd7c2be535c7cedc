"""What the fake trackers (Harvest, Toggl, Clockify) share: a WSGI app that counts calls per
route and answers first whatever a test queued with ``fail_next``; then the fake's own checks."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    response = Response(payload, status=status, content_type=JSON_CONTENT_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@dataclass(frozen=True)
class Injected:
    """An answer a test queued: ``status``, with ``Retry-After`` and a detail when given."""

    status: int
    retry_after: int | None = None
    detail: str | None = None

    def retry_headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None


class TrackerFake:
    """Base of a fake tracker: subclasses answer in ``_handle`` and shape ``_injected``."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.RLock()
        self._failures: collections.deque[Injected] = collections.deque()

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (before any other check), in the
        provider's own error shape; ``detail``, when given, is the error's text."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._failures.extend([Injected(status, retry_after, detail)] * count)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            self.calls[f"{request.method} {request.path}"] += 1
            failure = self._failures.popleft() if self._failures else None
        response = self._injected(failure) if failure is not None else self._handle(request)
        return response(environ, start_response)

    def _injected(self, failure: Injected) -> Response:
        raise NotImplementedError

    def _handle(self, request: Request) -> Response:
        raise NotImplementedError
