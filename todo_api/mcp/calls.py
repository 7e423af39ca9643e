"""A tool call, as an HTTP request to its operation would go: its arguments checked by the
contract's validators (every error, in the 422 problem's words), then the same use case as the
operation's handler, in a worker thread; every refusal and domain error a tool error through
problems.py's one mapping. Counted, timed and logged per call. No MCP types here: the server
(server.py) turns a `Result` into the SDK's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import anyio.to_thread
from connexion.exceptions import ProblemException
from opentelemetry import trace

from storage import Task, TaskStore
from todo_api.auth.authenticator import Principal
from todo_api.logs import CURRENT_REQUEST, RequestContext, log_tool_call
from todo_api.mcp.tools import ToolDefinition, listed
from todo_api.metrics import Metrics
from todo_api.usecases import tags, tasks
from todo_api.web import validators
from todo_api.web.problem_values import problem_for, problem_value
from todo_api.web.problems import (
    DOMAIN_ERRORS,
    DomainError,
    Forbidden,
    ValidationProblem,
    as_problem,
)
from todo_api.web.representation import rfc3339, tag_json, task_json

# Where the door (server.py) leaves, in the request's scope, who is calling and the request's
# log context, for the call that the SDK runs in a task of its own.
PRINCIPAL = "todo_api.mcp.principal"
REQUEST_CONTEXT = "todo_api.mcp.request_context"
UNKNOWN_TOOL = "unknown"
NOT_YOURS = "The user_id argument is not the signed-in user; nothing was read or written."
# A summary names this many items of a list at most; the structured content has them all.
SUMMARY_ITEMS = 20


@dataclass(frozen=True)
class Call:
    """A checked call: its parameters by the spec's names, defaults filled in, and its body."""

    tool: ToolDefinition
    parameters: dict[str, Any]
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """What a tool answers: structured content (the operation's JSON) or a problem, and one
    line for a model to read."""

    summary: str
    structured: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    outcome: str = "ok"

    @property
    def is_error(self) -> bool:
        return self.problem is not None


def check(tool: ToolDefinition, arguments: Mapping[str, Any]) -> Call:
    """The call the arguments make, or ValidationProblem naming every offending one: an
    unknown argument, a parameter its schema refuses, and the body's fields, each as the HTTP
    door words it."""
    known = set(tool.input_schema["properties"])
    errors = [
        {"pointer": validators.pointer([name]), "detail": validators.UNKNOWN_FIELD}
        for name in arguments
        if name not in known
    ]
    parameters: dict[str, Any] = {}
    # user_id is held to the token's subject before this (a subject is a good user id).
    for argument in tool.parameters:
        value = arguments.get(argument.name)
        where = {"parameter": argument.parameter_name}
        detail = validators.parameter_detail(value, argument.parameter, argument.location)
        # Each place is a path, the empty one for a string parameter itself.
        if detail is None and next(validators.unpaired_surrogates(value), None) is not None:
            detail = validators.UNPAIRED_SURROGATE_DETAIL
        if detail is not None:
            errors.append(where | {"detail": detail})
        elif value is not None:
            parameters[argument.parameter_name] = value
        elif "default" in argument.parameter.get("schema", {}):
            parameters[argument.parameter_name] = argument.parameter["schema"]["default"]
    body = {name: arguments[name] for name in tool.body_fields if name in arguments}
    if tool.body_schema is not None:
        try:
            validators.check_body(body, tool.body_schema, required=tool.body_required)
        except ValidationProblem as refused:
            errors += refused.ext["errors"]
    if errors:
        raise ValidationProblem(errors)
    return Call(tool, parameters, body)


