"""The alert service as customer messaging, on its own stack (alert and Envoy on
the session's broker) wired to real local providers: an SMTP server with STARTTLS and AUTH,
and a messenger gateway that checks the HMAC signature. Stock outcomes are
produced straight onto the stock topic, as the stock service would.

Short breaker and retry timings (see ENV) keep the outage test near 30 s."""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Producer

from bookrental.stock.v1 import events_pb2 as stock_events
from services.chassis import events
from tests.integration.alert_providers import MailServer, MessengerGateway
from tests.integration.conftest import BACKENDS, require_backend
from tools import pgdb
from tools.client import Gateway, eventually
from tools.devkeys import ensure_keys
from tools.devstack import Ports, Stack
from tools.token import mint_token

SECRET = "test-secret-4f1d"
ENV = {
    "BREAKER_FAIL_MAX": "3",
    "BREAKER_RESET_TIMEOUT_S": "2",
    "DELIVERY_MAX_ATTEMPTS": "10",
    "DELIVERY_BACKOFF_S": "0.2",
    "DELIVERY_BACKOFF_MAX_S": "2",
    "DISPATCH_POLL_S": "0.1",
    "MESSENGER_TIMEOUT_S": "3",  # a loaded machine can take over 1 s to answer locally
    "SMTP_TIMEOUT_S": "5",
    "DRAIN_MS": "200",
}


class AlertStack:
    def __init__(self, stack: Stack, mail: MailServer, messenger: MessengerGateway):
        self.stack, self.mail, self.messenger = stack, mail, messenger
        self.gateway = Gateway(f"http://127.0.0.1:{stack.ports.envoy}")
        self.producer = Producer(
            {"bootstrap.servers": f"127.0.0.1:{stack.ports.broker}", "enable.idempotence": True, "linger.ms": 5}
        )
        self.produced_at: dict[str, float] = {}  # reservation id -> when its outcome was produced

    def token(self, user: str) -> str:
        return mint_token(user, ["customer"], key_dir=str(self.stack.key_dir))

    def set_preferences(self, user: str, **prefs) -> dict:
        resp = self.gateway.call("PATCH", "/v1/preferences", self.token(user), body={"preferences": prefs})
        assert resp.status == 200, resp
        return resp.json()["preferences"]

    def outcome(self, user: str, kind: str = "StockReserved", title: str = "Demian", **extra) -> str:
        """Produces one stock outcome for `user`; returns its reservation id."""
        reservation_id = str(uuid.uuid4())
        book_id = f"book-{uuid.uuid4().hex[:8]}"
        msg = getattr(stock_events, kind)(
            reservation_id=reservation_id, user_id=user, book_id=book_id, title=title, **extra
        )
        self.producer.produce(
            self.stack.env["STOCK_TOPIC"],
            key=book_id.encode(),
            value=msg.SerializeToString(),
            headers=events.headers(
                events.new_event_id(), msg.DESCRIPTOR.full_name, "test", events.now_iso(), reservation_id
            ),
        )
        self.produced_at[reservation_id] = time.time()
        return reservation_id

    def flush(self) -> None:
        assert self.producer.flush(10) == 0

    def notifications(self, user: str) -> list[dict]:
        resp = self.gateway.get("/v1/notifications?pageSize=100", self.token(user))
        assert resp.status == 200, resp
        return resp.json()["notifications"]

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stack.ports.alert_metrics}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name: str, **labels) -> float:
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        match = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", self.metrics(), re.M)
        return float(match.group(1)) if match else 0.0

    def log_lines(self, message: str) -> list[dict]:
        lines = (self.stack.logs / "alert.log").read_text(errors="replace").splitlines()
        return [j for j in (json.loads(line) for line in lines if line.startswith("{")) if j.get("message") == message]


