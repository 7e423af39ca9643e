"""What the rules raise: input the contract's schemas let through, and bounds a user reached."""

from __future__ import annotations


class InvalidInput(Exception):
    """Each error names its body field (`{"pointer": "#/timezone"}`) or parameter
    (`{"parameter": "due_before"}`) and says what is wrong (`detail`)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class StreamLimit(Exception):
    """No event stream may be opened now: the user's bound (`per_user`), or the server's."""

    def __init__(self, per_user: bool, limit: int) -> None:
        super().__init__(per_user, limit)
        self.per_user = per_user
        self.limit = limit


class ChatUnavailable(Exception):
    """The chatbot is not set up here: the `chat` extra or OPENAI_API_KEY is missing."""


class ModelUnavailable(Exception):
    """The model did not answer in time, or could not be reached: worth a retry (503)."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class ModelFailed(ModelUnavailable):
    """The model answered something that is no answer, or refused the server's key (502)."""
