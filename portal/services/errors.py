"""Errors services raise; the web layers map them to HTTP statuses and messages."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: the message is safe to show to the user who caused it."""


class NotFound(ServiceError):
    """The object does not exist *or* the user may not see it (we do not say which)."""


class PermissionDenied(ServiceError):
    """The user may see the object but not do this to it."""


class InvalidInput(ServiceError):
    """Input that cannot be accepted, with the reason."""


class Conflict(ServiceError):
    """The object changed since the client read it; the client must reload and retry."""


class IdempotencyMismatch(ServiceError):
    """An `Idempotency-Key` sent again with a different request than the first time."""
