"""The alert service's own settings (channels, breakers, retries), read from
environment variables and checked once at start, beside the chassis Settings."""

from __future__ import annotations

import dataclasses
import email.utils
import os
import urllib.parse
from collections.abc import Callable, Mapping
from typing import overload

from services.chassis.errors import InvalidArgument
from services.chassis.settings import SettingsError, number

from . import domain


@overload
def _number(env: Mapping[str, str], name: str, default: int, lo: int, hi: int, kind: Callable[[str], int]) -> int: ...
@overload
def _number(
    env: Mapping[str, str], name: str, default: float, lo: float, hi: float, kind: Callable[[str], float] = float
) -> float: ...
def _number(
    env: Mapping[str, str], name: str, default: float, lo: float, hi: float, kind: Callable[[str], float] = float
) -> float:
    return number(env, name, default, lo, hi, kind)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{name}={raw!r} is not true or false")
    return raw in ("true", "1", "yes")


def _is_address(value: str) -> bool:
    _, address = email.utils.parseaddr(value)
    try:
        return bool(address) and domain.email(address) == address
    except InvalidArgument:
        return False


@dataclasses.dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    starttls: bool
    username: str
    password: str
    sender: str
    timeout_s: float
    ca_file: str  # extra CA to trust (a private relay's certificate); "" = the system's


@dataclasses.dataclass(frozen=True)
class MessengerSettings:
    url: str
    secret: bytes
    timeout_s: float


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    smtp: SmtpSettings | None  # None: the email channel is off
    messenger: MessengerSettings | None  # None: the messenger channel is off
    breaker_fail_max: int
    breaker_reset_timeout_s: float
    retry: domain.RetryPolicy
    dispatch_poll_s: float

    @property
    def offered(self) -> tuple[str, ...]:
        """The optional channels customers may choose."""
        return tuple(c for c, on in ((domain.EMAIL, self.smtp), (domain.MESSENGER, self.messenger)) if on)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlertSettings:
        env = os.environ if env is None else env
        smtp = None
        if env.get("SMTP_HOST"):
            sender = env.get("SMTP_FROM", "")
            if not _is_address(sender):
                raise SettingsError("SMTP_FROM is required with SMTP_HOST (e.g. 'Library <alerts@library.example>')")
            if bool(env.get("SMTP_USERNAME")) != bool(env.get("SMTP_PASSWORD")):
                raise SettingsError("SMTP_USERNAME and SMTP_PASSWORD go together")
            ca_file = env.get("SMTP_CA_FILE", "")
            if ca_file and not os.path.isfile(ca_file):
                raise SettingsError(f"SMTP_CA_FILE={ca_file!r} is not a file")
            smtp = SmtpSettings(
                host=env["SMTP_HOST"],
                port=_number(env, "SMTP_PORT", 587, 1, 65535, int),
                starttls=_bool(env, "SMTP_STARTTLS", True),
                username=env.get("SMTP_USERNAME", ""),
                password=env.get("SMTP_PASSWORD", ""),
                sender=sender,
                timeout_s=_number(env, "SMTP_TIMEOUT_S", 10.0, 0.1, 300),
                ca_file=ca_file,
            )
        messenger = None
        if env.get("MESSENGER_URL"):
            url = env["MESSENGER_URL"]
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SettingsError(f"MESSENGER_URL={url!r} is not an http(s) URL")
            if not env.get("MESSENGER_SECRET"):
                raise SettingsError(
                    "MESSENGER_SECRET (the HMAC key shared with the provider) is required with MESSENGER_URL"
                )
            messenger = MessengerSettings(
                url, env["MESSENGER_SECRET"].encode(), _number(env, "MESSENGER_TIMEOUT_S", 5.0, 0.1, 300)
            )
        return cls(
            smtp=smtp,
            messenger=messenger,
            breaker_fail_max=_number(env, "BREAKER_FAIL_MAX", 5, 1, 1000, int),
            breaker_reset_timeout_s=_number(env, "BREAKER_RESET_TIMEOUT_S", 30.0, 0.1, 3600),
            retry=domain.RetryPolicy(
                max_attempts=_number(env, "DELIVERY_MAX_ATTEMPTS", 8, 1, 100, int),
                base_delay_s=_number(env, "DELIVERY_BACKOFF_S", 1.0, 0.01, 3600),
                max_delay_s=_number(env, "DELIVERY_BACKOFF_MAX_S", 300.0, 0.01, 86400),
            ),
            dispatch_poll_s=_number(env, "DISPATCH_POLL_S", 1.0, 0.01, 60),
        )