@contextlib.contextmanager
def alert_stack(workdir, backend: str, infra, env: dict, mail=None, messenger=None):
    """The alert service alone (and Envoy) on the session's broker, with topics, group
    and database of its own; the channels' providers are the caller's."""
    require_backend(backend, infra)
    key_dir = workdir / "keys"
    ensure_keys(key_dir)
    run = uuid.uuid4().hex[:8]
    env = {
        **ENV,
        "STOCK_TOPIC": f"bookrental.stock.v1.a{run}",
        "RESERVATION_TOPIC": f"bookrental.reservation.v1.a{run}",
        **env,
    }
    urls = pgdb.create(run, ["alert"]) if backend == "postgresql" else {}
    ports = Ports.free()
    ports.broker = infra.broker_port
    stack = Stack(workdir, ports, env, database_urls=urls, key_dir=key_dir, broker_running=True, group_suffix=run)
    started = None
    try:
        stack.start_service("alert")
        stack.start_envoy()
        stack.wait_consumers_joined(["alert"])
        started = AlertStack(stack, mail, messenger)
        yield started
    finally:
        if started:
            started.producer = None  # destroyed now, not left to the end of the session
        stack.stop()
        print(f"\nalert stack ({backend}) logs: {stack.logs}")
        if urls:
            pgdb.drop(run, ["alert"])


@pytest.fixture(scope="module", params=BACKENDS)
def alert(request, tmp_path_factory, infra):
    backend = request.param
    workdir = tmp_path_factory.mktemp(f"alert-stack-{backend}")
    mail = MailServer(workdir, "alerts", "smtp-pass")
    messenger = MessengerGateway(SECRET.encode())
    env = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail.port),
        "SMTP_STARTTLS": "true",
        "SMTP_USERNAME": "alerts",
        "SMTP_PASSWORD": "smtp-pass",
        "SMTP_CA_FILE": str(mail.cert_path),
        "SMTP_FROM": "Bookrental <alerts@library.example>",
        "MESSENGER_URL": messenger.url,
        "MESSENGER_SECRET": SECRET,
    }
    try:
        with alert_stack(workdir, backend, infra, env, mail, messenger) as started:
            yield started
    finally:
        mail.stop()
        messenger.stop()


def new_user(prefix="cust"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def phone_number():
    return "+8210" + str(uuid.uuid4().int)[:8]


def all_sent(alert, user, count):
    notes = alert.notifications(user)
    return notes if len(notes) == count and all(n["status"] == "NOTIFICATION_STATUS_SENT" for n in notes) else None


# -- preferences ----------------------------------------------------------------------


def test_a_customer_sets_and_reads_their_preferences(alert):
    user = new_user()
    got = alert.gateway.get("/v1/preferences", alert.token(user))
    assert got.status == 200, got
    prefs = got.json()["preferences"]
    assert (prefs["email"], prefs["phone"], prefs["channels"], prefs["language"]) == ("", "", [], "ko")
    prefs = alert.set_preferences(
        user, email="reader@example.com", phone="+821012345678", channels=["email", "messenger"], language="en"
    )
    assert prefs["email"] == "reader@example.com" and prefs["channels"] == ["email", "messenger"]
    # Without a mask only the fields given change; with one, a field can be cleared.
    alert.set_preferences(user, language="ko")
    resp = alert.gateway.call(
        "PATCH",
        "/v1/preferences",
        alert.token(user),
        body={"preferences": {"channels": ["email"]}, "updateMask": "phone,channels"},
    )
    assert resp.status == 200, resp
    prefs = alert.gateway.get("/v1/preferences", alert.token(user)).json()["preferences"]
    assert (prefs["email"], prefs["phone"], prefs["channels"], prefs["language"]) == (
        "reader@example.com",
        "",
        ["email"],
        "ko",
    )
    # Someone else sees their own (defaults), never this customer's.
    other = alert.gateway.get("/v1/preferences", alert.token(new_user())).json()["preferences"]
    assert other["email"] == "" and other["channels"] == []


@pytest.mark.parametrize(
    "prefs, field",
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b.com\r\nBcc: victim@example.com"}, "email"),
        ({"phone": "010-1234-5678"}, "phone"),
        ({"language": "fr"}, "language"),
        ({"channels": ["sms"]}, "channels"),
        ({"channels": ["messenger"]}, "channels"),  # no phone number to send to
    ],
)
def test_bad_preferences_are_a_400_naming_the_field(alert, prefs, field):
    user = new_user()
    resp = alert.gateway.call("PATCH", "/v1/preferences", alert.token(user), body={"preferences": prefs})
    assert resp.status == 400, resp
    assert resp.json()["message"].startswith(f"{field}: "), resp
    assert alert.gateway.get("/v1/preferences", alert.token(user)).json()["preferences"]["channels"] == []


