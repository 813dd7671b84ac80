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
