"""The messenger channel's rules for a provider's answer (README, "Channels": any 2xx is
success; 4xx other than 408/425/429 means "never for this message", FAILED at once and
the breaker not charged; anything else is retried; redirects are not followed), met by
the real channel (services/alert/channels.py MessengerChannel and its urllib client,
run by the alert service's dispatcher) against a real HTTP server that answers each
status code, not by a fake that raises the error itself.

The provider here answers by recipient: each customer's phone has its script of
statuses (then 200), so each case is one customer and they do not disturb each other.
The rules do not depend on the database: one stack (alert and Envoy, SQLite)."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from tests.integration.alert_providers import JsonHandler, serve
from tests.integration.test_alert_channels import SECRET, alert_stack
from tools.client import eventually

PERMANENT = [400, 401, 403, 404, 410, 422]  # more than BREAKER_FAIL_MAX: a charged breaker would open
RETRIED = [408, 425, 429, 500, 503]
REDIRECTS = [301, 302, 307, 308]


class ScriptedProvider:
    """POST /send answers the next status of the recipient's script (200 once it is
    used up); a redirect points at /elsewhere, which counts what reaches it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.scripts: dict[str, list[int]] = {}
        self.calls: dict[str, list[int]] = {}  # phone -> statuses answered
        self.elsewhere = 0
        provider = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path != "/send":
                    with provider.lock:
                        provider.elsewhere += 1
                    return self._answer(200)
                to = json.loads(body)["to"]
                with provider.lock:
                    script = provider.scripts.get(to, [])
                    status = script.pop(0) if script else 200
                    provider.calls.setdefault(to, []).append(status)
                self._answer(status)

            def _answer(self, status):
                redirect = {"location": f"http://127.0.0.1:{provider.port}/elsewhere"} if 300 <= status < 400 else {}
                self.answer(status, {"status": status}, redirect)

        self.server = serve(Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/send"

    def answered(self, phone: str) -> list[int]:
        with self.lock:
            return list(self.calls.get(phone, []))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def messenger(tmp_path_factory, infra):
    provider = ScriptedProvider()
    try:
        with alert_stack(
            tmp_path_factory.mktemp("messenger-rules"),
            "sqlite",
            infra,
            {"MESSENGER_URL": provider.url, "MESSENGER_SECRET": SECRET},
        ) as started:
            started.provider = provider
            yield started
    finally:
        provider.stop()


def customer_answered(alert, *statuses: int) -> tuple[str, str]:
    """A new customer on the messenger alone, whose phone the provider answers with
    `statuses` (then 200); one outcome produced for them. Returns (user, phone)."""
    user, phone = f"rules-{uuid.uuid4().hex[:8]}", "+8210" + str(uuid.uuid4().int)[:8]
    alert.provider.scripts[phone] = list(statuses)
    alert.set_preferences(user, phone=phone, channels=["messenger"])
    alert.outcome(user)
    alert.flush()
    return user, phone


def delivery(alert, user) -> dict | None:
    notes = alert.notifications(user)
    return next((d for d in notes[0]["deliveries"] if d["channel"] == "messenger"), None) if notes else None


def final(alert, user) -> dict:
    return eventually(
        lambda: (d := delivery(alert, user)) and d["status"] != "NOTIFICATION_STATUS_PENDING" and d,
        timeout=30,
        what=f"{user}'s messenger delivery decided",
    )


def quiet(alert) -> None:
    """No messenger delivery left pending: nothing more can reach the provider."""
    eventually(
        lambda: alert.metric("bookrental_alert_pending_deliveries", channel="messenger") == 0,
        what="no messenger delivery pending",
    )


def test_a_4xx_answer_fails_the_message_at_once_and_does_not_charge_the_breaker(messenger):
    cases = {code: customer_answered(messenger, code) for code in PERMANENT}
    for code, (user, _phone) in cases.items():
        d = final(messenger, user)
        assert (d["status"], d["attempts"]) == ("NOTIFICATION_STATUS_FAILED", 1), (code, d)
        assert f"HTTP {code}" in d["lastError"], (code, d)
    quiet(messenger)  # nothing pending: no later retry of a refused message
    assert {code: messenger.provider.answered(phone) for code, (_, phone) in cases.items()} == {
        code: [code] for code in PERMANENT
    }  # each called once, never again
    # Six refusals in a row, BREAKER_FAIL_MAX=3: had they counted, the breaker would be open.
    assert messenger.metric("bookrental_alert_breaker_state", channel="messenger") == 0
    assert messenger.metric("bookrental_alert_breaker_opened_total", channel="messenger") == 0


@pytest.mark.parametrize("code", RETRIED)
def test_a_408_425_429_or_5xx_answer_is_retried_until_the_provider_accepts(messenger, code):
    user, phone = customer_answered(messenger, code, code)
    d = final(messenger, user)
    assert (d["status"], d["attempts"]) == ("NOTIFICATION_STATUS_SENT", 3), d
    quiet(messenger)
    assert messenger.provider.answered(phone) == [code, code, 200]  # sent once it was accepted, then not again


@pytest.mark.parametrize("code", REDIRECTS)
def test_a_redirect_is_not_followed_and_the_message_is_retried_at_the_configured_url(messenger, code):
    elsewhere = messenger.provider.elsewhere
    user, phone = customer_answered(messenger, code)
    d = final(messenger, user)
    assert (d["status"], d["attempts"]) == ("NOTIFICATION_STATUS_SENT", 2), d
    quiet(messenger)
    assert messenger.provider.answered(phone) == [code, 200]
    assert messenger.provider.elsewhere == elsewhere, "the signed message went where the redirect pointed"
