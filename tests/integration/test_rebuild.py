"""Rebuilding the book list from the log (services/reservation/rebuild.py, the admin
command an operator runs; docs/operations.md, "Rebuilding a read model from the log"):
a book list that was dropped comes back from the stock topic equal to what it was; a
rebuild while reservations go on loses none of their changes; a topic that no longer
holds its first events is refused, and nothing is replaced; the stock topic keeps every
event. And alert's restore (services/alert/restore.py): lost notifications come back as
they were, none is sent again, and an outcome alert has not applied yet is left to it.
On SQLite and PostgreSQL,
each on a stack of this module's own (the whole table is compared: no other test's
events in it)."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType
from playhouse import db_url

from services.alert.domain import RESTORED_UNSENT
from services.chassis import kafka
from services.chassis.settings import Settings
from tests.integration import flows, topics
from tests.integration.backends import BACKENDS
from tests.integration.conftest import launch
from tools.client import Gateway, eventually
from tools.token import mint_token

BOOK_LIST = "SELECT book_id, title, available, stock_version, update_time FROM book ORDER BY book_id"
QUEUES = "SELECT book_id, waiting FROM book_queue ORDER BY book_id"


@pytest.fixture(scope="module", params=BACKENDS)
def own(request, tmp_path_factory, infra):
    with launch(tmp_path_factory.mktemp(f"rebuild-{request.param}"), request.param, infra) as s:
        yield s


@pytest.fixture
def gateway(own) -> Gateway:
    return Gateway(f"http://127.0.0.1:{own.ports.envoy}")


@pytest.fixture
def token(own):
    """As conftest's (whose `manager` uses this one here), for this module's stack."""
    return lambda user, role="customer": mint_token(user, [role], key_dir=str(own.key_dir))


def sql(stack, *statements: str, service: str = "reservation") -> list[list[tuple]]:
    """Runs statements on a service's database, each in its own transaction."""
    database = db_url.connect(stack.database_url(service))
    try:
        found = []
        for statement in statements:
            with database.atomic():
                cursor = database.execute_sql(statement)
                found.append([tuple(map(str, row)) for row in cursor.fetchall()] if cursor.description else [])
        return found
    finally:
        database.close()


def stack_env(stack, env: dict | None = None, service: str = "reservation") -> dict:
    """The admin command's environment, as an operator runs it: the service's own settings."""
    return {**stack.service_env(service), **(env or {})}


def run_command(stack, env: dict | None = None, command: str = "services.reservation.rebuild"):
    """The admin command `command` (a module of the service it acts for), run to its end."""
    return subprocess.run(
        [sys.executable, "-m", command],
        env=stack_env(stack, env, command.split(".")[1]),
        capture_output=True,
        text=True,
        timeout=120,
    )


def book_list(gateway: Gateway) -> list[dict]:
    return gateway.get("/v1/books?pageSize=1000").json()["books"]


def test_a_dropped_book_list_is_rebuilt_from_the_log_equal_to_before(own, gateway, manager, token):
    alice, bob, carol = (token(u) for u in ("alice", "bob", "carol"))
    run = uuid.uuid4().hex[:6]
    books = {f"dune-{run}": 3, f"emma-{run}": 1, f"ulysses-{run}": 2}
    for book_id, quantity in books.items():
        receipt = {"quantity": quantity, "title": book_id.title()}
        flows.ok(gateway.post(f"/v1/stocks/{book_id}:receive", receipt, manager))
    eventually(lambda: len(book_list(gateway)) == 3, what="three books listed")
    # Each kind of stock event: reserved, released (a cancel), waitlisted (emma's one copy
    # is held), rejected (no waitlist asked), received again.
    held = flows.reserve(gateway, alice, f"dune-{run}")
    flows.settled(gateway, alice, held, "RESERVATION_STATUS_CONFIRMED")
    flows.cancel(gateway, alice, held)
    flows.settled(gateway, bob, flows.reserve(gateway, bob, f"emma-{run}"), "RESERVATION_STATUS_CONFIRMED")
    waiting = flows.reserve(gateway, carol, f"emma-{run}", waitlist=True)
    flows.settled(gateway, carol, waiting, "RESERVATION_STATUS_WAITLISTED")
    flows.settled(gateway, alice, flows.reserve(gateway, alice, f"emma-{run}"), "RESERVATION_STATUS_REJECTED")
    flows.ok(gateway.post(f"/v1/stocks/ulysses-{run}:receive", {"quantity": 4}, manager))
    own.wait_quiet()
    before_rows, before_queues = sql(own, BOOK_LIST, QUEUES)
    before_answer = book_list(gateway)
    assert [(b["bookId"], b["available"], b["waiting"]) for b in before_answer] == [
        (f"dune-{run}", 3, 0),
        (f"emma-{run}", 0, 1),
        (f"ulysses-{run}", 6, 0),
    ]

    sql(own, "DROP TABLE book_queue", "DROP TABLE book")  # the view is gone
    done = run_command(own)

    assert done.returncode == 0, done.stderr
    assert "done in" in done.stdout and "4 added, 0 removed, 0 changed" in done.stdout, done.stdout
    assert sql(own, BOOK_LIST, QUEUES) == [before_rows, before_queues]
    assert book_list(gateway) == before_answer
    # The service goes on with the rebuilt tables: the next change shows.
    flows.ok(gateway.post(f"/v1/stocks/dune-{run}:receive", {"quantity": 1}, manager))
    eventually(lambda: flows.book_available(gateway, f"dune-{run}") == 4, what="a change after the rebuild")


