"""Structural validation of inbound resources with the fhir.resources R4B models, at the API edge (FHIR R4 http.html#create: 422)."""
from __future__ import annotations

from conformance.r4b_models import location_expression, model_class
from gateway.fhir.outcome import InvalidResource


def validate_resource(resource: dict, resource_type: str, *, path: str | None = None) -> None:
    """Raise InvalidResource (422) naming each element at fault when `resource` is not a valid R4 `resource_type`.

    `path` is where the resource sits, e.g. Bundle.entry[2].resource; by default its type.
    """
    from pydantic import ValidationError

    model = model_class(resource_type)
    try:
        model.model_validate(resource)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        expressions = [location_expression(path or resource_type, problem["loc"]) for problem in problems]
        messages = "; ".join(f"{path}: {problem['msg']}" for path, problem in zip(expressions, problems))
        raise InvalidResource(f"Invalid {resource_type}: {messages}", expression=expressions) from None
    except (ValueError, TypeError) as error:
        raise InvalidResource(f"Invalid {resource_type}: {error}", expression=[path or resource_type]) from None
