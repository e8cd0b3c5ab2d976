"""Form schemas: one validator per form, errors as {field, message} a person can act on."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from .errors import InvalidData

_format_checker = FormatChecker(formats=("date",))


@_format_checker.checks("email")
def is_email_address(value) -> bool:
    """An address a letter can really go to: email-validator's syntax rules (no spaces, no CR/LF
    smuggling a second header), without asking DNS, which may be offline. The reserved `.test` domain is allowed for
    demonstrations and tests (`coordinator@demo.test`)."""
    if not isinstance(value, str):
        return True  # the schema's "type" speaks for other values
    try:
        validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return False
    return True


def make_validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=_format_checker)


def field_path(error: ValidationError) -> str:
    path = "/".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path = f"{path}/{missing}" if path else missing
    return path or "(form)"


def describe(error: ValidationError) -> str:
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    if error.validator == "required":
        return "is required"
    if error.validator == "format":
        return f"must be a valid {error.validator_value} (got {error.instance!r})"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "additionalProperties":
        return error.message
    prefix = f"{title}: " if title else ""
    return prefix + error.message


def errors_for(validator: Draft202012Validator, data) -> list[dict]:
    found = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        # For if/then and anyOf, report the failing branch's own errors: they say what to fix.
        leaves = [e for e in (error.context or []) if e.validator != "if"] if error.validator in ("anyOf", "oneOf") else []
        for item in leaves or [error]:
            found.append({"field": field_path(item), "message": describe(item)})
    unique = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


def validate(validator: Draft202012Validator, data, what: str = "The form") -> None:
    if not isinstance(data, dict):
        raise InvalidData([{"field": "(form)", "message": "must be a JSON object"}], f"{what} is not valid")
    errors = errors_for(validator, data)
    if errors:
        raise InvalidData(errors, f"{what} is not valid")