def test_a_rebuild_while_reservations_go_on_loses_none_of_their_changes(own, gateway, manager, token):
    run = uuid.uuid4().hex[:6]
    books = [f"load-{run}-{i}" for i in range(4)]
    for book_id in books:
        flows.ok(gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 50, "title": book_id}, manager))
    stop, made, failures = threading.Event(), [], []

    def customers(n: int) -> None:
        # Reserve, then cancel: stock events (reserved, released) keep coming while the rebuild runs.
        customer = token(f"load-{run}-{n}")
        i = n
        while not stop.is_set():
            try:
                rid = flows.reserve(gateway, customer, books[i % len(books)])
                made.append(rid)
                flows.settled(gateway, customer, rid, "RESERVATION_STATUS_CONFIRMED")
                flows.cancel(gateway, customer, rid)
            except Exception as exc:  # noqa: BLE001 - said by the assertion below
                failures.append(repr(exc))
                return
            i += 1

    threads = [threading.Thread(target=customers, args=(n,), daemon=True) for n in range(3)]
    for t in threads:
        t.start()
    late = [f"late-{run}-{i}" for i in range(2)]  # books whose only events come after the rebuild's last pass
    try:
        eventually(lambda: len(made) >= 6, what="reservations going on")
        rebuilding = subprocess.Popen(
            [sys.executable, "-m", "services.reservation.rebuild", "--confirm"],
            env=stack_env(own),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        said = []
        while not (said and "Switch over?" in said[-1]):
            line = rebuilding.stdout.readline()
            assert line, f"the rebuild ended before it asked: {said} {rebuilding.stderr.read()}"
            said.append(line)
        # It has read the log and waits: the service applies these to the live tables meanwhile.
        for book_id in late:
            flows.ok(gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 2, "title": book_id}, manager))
        for book_id in late:
            eventually(lambda b=book_id: gateway.get(f"/v1/books/{b}").status == 200, what=f"{book_id} listed")
        out, err = rebuilding.communicate("y\n", timeout=120)
        at_switch = len(made)
        eventually(lambda: len(made) >= at_switch + 6, what="reservations going on after the switch-over")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, failures
    assert rebuilding.returncode == 0, err
    assert "done in" in out, out
    own.wait_quiet()
    # What the list shows is stock's count of every book, those changed at the switch-over included,
    for book_id in books + late:
        assert flows.book_available(gateway, book_id) == flows.stock(gateway, manager, book_id)["available"]
    # and it is what the log makes of them: a second rebuild, now that all is quiet, changes nothing.
    again = run_command(own)
    assert again.returncode == 0, again.stderr
    assert "0 added, 0 removed, 0 changed" in again.stdout, again.stdout


def test_a_log_that_lost_its_first_events_is_refused_and_nothing_is_replaced(own):
    # A topic of its own that lost its first event (as retention deletes it), named as the stock topic.
    topic = f"{own.env['STOCK_TOPIC']}.cut"
    admin = own.admin()
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_type", b"x")]
    topics.produce_many(own, [(topic, "b", b"", headers)] * 2)
    (deleted,) = admin.delete_records([TopicPartition(topic, 0, 1)]).values()
    deleted.result(10)
    before = sql(own, BOOK_LIST)

    refused = run_command(own, {"STOCK_TOPIC": topic})

    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "refused, nothing changed" in refused.stderr and "no longer holds its first events" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sql(own, BOOK_LIST) == before


def retention(stack, topic: str) -> tuple[str, str]:
    (described,) = stack.admin().describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    configs = described.result(10)
    return configs["retention.ms"].value, configs["retention.bytes"].value


