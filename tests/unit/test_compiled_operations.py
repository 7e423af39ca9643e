"""The pieces of the compiled request checks and handler calls that need no app: a
parameter's text read as Connexion reads it, and a handler's answer made a response as
Connexion makes it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from connexion.exceptions import NonConformingResponseHeaders
from connexion.jsonifier import Jsonifier
from connexion.middleware.abstract import RoutedAPI, RoutedMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware

from todo_api.web import stack, validators
from todo_api.web.dispatch import Dispatch, OperationCall, _unpacked
from todo_api.web.request_checks import Parameter, RequestChecks, refuse_what_is_not_compiled


def _parameter(location: str, schema: dict[str, Any]) -> Parameter:
    definition = {"name": "p", "in": location, "schema": schema}
    return Parameter("p", location, definition, None)


@pytest.mark.parametrize(
    ("location", "schema", "text", "value"),
    [
        ("query", {"type": "integer"}, "50", 50),
        ("query", {"type": "integer"}, "fifty", "fifty"),
        ("query", {"type": "integer"}, "", ""),
        ("path", {"type": "integer", "format": "int64"}, "7", 7),
        ("query", {"type": "number"}, "1.5", 1.5),
        ("query", {"type": "boolean"}, "true", True),
        ("query", {"type": "string"}, "50", "50"),
        ("header", {"type": "integer"}, "50", "50"),
    ],
)
def test_a_parameters_text_is_read_as_its_type_or_left_for_its_check(
    location: str, schema: dict[str, Any], text: str, value: Any
) -> None:
    read = _parameter(location, schema).value(text)
    assert read == value
    assert type(read) is type(value)


def test_a_value_that_is_not_its_type_is_named_by_its_check() -> None:
    parameter = _parameter("query", {"type": "integer", "minimum": 1})
    assert parameter.detail(parameter.value("x")) == "'x' is not of type 'integer'"
    assert parameter.detail(parameter.value("0")) == "0 is less than the minimum of 1"
    assert parameter.detail(parameter.value("3")) is None


@pytest.mark.parametrize(
    ("result", "unpacked"),
    [
        ({"a": 1}, ({"a": 1}, None, {})),
        (({"a": 1},), ({"a": 1}, None, {})),
        (({"a": 1}, 201), ({"a": 1}, 201, {})),
        (({"a": 1}, {"X": "1"}), ({"a": 1}, None, {"X": "1"})),
        (({"a": 1}, 202, {"X": "1"}), ({"a": 1}, 202, {"X": "1"})),
    ],
)
def test_a_handlers_answer_is_unpacked_as_connexion_unpacks_it(
    result: Any, unpacked: tuple[Any, ...]
) -> None:
    assert _unpacked(result) == unpacked


class _Operation:
    """What OperationCall reads of a Connexion operation."""

    operation_id = "op"
    is_request_body_defined = False

    def __init__(self, produces: list[str]) -> None:
        self.request_body: dict[str, Any] = {}
        self.produces = produces
        self.parameters: list[dict[str, Any]] = []
        self.function = lambda: None

    def body_schema(self) -> dict[str, Any]:
        return {}


def test_a_handlers_data_becomes_json_of_the_specs_media_type() -> None:
    call = OperationCall(_Operation(["application/problem+json"]), Jsonifier())  # type: ignore[arg-type]
    response = call.response(({"a": 1}, 201, {"X-One": "1"}))
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-one"] == "1"
    assert response.body.replace(b" ", b"").strip() == b'{"a":1}'


def test_no_data_is_204_and_an_undeclared_media_type_is_refused() -> None:
    call = OperationCall(_Operation([]), Jsonifier())  # type: ignore[arg-type]
    assert call.response((None,)).status_code == 204
    with pytest.raises(NonConformingResponseHeaders):
        call.response(("x", 200, {"Content-Type": "text/csv"}))
    several = OperationCall(_Operation(["application/json", "text/event-stream"]), Jsonifier())  # type: ignore[arg-type]
    with pytest.raises(NonConformingResponseHeaders):
        several.response({"a": 1})


def test_the_stack_has_the_compiled_checks_and_calls_in_place_of_connexions() -> None:
    layers = stack.middlewares(after_security=lambda app: app)
    assert RequestValidationMiddleware not in layers
    assert layers.index(RequestChecks) < layers.index(Dispatch) == len(layers) - 1


def test_connexions_middleware_per_operation_model_is_as_the_checks_expect() -> None:
    """RequestChecks and Dispatch are RoutedMiddlewares: the routing middleware names the
    operation in the scope, and each finds its own by that name."""
    assert "ROUTING_CONTEXT" in inspect.getsource(RoutedMiddleware.__call__)
    assert "operation_id" in inspect.getsource(RoutedMiddleware.__call__)
    assert inspect.signature(RoutedAPI.make_operation).parameters.keys() == {"self", "operation"}
    assert "next_app" in inspect.signature(RoutedAPI.__init__).parameters


def test_a_valid_value_is_passed_by_the_compiled_schema_without_the_full_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[dict[str, Any]] = []
    build = validators._parameter_checker

    def spied(schema: dict[str, Any]) -> Any:
        built.append(schema)
        return build(schema)

    monkeypatch.setattr(validators, "_parameter_checker", spied)
    monkeypatch.setattr(validators, "_PARAMETER_CHECKERS", {})
    parameter = _parameter("query", {"type": "integer", "minimum": 1})
    assert parameter.detail(3) is None
    assert built == []
    assert parameter.detail(0) == "0 is less than the minimum of 1"
    assert len(built) == 1


class _Declared:
    """What refuse_what_is_not_compiled reads of a Connexion operation."""

    operation_id = "op"

    def __init__(
        self,
        parameters: list[dict[str, Any]] = [],  # noqa: B006  # never changed
        body: dict[str, Any] | None = None,
        media_type: str = "application/json",
    ) -> None:
        self.parameters = parameters
        self.consumes = [media_type] if body is not None else []
        self._body = {"schema": body or {}}

    def body_schema(self, _media_type: str) -> dict[str, Any]:
        return dict(self._body["schema"])

    def body_definition(self, _media_type: str) -> dict[str, Any]:
        return self._body


@pytest.mark.parametrize(
    "operation",
    [
        _Declared([{"name": "ids", "in": "query", "schema": {"type": "array"}}]),
        _Declared([{"name": "f", "in": "query", "schema": {"type": "object"}}]),
        _Declared([{"name": "n", "in": "query", "schema": {"type": "string", "nullable": True}}]),
        _Declared([{"name": "s", "in": "query", "style": "form", "schema": {"type": "string"}}]),
        _Declared([{"name": "due-before", "in": "query", "schema": {"type": "string"}}]),
        _Declared(body={"type": "object", "default": {}}),
        _Declared(body={"type": "object", "nullable": True}),
        _Declared(body={"type": "string"}, media_type="text/plain"),
    ],
)
def test_what_the_checks_do_not_read_as_connexion_would_is_refused_at_start(
    operation: _Declared,
) -> None:
    with pytest.raises(ValueError, match="not read here"):
        refuse_what_is_not_compiled(operation)  # type: ignore[arg-type]


def test_the_specs_own_operations_are_all_read() -> None:
    from connexion.spec import Specification

    from todo_api.contract import independent_spec

    specification = Specification.load(independent_spec())
    for path, methods in specification["paths"].items():
        for method in methods:
            if method in {"get", "put", "post", "delete", "patch"}:
                operation = specification.operation_cls.from_spec(
                    specification, path=path, method=method, resolver=_NoResolver()
                )
                refuse_what_is_not_compiled(operation)


class _NoResolver:
    def resolve(self, operation: Any) -> Any:
        from connexion.resolver import Resolution

        return Resolution(lambda: None, operation.operation_id)