def test_preferences_need_a_signed_in_customer(alert):
    assert alert.gateway.get("/v1/preferences").status == 401
    assert alert.gateway.call("PATCH", "/v1/preferences", body={"preferences": {"language": "en"}}).status == 401


# -- delivery -------------------------------------------------------------------------


def test_a_customer_with_no_contact_gets_only_the_log_channel(alert):
    user = new_user("nocontact")
    rid = alert.outcome(user, "StockReserved", title="데미안")
    alert.flush()
    (note,) = eventually(lambda: all_sent(alert, user, 1), timeout=60, what="log notification SENT")
    assert note["channel"] == "log" and [d["channel"] for d in note["deliveries"]] == ["log"]
    assert note["language"] == "ko" and "「데미안」" in note["message"] and rid in note["message"]
    logged = [line for line in alert.log_lines("notification delivered") if line.get("reservation_id") == rid]
    assert len(logged) == 1 and logged[0]["channel"] == "log"
    assert not any(rid in r["body"] for rs in alert.mail.accepted.values() for r in rs)
    assert not any(r["reservation_id"] == rid for rs in alert.messenger.accepted.values() for r in rs)


def test_each_chosen_channel_delivers_once_in_the_customers_language(alert):
    user, address, phone = new_user("en"), f"{uuid.uuid4().hex[:8]}@example.com", phone_number()
    alert.set_preferences(user, email=address, phone=phone, channels=["email", "messenger"], language="en")
    confirmed = alert.outcome(user, "StockReserved", title="Dune")
    rejected = alert.outcome(user, "StockRejected", title="Dune", reason="out of stock: no copy left")
    alert.flush()
    notes = eventually(lambda: all_sent(alert, user, 2), timeout=60, what="both notifications SENT on every channel")
    for n in notes:
        assert n["channel"] == "log,email,messenger" and n["language"] == "en"
        assert sorted(d["channel"] for d in n["deliveries"]) == ["email", "log", "messenger"]
        assert all(
            d["status"] == "NOTIFICATION_STATUS_SENT" and d["attempts"] == 1 and d["sendTime"] for d in n["deliveries"]
        )

    mails = alert.mail.to(address)
    assert len(mails) == 2 and all(len(r) == 1 for r in mails.values())
    by_subject = {r[0]["subject"]: r[0] for r in mails.values()}
    assert set(by_subject) == {"Reservation confirmed: Dune", "Reservation not confirmed: Dune"}
    assert confirmed in by_subject["Reservation confirmed: Dune"]["body"]
    assert "out of stock" in by_subject["Reservation not confirmed: Dune"]["body"]
    assert all(r[0]["tls"] and r[0]["language"] == "en" for r in mails.values())

    texts = alert.messenger.to(phone)
    assert len(texts) == 2 and all(len(r) == 1 for r in texts.values())
    assert {r[0]["reservation_id"] for r in texts.values()} == {confirmed, rejected}
    assert all(r[0]["idempotency_key"] == r[0]["delivery_id"] for r in texts.values())
    assert alert.messenger.bad_signatures == 0


