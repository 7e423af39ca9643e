"""What the rules raise for input the contract's schemas let through."""

from __future__ import annotations


class InvalidInput(Exception):
    """Each error names its body field (`{"pointer": "#/timezone"}`) or parameter
    (`{"parameter": "due_before"}`) and says what is wrong (`detail`)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors
