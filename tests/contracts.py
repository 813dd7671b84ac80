"""The contracts as the tests read them, each from the one place it is written:

- RPCs, their REST routes and the event messages: the descriptor set built from
  protos/ (build/bookrental.pb, `make proto`);
- who may call what: the authorization matrix in docs/security.md §3 (the tests
  parse it; nothing else lists the expected answers);
- which topic carries an event, who produces and consumes it, and its key: the
  events table of docs/architecture.md §4.

Each `*_problems` function returns sentences naming what is missing, so a test can
fail with them and a unit test can show them on a deliberately broken input."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTOR_SET = ROOT / "build" / "bookrental.pb"
# The contracts of the previous release, which deployed consumers may still run: made by
# `make contracts-snapshot` (tools/contract_snapshot.py) from a commit's protos/.
PREVIOUS_SET = ROOT / "tests" / "data" / "contracts" / "previous.pb"
SECURITY_DOC = ROOT / "docs" / "security.md"
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"
CALLERS = ("anonymous", "customer", "other customer", "stock_manager")


def load(path: Path | str = DESCRIPTOR_SET) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(Path(path).read_bytes())


# -- RPCs and routes ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Route:
    rpc: str  # "bookrental.stock.v1.StockService/ReceiveStock"
    verb: str  # "POST"
    template: str  # "/v1/stocks/{book_id}:receive"
    body: str  # "*" or ""
    request: str  # full name of the request message
    response: str  # full name of the response message

    @property
    def method(self) -> str:
        return self.rpc.rpartition("/")[2]

    @property
    def variables(self) -> list[str]:
        return re.findall(r"\{([^}=]+)", self.template)

    def __str__(self) -> str:
        return f"{self.rpc} ({self.verb} {self.template})"


def own_services(fds):
    """(file, service) of every bookrental.* service (not google.*, not bench's echo)."""
    for f in fds.file:
        if f.package.startswith("bookrental."):
            for service in f.service:
                yield f, service


def rpc_names(fds) -> list[str]:
    return [f"{f.package}.{s.name}/{m.name}" for f, s in own_services(fds) for m in s.method]


def routes(fds) -> list[Route]:
    """Every REST binding (the rule and its additional_bindings) of every RPC."""
    out = []
    for f, service in own_services(fds):
        for m in service.method:
            http = m.options.Extensions[annotations_pb2.http]
            for b in [http, *http.additional_bindings]:
                verb = b.WhichOneof("pattern")
                if verb in (None, "custom"):
                    continue
                out.append(
                    Route(
                        f"{f.package}.{service.name}/{m.name}",
                        verb.upper(),
                        getattr(b, verb),
                        b.body,
                        m.input_type.lstrip("."),
                        m.output_type.lstrip("."),
                    )
                )
    return out


def authorization_matrix(text: str | None = None) -> dict[str, dict]:
    """docs/security.md §3: RPC method name -> {"rest": "GET /v1/books", "expect": (status per caller)}."""
    text = SECURITY_DOC.read_text() if text is None else text
    matrix = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|\s*`([^`]*)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|", line)
        if m and m.group(1)[0].isupper():
            matrix[m.group(1)] = {
                "rest": m.group(2),
                "expect": tuple(int(re.search(r"\d{3}", c).group()) for c in m.groups()[2:]),
            }
    return matrix


def route_problems(fds, matrix: dict[str, dict]) -> list[str]:
    """What keeps the routes from being tested as the contract says: an RPC without a
    REST route, a route without its row in the authorization matrix, a row naming no
    RPC or another route, two services with one method name (the matrix is keyed by it)."""
    problems = []
    found = routes(fds)
    routed = {r.rpc for r in found}
    for name in rpc_names(fds):
        if name not in routed:
            problems.append(f"{name} has no google.api.http route: every RPC must be reachable through the gateway")
    methods = [n.rpartition("/")[2] for n in rpc_names(fds)]
    for dup in sorted({m for m in methods if methods.count(m) > 1}):
        problems.append(f"method name {dup} is used by two services; the authorization matrix cannot tell them apart")
    for r in found:
        row = matrix.get(r.method)
        if row is None:
            problems.append(f"{r} has no entry in the authorization matrix (docs/security.md §3)")
        elif row["rest"] != f"{r.verb} {r.template}":
            problems.append(f"{r}: the authorization matrix says {row['rest']!r}")
    for method in sorted(set(matrix) - set(methods)):
        problems.append(f"the authorization matrix lists {method}, which no RPC in protos/ has")
    return problems


# -- events ------------------------------------------------------------------------------


def event_types(fds) -> list[str]:
    """Full names of the messages in protos/*/events.proto."""
    return [
        f"{f.package}.{m.name}"
        for f in fds.file
        if f.package.startswith("bookrental.") and f.name.endswith("/events.proto")
        for m in f.message_type
    ]


@dataclasses.dataclass(frozen=True)
class Topic:
    name: str  # "bookrental.stock.v1"
    producer: str  # ce_source: the producing service
    consumers: tuple[str, ...]
    key: str  # the field of the event the message is keyed by
    types: tuple[str, ...]  # full names of the event messages