def test_a_hanging_provider_is_cut_off_by_the_timeout_and_the_message_retried(alert):
    user, phone = new_user("hang"), phone_number()
    alert.set_preferences(user, phone=phone, channels=["messenger"])
    alert.messenger.mode = "hang"
    try:
        start = time.monotonic()
        alert.outcome(user)
        alert.flush()

        def timed_out():
            (n,) = alert.notifications(user) or [None]
            d = n and next(d for d in n["deliveries"] if d["channel"] == "messenger")
            return d if d and d["attempts"] >= 1 else None

        delivery = eventually(timed_out, timeout=20, interval=0.05, what="the hung attempt cut off")
        cut_after = time.monotonic() - start
    finally:
        alert.messenger.mode = "ok"
    assert delivery["status"] == "NOTIFICATION_STATUS_PENDING" and "timed out" in delivery["lastError"]
    assert cut_after < float(ENV["MESSENGER_TIMEOUT_S"]) + 5.0, cut_after  # 1 s timeout, not the 30 s hang
    (note,) = eventually(lambda: all_sent(alert, user, 1), timeout=60, what="retry after the hang SENT")
    assert len(alert.messenger.to(phone)) == 1
    print(f"\nhung provider cut off after {cut_after:.2f} s (MESSENGER_TIMEOUT_S={ENV['MESSENGER_TIMEOUT_S']})")


def _time(rfc3339: str) -> float:
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _outage(alert, customers, down_at, outage_s, refused_before):
    """While the messenger provider fails: outcomes arrive, are recorded at once, the
    breaker opens and email still goes out. Returns the calls the provider got."""
    for burst in range(10):  # outcomes keep arriving during the outage
        for user, _, _ in customers:
            alert.outcome(user, ("StockReserved", "StockReleased")[burst % 2], title=f"Book {burst}")
        alert.flush()
        time.sleep(0.5)

    def recorded():
        notes = [n for user, _, _ in customers for n in alert.notifications(user)]
        return notes if len(notes) == 100 else None

    # The consumer is not held up by delivery: every outcome is recorded while the provider is down.
    notes = eventually(
        recorded,
        timeout=max(0.5, down_at + outage_s - 1 - time.time()),
        interval=0.25,
        what="all 100 outcomes recorded while the provider is down",
    )
    assert all(n["status"] == "NOTIFICATION_STATUS_PENDING" for n in notes)
    lags = sorted(_time(n["createTime"]) - alert.produced_at[n["reservationId"]] for n in notes)

    eventually(
        lambda: alert.metric("bookrental_alert_breaker_state", channel="messenger") == 2,
        timeout=10,
        what="messenger breaker open (state 2 on /metrics)",
    )
    assert alert.metric("bookrental_alert_breaker_state", channel="email") == 0

    time.sleep(max(0.0, down_at + outage_s - 0.5 - time.time()))  # the rest of the outage
    assert alert.metric("bookrental_alert_pending_deliveries", channel="messenger") == 100
    # Email has its own breaker and dispatcher: it goes on while the messenger is down (all of
    # it on an idle machine; the bound leaves room for a machine shared with other test runs).
    emailed = len(
        [
            d
            for user, _, _ in customers
            for n in alert.notifications(user)
            for d in n["deliveries"]
            if d["channel"] == "email" and d["status"] == "NOTIFICATION_STATUS_SENT"
        ]
    )
    assert emailed >= 50, emailed
    time.sleep(max(0.0, down_at + outage_s - time.time()))
    return alert.messenger.refused - refused_before, lags, emailed


