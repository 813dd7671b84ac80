"""gRPC server bootstrap: the real services plus health and reflection, an
error mapping from domain errors to status codes, identity from the metadata
Envoy forwards (parsed once and handed to the method), metrics, a hook run after
every call, and a graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import dataclasses
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from types import FrameType
from typing import Any, Protocol, overload

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Gauge, Histogram

from bookrental.api.v1 import options_pb2

from . import errors, tracing
from .db import database, is_transient
from .identity import Identity, from_metadata
from .readiness import HEALTH_PREFIX, Readiness, start_endpoint
from .settings import Settings
from .threads import name_native_thread

log = logging.getLogger(__name__)

RPCS = Counter("bookrental_rpc_total", "RPCs handled", ["method", "code"])
RPC_SECONDS = Histogram(
    "bookrental_rpc_seconds",
    "RPC latency",
    ["method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
# Calls begun and not yet answered: what a drain waits for, and what a stuck database holds.
RPCS_IN_FLIGHT = Gauge("bookrental_rpc_in_flight", "RPCs being handled now", ["method"])

_CODES = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def identity(context: grpc.ServicerContext) -> Identity:
    # Values are str for every key but the -bin ones (bytes), which identity does not read.
    caller = from_metadata(dict(context.invocation_metadata()))  # type: ignore[arg-type]
    if caller is None:
        raise errors.Unauthenticated("a signed-in user is required")
    return caller


def public_methods(service_name: str) -> frozenset[str]:
    """The methods of a gRPC service that protos/ marks `option (bookrental.api.v1.public)
    = true`: callable without a token (the gateway's rules come from the same mark)."""
    service = descriptor_pool.Default().FindServiceByName(service_name)
    # protoc's .pyi types an extension as a plain FieldDescriptor, not the _ExtensionFieldDescriptor Extensions takes
    return frozenset(m.name for m in service.methods if m.GetOptions().Extensions[options_pb2.public])  # type: ignore[index]


# A servicer method as written, `method(self, request, context, caller)`, and as gRPC
# calls it once wrapped, `method(self, request, context)`: each takes its own messages.
RpcMethod = Callable[..., Any]


@overload
def rpc(method: RpcMethod, *, role: str | None = None) -> RpcMethod: ...
@overload
def rpc(method: None = None, *, role: str | None = None) -> Callable[[RpcMethod], RpcMethod]: ...
def rpc(method: RpcMethod | None = None, *, role: str | None = None) -> RpcMethod | Callable[[RpcMethod], RpcMethod]:
    """Wraps a servicer method: domain errors become status codes with their
    message; anything unexpected is logged with its traceback and the caller
    gets INTERNAL without one.

    Fail closed: unless protos/ marks the RPC public (create_server tells the servicer
    which, as `public_rpcs`), a call without the identity metadata Envoy forwards is
    refused with UNAUTHENTICATED before the method runs, so a call that reaches a
    service around the gateway (or through a misrouted path) gets nothing.
    `role` additionally requires that role (PERMISSION_DENIED otherwise).
    The method is called as `method(self, request, context, caller)`: the Identity
    parsed here, or None for a public one (whose metadata is not read).
    Use as `@rpc` or `@rpc(role=ROLE)`."""
    if method is None:
        return functools.partial(rpc, role=role)
    name = method.__name__
    in_flight = RPCS_IN_FLIGHT.labels(name)

    @functools.wraps(method)
    def wrapper(self: Servicer, request: Any, context: grpc.ServicerContext) -> Any:
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        in_flight.inc()
        try:
            caller = None
            if name not in getattr(self, "public_rpcs", ()):
                caller = identity(context)
                if role and not caller.has_role(role):
                    raise errors.PermissionDenied(f"only a {role} may do this")
            return method(self, request, context, caller)
        except errors.DomainError as exc:
            code = next((c for t, c in _CODES.items() if isinstance(exc, t)), grpc.StatusCode.FAILED_PRECONDITION)
            context.abort(code, str(exc))
        except Exception as exc:
            if is_transient(exc):
                # The database is away: say so (callers may retry) and reconnect next time.
                database.close()
                code = grpc.StatusCode.UNAVAILABLE
                log.warning("database unavailable", extra={"method": name, "error": str(exc)})
                context.abort(code, "database unavailable; retry shortly")
            code = grpc.StatusCode.INTERNAL
            log.exception("rpc failed", extra={"method": name})
            context.abort(code, "internal error; the service logged the details")
        finally:
            in_flight.dec()
            RPCS.labels(name, code.name).inc()
            RPC_SECONDS.labels(name, code.name).observe(time.perf_counter() - start)

    wrapper.role = role  # type: ignore[attr-defined]  # a function's own attribute, which mypy does not model
    return wrapper


class Servicer(Protocol):
    """What create_server needs of a servicer: it sets `public_rpcs`, which rpc reads."""

    public_rpcs: frozenset[str]


@dataclasses.dataclass
class Service:
    """One gRPC service to serve: its full name, servicer and generated add_* function."""

    name: str
    servicer: Servicer
    add: Callable[[Any, grpc.Server], None]  # the generated add_*Servicer_to_server


class _Undecodable:
    def __init__(self, error: str) -> None:
        self.error = error


class _WrappingInterceptor(grpc.ServerInterceptor):
    """Wraps each method's handler once and keeps the wrapped one: grpc asks on every
    call, and the answer never changes. `_wrap` says how."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        wrapped = self._wrapped.get(details.method)
        if wrapped is None:
            wrapped = self._wrap(continuation(details), details.method)
            if wrapped is not None:  # unknown names are not kept: a caller could send endless ones
                self._wrapped[details.method] = wrapped
        return wrapped

    def _wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any] | None, full_method: str
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        raise NotImplementedError


class RefuseUndecodable(_WrappingInterceptor):
    """A request that is not a valid message (a string field that is not UTF-8, as the
    transcoder makes from a GET path holding %ff) is the caller's mistake: INVALID_ARGUMENT,
    instead of the INTERNAL grpc answers when a deserializer raises."""

    def _wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any] | None, full_method: str
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if (
            handler is None
            or handler.request_streaming
            or handler.response_streaming
            or handler.request_deserializer is None
            or handler.unary_unary is None
        ):
            return handler
        deserialize, method = handler.request_deserializer, handler.unary_unary

        def safe_deserialize(data: bytes) -> Any:
            try:
                return deserialize(data)
            except Exception as exc:  # protobuf's DecodeError and friends
                return _Undecodable(str(exc))

        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                RPCS.labels(full_method.rsplit("/", 1)[-1], grpc.StatusCode.INVALID_ARGUMENT.name).inc()
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid message (text must be UTF-8)"
                )
            return method(request, context)

        return grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=safe_deserialize, response_serializer=handler.response_serializer
        )


class AfterEachCall(_WrappingInterceptor):
    """Runs `after` when each unary call ends, however it ended: the service gives
    back what a call borrowed (its database connection, to the pool)."""

    def __init__(self, after: Callable[[], None]) -> None:
        super().__init__()
        self.after = after

    def _wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any] | None, full_method: str
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if handler is None or handler.unary_unary is None:
            return handler
        method, after = handler.unary_unary, self.after

        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return method(request, context)
            finally:
                after()

        # grpc's handlers are namedtuples; the stubs declare an abstract class without _replace
        return handler._replace(unary_unary=behaviour)  # type: ignore[attr-defined,no-any-return]


# Our requests are a few hundred bytes. The gateway stops bodies over 64 KiB; a caller
# that reaches a service directly meets the same bound (gRPC's default is 4 MiB).
MAX_REQUEST_BYTES = 64 * 1024


class PortUnavailable(Exception):
    """A port the service must listen on is taken (another instance, or `make run` already up)."""


def create_server(
    address: str, services: list[Service], max_workers: int = 8, after_call: Callable[[], None] = lambda: None
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Returns (server, bound port, health servicer); binds port 0 for tests.
    `after_call` runs when each call ends."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc", initializer=name_native_thread),
        options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
        interceptors=[*tracing.server_interceptors(), RefuseUndecodable(), AfterEachCall(after_call)],
    )
    for s in services:
        s.servicer.public_rpcs = public_methods(s.name)  # read by rpc: the rest need an identity
        s.add(s.servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in [s.name for s in services] + [""]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        [s.name for s in services] + [health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # grpcio raises where it once returned 0
        port = 0
    if port == 0:
        raise PortUnavailable(f"gRPC port {address}: cannot bind it (in use?)")
    return server, port, health_servicer


# How long a signal may wait for the main thread to see it (wait_in_slices).
SIGNAL_SLICE_S = 0.1


def wait_in_slices(event: threading.Event) -> None:
    """Waits for `event` in short slices, not in one wait. The kernel may hand a
    process's SIGTERM to any of its threads; CPython then runs the Python handler in
    the main thread when that thread next runs bytecode, and a main thread blocked on
    a lock is not woken by a signal another thread took. One wait lost a SIGTERM for
    good (a CI run: the service said SERVING until it was killed)."""
    while not event.wait(SIGNAL_SLICE_S):
        pass


def serve(
    settings: Settings,
    services: list[Service],
    start_background: Callable[[], None],
    stop_background: Callable[[], None],
    stopping: threading.Event | None = None,
    after_call: Callable[[], None] = lambda: None,
    readiness: Readiness | None = None,
) -> None:
    """Runs until SIGTERM/SIGINT (or `stopping` is set by a failing worker):
    NOT_SERVING while starting and draining, and while `readiness` says a dependency
    that gates traffic is down (none given: no dependency). `after_call` runs when
    each call ends."""
    readiness = readiness or Readiness([], settings.readiness_interval_s)
    if settings.metrics_port:
        try:
            start_endpoint(settings.grpc_host, settings.metrics_port, readiness)
        except OSError as exc:  # said in one line by app.main, as a bad setting is
            where = f"{settings.grpc_host}:{settings.metrics_port}"
            raise PortUnavailable(f"metrics port {where}: {exc.strerror}") from None
    server, port, health_servicer = create_server(settings.grpc_address, services, settings.rpc_threads, after_call)
    server.start()
    start_background()
    names = [s.name for s in services] + [""]

    def publish(ready: bool, up: dict[str, bool]) -> None:
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        for name in names:
            health_servicer.set(name, serving if ready else not_serving)
        for name, ok in up.items():
            health_servicer.set(HEALTH_PREFIX + name, serving if ok else not_serving)

    readiness.start(publish)
    log.info("serving", extra={"address": f"{settings.grpc_host}:{port}", "metrics_port": settings.metrics_port})

    stopping = stopping or threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    wait_in_slices(stopping)
    # Drain: say NOT_SERVING and keep answering for a moment, so Envoy's health check
    # (every 1 s) or a Kubernetes readiness probe moves traffic away before the port
    # closes; then refuse new RPCs and give in-flight ones the grace period.
    health_servicer.enter_graceful_shutdown()
    readiness.stop()
    log.info("draining", extra={"drain_ms": settings.drain_ms, "grace_s": settings.shutdown_grace_s})
    time.sleep(settings.drain_ms / 1000)
    server.stop(settings.shutdown_grace_s).wait()
    stop_background()
    log.info("stopped")