async def call(
    tools: Mapping[str, ToolDefinition],
    scope: Mapping[str, Any],
    name: str,
    arguments: Mapping[str, Any],
) -> Result:
    """Run one call for the principal the door left in `scope`: checked, counted and logged."""
    state = scope["state"]
    metrics: Metrics | None = state.get("metrics")
    principal: Principal = scope[PRINCIPAL]
    context: RequestContext | None = scope.get(REQUEST_CONTEXT)
    # The SDK runs the call in a task of its own: the request's log lines are still its.
    token = CURRENT_REQUEST.set(context)
    started = time.perf_counter()
    tool = tools[name]
    try:
        result = await _run(tool, arguments, principal, state["store"], metrics)
    finally:
        CURRENT_REQUEST.reset(token)
    seconds = time.perf_counter() - started
    # The SDK's span of this call (`tools/call <tool>`, when tracing is configured) says how
    # it went; a no-op otherwise.
    trace.get_current_span().set_attribute("todo_api.mcp.outcome", result.outcome)
    if metrics is not None:
        metrics.tool_calls.labels(tool.name, result.outcome).inc()
        metrics.tool_call_duration.labels(tool.name).observe(seconds)
    client = scope.get("client")
    log_tool_call(
        {
            "tool": tool.name,
            "outcome": result.outcome,
            "duration_ms": round(seconds * 1000, 2),
            "user": principal.subject,
            "client": client[0] if client else None,
            "request_id": context.request_id if context is not None else None,
            "error": result.problem["title"] if result.problem else None,
        }
    )
    return result


def unknown_tool(metrics: Metrics | None) -> None:
    if metrics is not None:
        metrics.tool_calls.labels(UNKNOWN_TOOL, "refused").inc()


async def _run(
    tool: ToolDefinition,
    arguments: Mapping[str, Any],
    principal: Principal,
    store: TaskStore,
    metrics: Metrics | None,
) -> Result:
    """Whatever happens, a result: nothing an agent sends is answered with a server error."""
    try:
        return await _checked_and_run(tool, arguments, principal, store)
    except ValidationProblem as refused:
        return _refusal(refused, "refused")
    except DOMAIN_ERRORS as exc:
        problem = as_problem(cast("DomainError", exc))
        return _refusal(problem, "error" if problem.status < 500 else "unavailable")
    except Exception as exc:
        problem = problem_for(exc, metrics)
        return _refusal(problem, "unavailable" if problem.status != 500 else "failed")


async def _checked_and_run(
    tool: ToolDefinition, arguments: Mapping[str, Any], principal: Principal, store: TaskStore
) -> Result:
    user_id = arguments.get("user_id")
    if user_id is not None and user_id != principal.subject:
        return _refusal(Forbidden(NOT_YOURS), "refused")
    checked = check(tool, arguments)
    operation = OPERATIONS[tool.operation_id]
    # The use cases and storage are synchronous: a worker thread, as Connexion runs handlers.
    return await anyio.to_thread.run_sync(partial(operation, store, principal.subject, checked))


def _refusal(problem: ProblemException, outcome: str) -> Result:
    """A problem as a tool error: the problem+json the HTTP door would answer, and its line."""
    body = problem_value(problem)
    return Result(f"{problem.title}: {problem.detail}", problem=body, outcome=outcome)


# What each operation does, by its operationId: the use case its HTTP handler calls, with the
# same values, answered as the same JSON. Each runs in a worker thread.
Operation = Callable[[TaskStore, str, Call], Result]


def _list_tasks(store: TaskStore, user: str, call: Call) -> Result:
    _query, page = tasks.list_tasks(store, user, **call.parameters)
    items = [task_json(task) for task in page.tasks]
    lines = "; ".join(_task_line(task) for task in page.tasks[:SUMMARY_ITEMS])
    return _answer(
        listed(call.tool, items, page.total, page.next_cursor),
        _page_summary(len(items), page.total, "task", lines, page.next_cursor),
    )


def _create_task(store: TaskStore, user: str, call: Call) -> Result:
    key = call.parameters.get("Idempotency-Key")
    created = tasks.create_task(store, user, call.body, idempotency_key=key)
    verb = "Already created (same idempotency_key)" if created.replayed else "Created"
    return _task(created.task, verb)


