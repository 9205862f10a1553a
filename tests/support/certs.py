"""What a test reads off the registry's certificates, checked with cryptography alone (not
with the product's own pki code, which is what is under test)."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding


class NotVerified(Exception):
    """The certificate does not do what a client needs of it; the message says why."""


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    san: tuple[str, ...]  # DNS names and IPs as text
    not_after: datetime
    fingerprint: str  # sha256:<hex of the DER>


def _first(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return x509.SubjectAlternativeName([])


def describe_cert(path: Path) -> CertInfo:
    """The first certificate in a PEM file (for domain.crt: the server cert)."""
    cert = _first(path)
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        san=tuple(str(name.value) for name in _san(cert)),
        not_after=cert.not_valid_after_utc,
        fingerprint="sha256:" + hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
    )


def verify_chain(crt: Path, ca_crt: Path, host: str) -> None:
    """Check that the first cert in `crt` is signed by `ca_crt`, names `host` (an IP only as
    an IP entry) and is in date; NotVerified says which check failed."""
    leaf, ca = _first(crt), _first(ca_crt)
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise NotVerified(f"{crt} is not signed by the CA in {ca_crt}") from None
    san = _san(leaf)
    try:
        covered = ipaddress.ip_address(host) in san.get_values_for_type(x509.IPAddress)
    except ValueError:
        covered = host.lower() in (n.lower() for n in san.get_values_for_type(x509.DNSName))
    if not covered:
        listed = ", ".join(str(name.value) for name in san) or "none"
        raise NotVerified(f"{crt} does not cover {host} (its names: {listed})")
    now = datetime.now(timezone.utc)
    if leaf.not_valid_after_utc <= now:
        raise NotVerified(f"{crt} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if leaf.not_valid_before_utc > now:
        raise NotVerified(f"{crt} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d} UTC")