def test_a_provider_outage_opens_the_breaker_and_every_message_is_sent_once_after_recovery(alert):
    """The messenger provider fails for 12 s (six reset timeouts) while 100 outcomes arrive for 10
    customers who chose email and messenger."""
    outage_s, fail_max, reset_s = 12.0, int(ENV["BREAKER_FAIL_MAX"]), float(ENV["BREAKER_RESET_TIMEOUT_S"])
    customers = [(new_user("outage"), f"{uuid.uuid4().hex[:8]}@example.com", phone_number()) for _ in range(10)]
    for i, (user, address, phone) in enumerate(customers):
        alert.set_preferences(
            user, email=address, phone=phone, channels=["email", "messenger"], language=("ko", "en")[i % 2]
        )
    opened_before = alert.metric("bookrental_alert_breaker_opened_total", channel="messenger")
    refused_before = alert.messenger.refused

    alert.messenger.mode = "fail"
    down_at = time.time()
    try:
        attempted_during_outage, lags, emailed = _outage(alert, customers, down_at, outage_s, refused_before)
    finally:
        alert.messenger.mode = "ok"
    up_at = time.time()
    # The breaker let through fail_max calls, then one trial per reset timeout: far fewer than 100.
    # (The outage lasts a little over outage_s when the checks above run slowly.)
    assert attempted_during_outage <= fail_max + (up_at - down_at) / reset_s + 2, attempted_during_outage

    eventually(
        lambda: all(all_sent(alert, user, 10) for user, _, _ in customers),
        timeout=90,
        interval=0.5,
        what="every notification SENT after recovery",
    )
    notes = [n for user, _, _ in customers for n in alert.notifications(user)]
    last_sent = max(_time(d["sendTime"]) for n in notes for d in n["deliveries"] if d["channel"] == "messenger")
    for _user, address, phone in customers:
        texts, mails = alert.messenger.to(phone), alert.mail.to(address)
        assert len(texts) == 10 and all(len(r) == 1 for r in texts.values()), texts  # exactly once each
        assert len(mails) == 10 and all(len(r) == 1 for r in mails.values()), mails
    assert alert.metric("bookrental_alert_breaker_state", channel="messenger") == 0
    assert alert.metric("bookrental_alert_breaker_opened_total", channel="messenger") > opened_before
    assert alert.metric("bookrental_alert_pending_deliveries", channel="messenger") == 0

    changes = [
        (_time(line["time"]), line["to"])
        for line in alert.log_lines("breaker state changed")
        if line["channel"] == "messenger" and _time(line["time"]) >= down_at
    ]
    first_open = next(t for t, to in changes if to == "open")
    closed = next(t for t, to in changes if to == "closed" and t >= up_at)
    print(
        f"\noutage {up_at - down_at:.1f} s, fail_max={fail_max}, reset_timeout={reset_s:.0f} s: breaker open "
        f"{first_open - down_at:.2f} s after the outage began, closed {closed - up_at:.2f} s after recovery "
        f"(open or half-open for {closed - first_open:.1f} s); {attempted_during_outage} messenger calls during "
        f"the outage for 100 messages; outcome produced -> notification recorded: median {lags[50] * 1000:.0f} ms, "
        f"max {lags[-1] * 1000:.0f} ms; {emailed} of 100 emails sent during the outage; "
        f"last messenger SENT {last_sent - up_at:.2f} s after recovery"
    )


def test_the_alert_service_restarted_mid_backlog_resumes_without_duplicates(alert):
    customers = [(new_user("restart"), phone_number()) for _ in range(5)]
    for user, phone in customers:
        alert.set_preferences(user, phone=phone, channels=["messenger"])
    alert.messenger.delay_s = 0.1  # a slow provider: a backlog builds up
    try:
        for i in range(60):
            alert.outcome(customers[i % 5][0])
        alert.flush()

        def received():
            return sum(len(alert.messenger.to(phone)) for _, phone in customers)

        eventually(lambda: received() >= 10, timeout=60, what="delivery under way")
        alert.stack.stop_process("alert")  # SIGTERM: finishes the delivery in hand, leaves the rest
        at_stop = received()
        assert at_stop < 60, "the backlog was gone before the restart"
        alert.stack.start_service("alert")
        eventually(
            lambda: all(all_sent(alert, user, 12) for user, _ in customers),
            timeout=90,
            interval=0.5,
            what="the backlog delivered after the restart",
        )
    finally:
        alert.messenger.delay_s = 0.0
    for _, phone in customers:
        texts = alert.messenger.to(phone)
        assert len(texts) == 12 and all(len(r) == 1 for r in texts.values()), texts
    print(f"\nrestart: {at_stop} of 60 delivered before the stop, the rest after it, none twice")