def _get_task(store: TaskStore, user: str, call: Call) -> Result:
    return _task(tasks.get_task(store, user, call.parameters["task_id"]), "Task")


def _update_task(store: TaskStore, user: str, call: Call) -> Result:
    updated = tasks.update_task(store, user, call.parameters["task_id"], call.body)
    return _task(updated, "Updated")


def _complete_task(store: TaskStore, user: str, call: Call) -> Result:
    task_id = call.parameters["task_id"]
    task = tasks.complete_task(store, user, task_id, call.body.get("completed"))
    return _task(task, "Completed" if task.completed else "Marked pending")


def _delete_task(store: TaskStore, user: str, call: Call) -> Result:
    task_id = call.parameters["task_id"]
    tasks.delete_task(store, user, task_id)
    return Result(f"Deleted task {task_id}; restore_task brings it back for a while.")


def _restore_task(store: TaskStore, user: str, call: Call) -> Result:
    return _task(tasks.restore_task(store, user, call.parameters["task_id"]), "Restored")


def _list_tags(store: TaskStore, user: str, call: Call) -> Result:
    page = tags.list_tags(store, user, call.parameters["limit"], call.parameters.get("cursor"))
    items = [tag_json(tag) for tag in page.tags]
    lines = "; ".join(
        f"{_quoted(tag.tag)} ({tag.pending} pending, {tag.completed} completed)"
        for tag in page.tags[:SUMMARY_ITEMS]
    )
    return _answer(
        listed(call.tool, items, page.total, page.next_cursor),
        _page_summary(len(items), page.total, "tag", lines, page.next_cursor),
    )


def _rename_tag(store: TaskStore, user: str, call: Call) -> Result:
    renamed = tags.rename_tag(store, user, call.parameters["tag"], call.body)
    summary = (
        f"Renamed to {_quoted(renamed.tag)}: on {renamed.pending} pending and "
        f"{renamed.completed} completed tasks."
    )
    return _answer(tag_json(renamed), summary)


OPERATIONS: dict[str, Operation] = {
    "handlers.tasks.list_tasks": _list_tasks,
    "handlers.tasks.create_task": _create_task,
    "handlers.tasks.get_task": _get_task,
    "handlers.tasks.update_task": _update_task,
    "handlers.tasks.complete_task": _complete_task,
    "handlers.tasks.delete_task": _delete_task,
    "handlers.tasks.restore_task": _restore_task,
    "handlers.tags.list_tags": _list_tags,
    "handlers.tags.rename_tag": _rename_tag,
}


def _answer(structured: dict[str, Any], summary: str) -> Result:
    return Result(summary, structured=structured)


def _task(task: Task, verb: str) -> Result:
    return _answer(task_json(task), f"{verb}: {_task_line(task)}.")


def _task_line(task: Task) -> str:
    parts = [
        "completed" if task.completed else "pending",
        f"priority {task.priority}",
    ]
    if task.due_date is not None:
        parts.append(f"due {rfc3339(task.due_date)}")
    if task.tags:
        parts.append("tags " + ", ".join(_quoted(tag) for tag in task.tags))
    if task.recurrence:
        parts.append(f"repeats {task.recurrence}")
    return f"task {task.id} {_quoted(task.title)} ({'; '.join(parts)})"


def _page_summary(shown: int, total: int, noun: str, lines: str, next_cursor: str | None) -> str:
    summary = f"{shown} of {total} {noun}s" + (f": {lines}" if lines else "")
    if shown > SUMMARY_ITEMS:
        summary += f"; and {shown - SUMMARY_ITEMS} more on this page"
    if next_cursor is not None:
        summary += f". More on the next page: cursor={next_cursor}"
    return summary + "."


def _quoted(text: str) -> str:
    """A client's text on one line, quoted (JSON escapes any newline in it)."""
    return json.dumps(text, ensure_ascii=False)
