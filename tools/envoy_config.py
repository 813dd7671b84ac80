"""Render envoy/envoy.template.yaml into a runnable Envoy config.

    python -m tools.envoy_config build/envoy.yaml [--listen-port 8080] [--admin-port 9901]
        [--reservation-port 50051] [--stock-port 50052] [--alert-port 50053]
        [--descriptor build/bookrental.pb] [--jwks var/dev-keys/jwks.json] [--access-log PATH]

Paths are made absolute, so Envoy can run from any directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "envoy" / "envoy.template.yaml"
DEFAULT_DESCRIPTOR = "build/bookrental.pb"
DEFAULT_JWKS = "var/dev-keys/jwks.json"


def _path(p: str | os.PathLike) -> str:
    # A JSON string is a valid YAML scalar: quotes and escapes any odd character.
    return json.dumps(str(Path(p).resolve()))


def _port(name: str, value: int) -> str:
    if not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"{name} must be a port number, got {value!r}")
    return str(value)


def render(
    out_path: str | os.PathLike,
    *,
    listen_port: int = 8080,
    admin_port: int = 9901,
    reservation_port: int = 50051,
    stock_port: int = 50052,
    alert_port: int = 50053,
    descriptor_path: str | os.PathLike,
    jwks_path: str | os.PathLike,
    access_log_path: str | os.PathLike | None = None,
) -> str:
    """Write the config to out_path and return its text."""
    text = Template(TEMPLATE.read_text()).substitute(
        listen_port=_port("listen_port", listen_port),
        admin_port=_port("admin_port", admin_port),
        reservation_port=_port("reservation_port", reservation_port),
        stock_port=_port("stock_port", stock_port),
        alert_port=_port("alert_port", alert_port),
        descriptor_path=_path(descriptor_path),
        jwks_path=_path(jwks_path),
        access_log_path=_path(access_log_path) if access_log_path else '"/dev/stdout"',
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.envoy_config", description="Render the Envoy config.")
    p.add_argument("out", help="where to write the YAML, e.g. build/envoy.yaml")
    p.add_argument("--listen-port", type=int, default=8080)
    p.add_argument("--admin-port", type=int, default=9901)
    p.add_argument("--reservation-port", type=int, default=50051)
    p.add_argument("--stock-port", type=int, default=50052)
    p.add_argument("--alert-port", type=int, default=50053)
    p.add_argument("--descriptor", default=DEFAULT_DESCRIPTOR, help=f"descriptor set (default {DEFAULT_DESCRIPTOR})")
    p.add_argument("--jwks", default=DEFAULT_JWKS, help=f"JWKS file (default {DEFAULT_JWKS})")
    p.add_argument("--access-log", default=None, help="access log file (default stdout)")
    a = p.parse_args(argv)
    for label, path in (("descriptor set", a.descriptor), ("JWKS", a.jwks)):
        if not Path(path).is_file():
            hint = "make proto" if label == "descriptor set" else "make keys"
            print(f"envoy_config: no {label} at {path} (run {hint})", file=sys.stderr)
            return 2
    render(
        a.out,
        listen_port=a.listen_port,
        admin_port=a.admin_port,
        reservation_port=a.reservation_port,
        stock_port=a.stock_port,
        alert_port=a.alert_port,
        descriptor_path=a.descriptor,
        jwks_path=a.jwks,
        access_log_path=a.access_log,
    )
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
