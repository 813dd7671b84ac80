"""Errors the domain raises; the gRPC entrypoints map each to its status code.
Pure Python so domains can use them without importing any framework."""


class DomainError(Exception):
    """Base: the message is safe to show to the caller."""


class InvalidArgument(DomainError):
    pass


class NotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class FailedPrecondition(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class Conflict(Exception):
    """A write collided with a concurrent one (a unique key another transaction took).
    Repositories raise it for the database's integrity error, so use cases can retry
    or answer without knowing the driver. Not a DomainError: one that escapes is a bug
    (INTERNAL), as the driver's error was."""
