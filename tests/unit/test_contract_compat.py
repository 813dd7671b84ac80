"""Compatibility across versions: a consumer built from the previous contracts reads
what today's producers write. tests/data/contracts/previous.pb is protos/ of an earlier
commit as a descriptor set (`make contracts-snapshot REV=<commit>`, default HEAD;
refresh it when a contract change is released, see tests/data/contracts/README.md).
Every event type of that set is decoded, with google.protobuf's descriptor_pool and
message_factory built from that set alone, from a message the current descriptor set
fills in full: each field the older type knows must read back the producer's value.
Additive changes pass; a removed, renumbered or retyped field, or a removed type, fails
naming it (shown below on deliberately changed contracts). The same older types read
the real events of a flow in tests/integration/test_contract_events.py."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from tests import contracts

PREVIOUS = contracts.load(contracts.PREVIOUS_SET)
CURRENT = contracts.load()


def changed(change) -> descriptor_pb2.FileDescriptorSet:
    """The previous contracts with one change to StockReserved (or its file) made by `change`."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.CopyFrom(PREVIOUS)
    events = next(f for f in fds.file if f.name == "bookrental/stock/v1/events.proto")
    change(events, next(m for m in events.message_type if m.name == "StockReserved"))
    return fds


def field(message, name):
    return next(f for f in message.field if f.name == name)


def test_the_snapshot_holds_every_event_type_of_its_time():
    assert len(contracts.event_types(PREVIOUS)) >= 6


def test_current_producers_are_readable_by_consumers_of_the_previous_contracts():
    assert contracts.compat_problems(PREVIOUS, CURRENT) == []


def test_additive_changes_pass():
    def add(events, reserved):
        reserved.field.add(name="shelf_mark", number=99, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING, label=1)
        events.message_type.add(name="StockTeleported").field.add(name="book_id", number=1, type=9, label=1)

    assert contracts.compat_problems(PREVIOUS, changed(add)) == []


def test_a_retyped_field_fails_naming_it():
    def retype(_events, reserved):
        field(reserved, "available").type = descriptor_pb2.FieldDescriptorProto.TYPE_STRING

    assert contracts.compat_problems(PREVIOUS, changed(retype)) == [
        "bookrental.stock.v1.StockReserved.available (field 5): an older consumer reads no value; "
        "the current producer writes 'available-5' under another number or type"
    ]


def test_a_renumbered_field_fails_naming_it():
    def renumber(_events, reserved):
        field(reserved, "book_id").number = 30

    assert contracts.compat_problems(PREVIOUS, changed(renumber)) == [
        "bookrental.stock.v1.StockReserved.book_id (field 3): an older consumer reads no value; "
        "the current producer writes 'book_id-30' under another number or type"
    ]


def test_a_removed_field_or_type_fails_naming_it():
    def remove_field(_events, reserved):
        reserved.field.remove(field(reserved, "user_id"))

    assert contracts.compat_problems(PREVIOUS, changed(remove_field)) == [
        "bookrental.stock.v1.StockReserved.user_id (field 2): an older consumer reads no value; "
        "the current producer writes 'none' (the field is gone)"
    ]

    def remove_type(events, reserved):
        events.message_type.remove(reserved)

    assert contracts.compat_problems(PREVIOUS, changed(remove_type)) == [
        "bookrental.stock.v1.StockReserved is gone: consumers built from the older contracts wait for it in vain"
    ]
