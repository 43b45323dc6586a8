"""A request body size limit, enforced before the body is parsed."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockbox.api.problems import problem

MAX_BODY_BYTES = 64 * 1024


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413, whether or not Content-Length is honest."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"the body limit is {self.max_bytes} bytes",
        )
        if declared is not None:
            try:
                if int(declared) > self.max_bytes:
                    await too_large(scope, receive, send)
                    return
            except ValueError:
                pass
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body reader passes it on (413)."""

    def __init__(self) -> None:
        super().__init__(413, "Payload too large")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _json_problem(body: bytes) -> tuple[str, str] | None:
    """(field, message) when a JSON body is ambiguous or undecodable; None if fine.

    Syntax errors are left to the framework, which reports their position.
    """
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "body", f"is not valid UTF-8 (byte {exc.start})"
    try:
        json.loads(decoded, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        # Parsers disagree on which duplicate wins; a proxy may have checked the other one.
        return exc.key[:100], "is given more than once"
    except RecursionError:
        return "body", "is nested too deeply"
    except ValueError:
        return None
    return None


def _is_json(scope: Scope) -> bool:
    value = dict(scope.get("headers") or []).get(b"content-type")
    if value is None:
        return False
    media = bytes(value).split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class StrictJson:
    """Refuse JSON bodies with duplicated keys or invalid UTF-8 with a 422 naming the field.

    Runs inside :class:`BodySizeLimit`, so at most ``MAX_BODY_BYTES`` are buffered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        found = _json_problem(body) if body else None
        if found is not None:
            field, text = found
            await problem(
                422,
                "validation_error",
                "Invalid input",
                f"{field}: {text}",
                errors=[{"field": field, "message": text}],
            )(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
