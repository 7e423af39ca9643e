"""What ChatKit's endpoint takes: a request the SDK reads, of a kind this server serves, whose
user message keeps POST /chat's bounds (the contract's `ChatRequest.message`). Anything else
is a 422 naming the field, before the SDK or the database sees it."""

from __future__ import annotations

from functools import cache
from typing import Any

from chatkit.types import (
    ChatKitReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    UserMessageTagContent,
)
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from todo_api.chat.chatkit_store import no_attachments
from todo_api.contract import spec
from todo_api.usecases.errors import InvalidInput
from todo_api.web import validators
from todo_api.web.problems import ValidationProblem

# What this server cannot do: it keeps no files, transcribes nothing, sends no widgets,
# client tools or structured input to act on.
UNSUPPORTED = {
    "attachments.create": "this server takes no attachments",
    "attachments.delete": "this server takes no attachments",
    "input.transcribe": "this server does no dictation",
    "threads.custom_action": "this server sends no widgets to act on",
    "threads.sync_custom_action": "this server sends no widgets to act on",
    "threads.add_client_tool_output": "this server calls no client tools",
    "threads.add_structured_input": "this server asks for no structured input",
}
_REQUEST = TypeAdapter[ChatKitReq](ChatKitReq)


def parsed(raw: bytes, body: dict[str, Any]) -> ChatKitReq:
    """The request as the SDK reads it; what it refuses is a 422 naming each field."""
    try:
        return _REQUEST.validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput([field_error(error, body) for error in exc.errors()]) from None


def field_error(error: ErrorDetails, body: Any) -> dict[str, str]:
    """Pydantic's error as the project's: a JSON Pointer into the body. Pydantic's location
    has each union's tag in it (`threads.create`), which is no member of the body."""
    steps: list[str] = []
    here = body
    for step in error["loc"]:
        if isinstance(here, dict) and here.get("type") == step:
            continue
        steps.append(str(step).replace("~", "~0").replace("/", "~1"))
        if isinstance(here, dict):
            here = here.get(str(step))
        elif isinstance(here, list) and isinstance(step, int) and 0 <= step < len(here):
            here = here[step]
        else:
            here = None
    detail = error["msg"]
    if error["type"] == "union_tag_invalid":
        # Pydantic's message lists every tag: the type is what is wrong.
        steps.append("type")
        detail = "is not one of the types ChatKit's protocol has here"
    return {"pointer": "#/" + "/".join(steps), "detail": detail}


def refuse_unsupported(request: ChatKitReq) -> None:
    reason = UNSUPPORTED.get(request.type)
    if reason is not None:
        raise InvalidInput([{"pointer": "#/type", "detail": f"{request.type}: {reason}"}])
    if (
        isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq)
        and request.params.input.attachments
    ):
        raise no_attachments()


def checked(raw: bytes, body: dict[str, Any]) -> ChatKitReq:
    """The request, once it passes every check here."""
    nul = next(_nul_characters(body, "#"), None)
    if nul is not None:
        # PostgreSQL keeps no NUL in text: refused here rather than failing there.
        raise InvalidInput([{"pointer": nul, "detail": "has a NUL character"}])
    request = parsed(raw, body)
    refuse_unsupported(request)
    check_message(request)
    return request


@cache
def _message_body() -> dict[str, Any]:
    """POST /chat's body schema with the message alone: ChatKit's text is held to it."""
    schema: dict[str, Any] = spec()["components"]["schemas"]["ChatRequest"]
    return {"type": "object", "properties": {"message": schema["properties"]["message"]}}


def check_message(request: ChatKitReq) -> None:
    if not isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq):
        return
    parts = request.params.input.content
    text = "".join(
        f"@{part.text}" if isinstance(part, UserMessageTagContent) else part.text for part in parts
    )
    try:
        validators.check_body({"message": text}, _message_body(), required=True)
    except ValidationProblem as refused:
        where = "#/params/input/content"
        raise InvalidInput(
            [{"pointer": where, "detail": error["detail"]} for error in refused.ext["errors"]]
        ) from None


def _nul_characters(value: Any, where: str) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            step = str(key).replace("~", "~0").replace("/", "~1")
            yield from _nul_characters(key, where)
            yield from _nul_characters(item, f"{where}/{step}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_characters(item, f"{where}/{index}")