def test_the_stock_topic_keeps_every_event_and_an_older_one_is_set_so_at_start(own):
    assert retention(own, own.env["STOCK_TOPIC"]) == ("-1", "-1")  # as the services created it
    assert retention(own, own.env["RESERVATION_TOPIC"])[0] != "-1"  # the broker's 7 days
    older = f"{own.env['STOCK_TOPIC']}.older"
    own.admin().create_topics([NewTopic(older, 1, 1)])[older].result(10)
    assert retention(own, older)[0] != "-1"
    settings = Settings.from_env("reservation", 0, 0, env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{own.ports.broker}"})
    kafka.ensure_topics(settings, [older], keep_all=[older])  # what a service does at start
    assert retention(own, older) == ("-1", "-1")


NOTIFICATIONS = (
    "SELECT notification_id, reservation_id, user_id, book_id, kind, message, subject, language, channel, status,"
    " attempts, last_error, create_time, sent_time FROM notification ORDER BY notification_id"
)


def test_lost_notifications_are_restored_from_the_log_as_they_were_and_not_sent_again(own, gateway, manager, token):
    dave, erin = (token(u) for u in ("dave", "erin"))
    book_id = f"restore-{uuid.uuid4().hex[:6]}"
    flows.ok(gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Momo"}, manager))
    eventually(lambda: gateway.get(f"/v1/books/{book_id}").status == 200, what="the book listed")
    held = flows.reserve(gateway, dave, book_id)
    flows.settled(gateway, dave, held, "RESERVATION_STATUS_CONFIRMED")
    flows.settled(gateway, erin, flows.reserve(gateway, erin, book_id), "RESERVATION_STATUS_REJECTED")
    flows.cancel(gateway, dave, held)
    own.wait_quiet()
    eventually(
        lambda: (
            sql(own, "SELECT COUNT(*) FROM delivery WHERE status = 'PENDING'", service="alert") == [[("0",)]]
            and len(flows.notifications(gateway, dave)) == 2
        ),
        what="every notification delivered",
    )
    before = sql(own, NOTIFICATIONS, service="alert")[0]
    answer_before = flows.notifications(gateway, dave)

    sql(own, "DELETE FROM notification", service="alert")  # every notification lost; their deliveries' records stay
    done = run_command(own, command="services.alert.restore")

    assert done.returncode == 0, done.stderr
    assert f"{len(before)} notifications restored" in done.stdout, done.stdout
    assert sql(own, NOTIFICATIONS, service="alert")[0] == before
    assert flows.notifications(gateway, dave) == answer_before

    # One whose deliveries' records are lost too: restored, FAILED with the reason, and not sent again.
    lost = next(n["notificationId"] for n in answer_before if n["kind"] == "NOTIFICATION_KIND_CANCELED")
    sql(
        own,
        f"DELETE FROM delivery WHERE notification_id = '{lost}'",
        f"DELETE FROM notification WHERE notification_id = '{lost}'",
        service="alert",
    )
    again = run_command(own, command="services.alert.restore")
    assert again.returncode == 0 and "1 notifications restored" in again.stdout, (again.stdout, again.stderr)
    (restored,) = [n for n in flows.notifications(gateway, dave) if n["notificationId"] == lost]
    assert restored["status"] == "NOTIFICATION_STATUS_FAILED" and restored["message"]
    assert sql(own, f"SELECT last_error FROM notification WHERE notification_id = '{lost}'", service="alert") == [
        [(RESTORED_UNSENT,)]
    ]
    assert sql(own, f"SELECT COUNT(*) FROM delivery WHERE notification_id = '{lost}'", service="alert") == [[("0",)]]
    # Nothing is left to restore.
    assert "0 notifications restored" in run_command(own, command="services.alert.restore").stdout


def test_a_restore_leaves_the_outcomes_alert_has_not_applied_yet_to_alert(own, gateway, manager, token):
    """An outcome alert has not consumed yet is its consumer's to record, with its deliveries:
    restored first, it would keep its notification from ever being sent."""
    frank = token("frank")
    book_id = f"unread-{uuid.uuid4().hex[:6]}"
    flows.ok(gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Momo"}, manager))
    eventually(lambda: gateway.get(f"/v1/books/{book_id}").status == 200, what="the book listed")
    with flows.stopped(own, "alert"):
        rid = flows.reserve(gateway, frank, book_id)
        flows.settled(gateway, frank, rid, "RESERVATION_STATUS_CONFIRMED")  # StockReserved is on the topic
        done = run_command(own, command="services.alert.restore")
        assert done.returncode == 0, done.stderr
        assert "0 notifications restored" in done.stdout, done.stdout
    eventually(
        lambda: [n["status"] for n in flows.notifications(gateway, frank)] == ["NOTIFICATION_STATUS_SENT"],
        what="frank's notification sent by alert once it is back",
    )