def table_cells(line: str) -> list[str]:
    """The cells of one markdown table row."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def event_topics(text: str | None = None) -> dict[str, Topic]:
    """docs/architecture.md §4's table: event type -> its topic (the .dlq row is not an event topic)."""
    text = ARCHITECTURE_DOC.read_text() if text is None else text
    out = {}
    for line in text.splitlines():
        cells = table_cells(line)
        if len(cells) != 5 or not re.fullmatch(r"`bookrental\.\w+\.v\d+`", cells[0]):
            continue
        name = cells[0].strip("`")
        types, package = [], None
        for t in re.findall(r"`([\w.]+)`", cells[4]):
            if t.startswith("."):  # ".StockReserved": the package of the one before
                t = package + t
            package = t.rpartition(".")[0]
            types.append(t)
        consumers = tuple(c.split()[0] for c in cells[2].split(","))  # "alert (`alert`)" -> "alert"
        topic = Topic(name, cells[1], consumers, re.fullmatch(r"`(\w+)`", cells[3]).group(1), tuple(types))
        for t in types:
            out[t] = topic
    return out


def event_problems(fds, documented: dict[str, Topic], tested: set[str]) -> list[str]:
    """An event type without a producer test, or not on the architecture page (and the reverse)."""
    declared = event_types(fds)
    problems = [
        f"event type {t} has no producer test: add it to PRODUCED in tests/integration/test_contract_events.py"
        for t in declared
        if t not in tested
    ]
    problems += [
        f"event type {t} is not in docs/architecture.md §4 (its topic, producer and key)"
        for t in declared
        if t not in documented
    ]
    problems += [
        f"docs/architecture.md §4 lists {t}, which no events.proto declares"
        for t in sorted(set(documented) - set(declared))
    ]
    problems += [f"PRODUCED has a test for {t}, which no events.proto declares" for t in sorted(tested - set(declared))]
    return problems


# -- decoding with a given descriptor set (an older one, for compatibility) ---------------


def message_classes(fds) -> dict[str, type]:
    """Full name -> message class, built from this descriptor set alone (its own pool,
    so an older set does not meet the generated code's classes)."""
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    return {
        f"{f.package}.{m.name}": message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{f.package}.{m.name}"))
        for f in fds.file
        for m in f.message_type
    }


def sample(cls, depth: int = 0):
    """A message of `cls` with every field set to a value that is not its default (a
    repeated field to two), so a reader that loses a field shows it."""
    msg = cls()
    d = msg.DESCRIPTOR
    if d.full_name == "google.protobuf.Timestamp":
        msg.seconds, msg.nanos = 1_700_000_000, 123_000_000
        return msg
    for f in d.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            continue  # no maps in our contracts; a map would need its key and value types
        if f.type == f.TYPE_MESSAGE:
            if depth < 3:
                items = [sample(message_factory.GetMessageClass(f.message_type), depth + 1)]
                if f.is_repeated:
                    getattr(msg, f.name).extend(items * 2)
                else:
                    getattr(msg, f.name).CopyFrom(items[0])
            continue
        if f.type == f.TYPE_STRING:
            value = f"{f.name}-{f.number}"
        elif f.type == f.TYPE_BYTES:
            value = f"{f.name}".encode()
        elif f.type == f.TYPE_BOOL:
            value = True
        elif f.type in (f.TYPE_FLOAT, f.TYPE_DOUBLE):
            value = f.number + 0.5
        elif f.type == f.TYPE_ENUM:
            value = f.enum_type.values[-1].number
        else:
            value = 100 + f.number
        if f.is_repeated:
            getattr(msg, f.name).extend([value, value])
        else:
            setattr(msg, f.name, value)
    return msg


def compat_problems(older_fds, current_fds) -> list[str]:
    """What a consumer built from `older_fds` would get wrong reading the events a
    producer built from `current_fds` writes: a type it subscribes to that is gone, or
    a field it knows that it reads with another value or none (removed, renumbered,
    retyped). New types and new fields are fine: it skips them."""
    older, current = message_classes(older_fds), message_classes(current_fds)
    problems = []
    for name in event_types(older_fds):
        if name not in current:
            problems.append(f"{name} is gone: consumers built from the older contracts wait for it in vain")
            continue
        written = sample(current[name])
        wrote = json_format.MessageToDict(written, preserving_proto_field_name=True)
        try:
            read = json_format.MessageToDict(
                older[name].FromString(written.SerializeToString()), preserving_proto_field_name=True
            )
        except Exception as exc:  # noqa: BLE001 - said as the problem
            problems.append(f"{name}: an older consumer cannot decode it: {exc}")
            continue
        for f in older[name].DESCRIPTOR.fields:
            if f.name not in read:
                problems.append(
                    f"{name}.{f.name} (field {f.number}): an older consumer reads no value; "
                    f"the current producer writes {wrote.get(f.name, 'none')!r} "
                    f"{'under another number or type' if f.name in wrote else '(the field is gone)'}"
                )
            elif read[f.name] != wrote.get(f.name):
                problems.append(
                    f"{name}.{f.name} (field {f.number}): an older consumer reads {read[f.name]!r}, "
                    f"the current producer wrote {wrote.get(f.name)!r}"
                )
    return problems
