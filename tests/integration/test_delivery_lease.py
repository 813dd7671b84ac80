"""The one window where a message may go out twice (README, "Exactly once per channel,
and the window that remains"): the alert process dies while the provider is taking the
message, after the dispatcher claimed it and before it recorded SENT. The claim is a
lease of 6x the channel's timeout. The promise: the restarted service does not send it
again before that lease ends, then sends it exactly once more, with the same
Idempotency-Key, so the provider can drop the repeat.

Its own alert stack (SQLite; the lease is the channel's, not the database's) with a
short messenger timeout, so the lease is 12 s instead of 30 s."""
from __future__ import annotations

import json
import signal
import threading
import time
import uuid

import pytest

from tests.integration.alert_providers import JsonHandler, serve
from tests.integration.test_alert_channels import SECRET, alert_stack
from tools.client import eventually

TIMEOUT_S = 2.0
LEASE_S = 6 * TIMEOUT_S  # services/alert/bootstrap.py: lease_s = 6 x the channel's timeout


class HoldingProvider:
    """Takes every message (records its Idempotency-Key and time); the first one is
    held unanswered until `release` is set, as a provider still at work would."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.first_arrived, self.release = threading.Event(), threading.Event()
        provider = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with provider.lock:
                    provider.received.append({"to": body["to"], "key": self.headers.get("idempotency-key"),
                                              "time": time.time()})
                    first = len(provider.received) == 1
                if first:
                    provider.first_arrived.set()
                    provider.release.wait(60)
                try:
                    self.answer(200, {"ok": True})
                except OSError:
                    pass  # the caller was killed while we held its message

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"

    def receipts(self) -> list[dict]:
        with self.lock:
            return list(self.received)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def messenger(tmp_path, infra):
    provider = HoldingProvider()
    try:
        with alert_stack(tmp_path, "sqlite", infra, {"MESSENGER_URL": provider.url, "MESSENGER_SECRET": SECRET,
                                                     "MESSENGER_TIMEOUT_S": str(TIMEOUT_S)}) as started:
            started.provider = provider
            yield started
    finally:
        provider.stop()


def test_a_message_in_flight_when_alert_is_killed_is_sent_once_more_after_its_lease(messenger):
    alert, provider = messenger, messenger.provider
    user, phone = f"lease-{uuid.uuid4().hex[:8]}", "+8210" + str(uuid.uuid4().int)[:8]
    alert.set_preferences(user, phone=phone, channels=["messenger"])
    alert.outcome(user)
    alert.flush()
    assert provider.first_arrived.wait(30), "the provider never received the message"

    alert.stack.send_signal("alert", signal.SIGKILL)  # mid call: claimed, taken, not recorded
    alert.stack.procs["alert"].wait(10)
    provider.release.set()
    first = provider.receipts()[0]
    alert.stack.start_service("alert")
    ready = time.time()
    assert ready < first["time"] + LEASE_S - 2, (
        f"alert took {ready - first['time']:.1f} s to come back: the lease could not be seen holding the repeat")

    sent = eventually(lambda: (n := alert.notifications(user)) and n[0]["status"] == "NOTIFICATION_STATUS_SENT" and n,
                      timeout=LEASE_S * 3, what="the held message sent after its lease")
    eventually(lambda: alert.metric("bookrental_alert_pending_deliveries", channel="messenger") == 0,
               what="no messenger delivery pending")
    receipts = provider.receipts()
    assert [r["to"] for r in receipts] == [phone, phone], f"sent {len(receipts)} times, not twice: {receipts}"
    assert receipts[1]["key"] == receipts[0]["key"] and receipts[0]["key"], \
        "the repeat must carry the first send's Idempotency-Key"
    waited = receipts[1]["time"] - first["time"]
    # The claim was taken just before the first send, so the repeat comes a little under
    # LEASE_S after it; a repeat before the lease ended would be well under.
    assert waited >= LEASE_S - 1, f"sent again {waited:.1f} s after the first send, before the {LEASE_S:.0f} s lease ended"
    print(f"\nrepeat sent {waited:.1f} s after the first send (lease {LEASE_S:.0f} s); "
          f"alert was back after {ready - first['time']:.1f} s")
    assert {d["channel"]: d["status"] for d in sent[0]["deliveries"]}["messenger"] == "NOTIFICATION_STATUS_SENT"
