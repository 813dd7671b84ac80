"""Development TLS certificate for the gateway's HTTPS/gRPC-over-TLS port (never committed).

    python -m tools.devcert var/dev-tls

writes, only when missing, DIR/ca.pem (a development CA, trust it with curl --cacert or
grpcurl -cacert), DIR/cert.pem (the server certificate it signed, for localhost and
127.0.0.1) and DIR/key.pem (its private key, mode 0600). Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA, CERT, KEY = "ca.pem", "cert.pem", "key.pem"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bookrental development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_cert(tls_dir: str | os.PathLike, days: int = 365) -> Path:
    """Create DIR/ca.pem, DIR/cert.pem and DIR/key.pem unless they all exist; returns DIR."""
    tls_dir = Path(tls_dir)
    if all((tls_dir / f).exists() for f in (CA, CERT, KEY)):
        return tls_dir
    tls_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("bookrental development CA"))
        .issuer_name(_name("bookrental development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    # The key first, 0600 and never readable by others; the CA's key is not kept (nothing
    # else is ever signed with it).
    key_path = tls_dir / KEY
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    (tls_dir / CERT).write_bytes(_pem(cert))
    (tls_dir / CA).write_bytes(_pem(ca))
    return tls_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.devcert", description=__doc__.split("\n")[0])
    parser.add_argument("tls_dir", help="directory for ca.pem, cert.pem and key.pem (e.g. var/dev-tls)")
    args = parser.parse_args(argv)
    ensure_cert(args.tls_dir)
    print(f"TLS files in {args.tls_dir}: {CA} (trust this), {CERT}, {KEY}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
