"""The descriptor set (`make proto`'s build/bookrental.pb), parsed once per rendering:
its messages by full name and its RPCs in the order the files declare them, each with
its REST bindings and whether protos/ marks it public."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

# Imported before any parse, so the option is read as itself rather than kept as an unknown field.
from bookrental.api.v1 import options_pb2


@dataclasses.dataclass(frozen=True)
class Binding:
    verb: str  # "GET", "POST" ...
    template: str  # "/v1/stocks/{book_id}:receive"
    body: str  # "*" or ""


@dataclasses.dataclass(frozen=True)
class Method:
    package: str  # "bookrental.stock.v1"
    service: str  # "StockService"
    name: str  # "ReceiveStock"
    input_type: str  # full name of the request message
    public: bool  # option (bookrental.api.v1.public) = true: no token needed
    bindings: tuple[Binding, ...]

    @property
    def full_service(self) -> str:
        return f"{self.package}.{self.service}"

    @property
    def path(self) -> str:
        """The gRPC path, as routes and jwt_authn match it: /bookrental.stock.v1.StockService/ReceiveStock"""
        return f"/{self.full_service}/{self.name}"


class Descriptor:
    def __init__(self, fds: descriptor_pb2.FileDescriptorSet):
        self.fds = fds
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.methods: list[Method] = []
        for f in fds.file:
            self._collect(f.package, f.message_type)
            for service in f.service:
                for m in service.method:
                    # protoc's .pyi types the extension as a plain FieldDescriptor, which Extensions[] refuses
                    public: bool = m.options.Extensions[options_pb2.public]  # type: ignore[index]
                    self.methods.append(
                        Method(f.package, service.name, m.name, m.input_type.lstrip("."), public, _bindings(m))
                    )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Descriptor:
        return cls(descriptor_pb2.FileDescriptorSet.FromString(Path(path).read_bytes()))

    def _collect(self, prefix: str, msgs) -> None:
        for m in msgs:
            self.messages[f"{prefix}.{m.name}"] = m
            self._collect(f"{prefix}.{m.name}", m.nested_type)

    def methods_of(self, full_service: str) -> list[Method]:
        return [m for m in self.methods if m.full_service == full_service]


def _bindings(method: descriptor_pb2.MethodDescriptorProto) -> tuple[Binding, ...]:
    # protoc's .pyi types the extension as a plain FieldDescriptor, which Extensions[] refuses
    http: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]  # type: ignore[index]
    out = []
    for b in [http, *http.additional_bindings]:
        verb = b.WhichOneof("pattern")
        if verb in (None, "custom"):
            continue
        out.append(Binding(verb.upper(), getattr(b, verb), b.body))
    return tuple(out)
