"""The `/api/{user_id}/tasks` family: the operations of handlers.tasks, addressed by user id.

handlers.security.bearer_info has already answered 403 unless the path `user_id` is the
token's subject, so each operation here is the same function, also accepting the path's
`user_id`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from handlers import events, tags, tasks


def _with_path_user(operation: Callable[..., Any]) -> Callable[..., Any]:
    handler: Callable[..., Any]
    if inspect.iscoroutinefunction(operation):
        # Connexion awaits a coroutine function on the event loop, and runs others in threads.
        async def handler(*args: Any, user_id: str, **kwargs: Any) -> Any:
            return await operation(*args, **kwargs)
    else:

        def handler(*args: Any, user_id: str, **kwargs: Any) -> Any:
            return operation(*args, **kwargs)

    # Connexion passes the arguments a handler's signature names: the operation's, plus user_id.
    signature = inspect.signature(operation)
    user_id = inspect.Parameter("user_id", inspect.Parameter.KEYWORD_ONLY, annotation=str)
    parameters = sorted([*signature.parameters.values(), user_id], key=lambda p: p.kind)
    handler.__signature__ = signature.replace(parameters=parameters)  # type: ignore[union-attr]
    handler.__name__ = operation.__name__
    handler.__doc__ = operation.__doc__
    return handler


list_tasks = _with_path_user(tasks.list_tasks)
create_task = _with_path_user(tasks.create_task)
get_task = _with_path_user(tasks.get_task)
update_task = _with_path_user(tasks.update_task)
put_task = _with_path_user(tasks.put_task)
delete_task = _with_path_user(tasks.delete_task)
complete_task = _with_path_user(tasks.complete_task)
post_complete_task = _with_path_user(tasks.post_complete_task)
restore_task = _with_path_user(tasks.restore_task)
list_changes = _with_path_user(tasks.list_changes)
stream_events = _with_path_user(events.stream_events)
issue_ticket = _with_path_user(events.issue_ticket)
list_tags = _with_path_user(tags.list_tags)
rename_tag = _with_path_user(tags.rename_tag)
