"""The registry's own small PKI: a private CA and the server certificate it signs for nginx.

`registry secure` must work on hosts with no public DNS name and no ACME access, so it mints a
CA that clients trust once (certs.d/<host>/ca.crt) and a server certificate it can renew on any
run without clients having to trust anything again. So a new CA is made only when there is none
(or half of one) or on --rotate; anything else wrong with the CA is reported, never papered over.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dockops.atomic import write_atomic
from dockops.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    KeyPair = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]

CA_NAME = "dockops registry CA"
CA_LIFETIME = timedelta(days=3650)
# macOS/iOS refuse TLS server certificates valid for longer, even from a CA the user added
CERT_LIFETIME = timedelta(days=825)
RENEW_BEFORE = timedelta(days=30)
# a client whose clock is a little behind must not see a "not yet valid" certificate
CLOCK_SKEW = timedelta(minutes=5)
_ROTATE_HINT = "; rerun with --rotate to make a new CA (every client must then trust it again)"
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class PkiFiles:
    """The four files in certs_dir; `crt` holds the server cert first, then the CA cert."""

    ca_key: Path
    ca_crt: Path
    key: Path
    crt: Path
    ca_created: bool
    cert_created: bool
    ca_fingerprint: str
    not_after: datetime


def validate_host(host: str) -> str:
    """Return `host` unchanged if it is an IPv4/IPv6 address or a DNS name.

    Raises:
        InvalidInput: anything else (it ends up in a certificate and in an nginx conf).
    """
    if _parse_ip(host) is None and not _is_dns_name(host):
        raise InvalidInput(f"--host {host!r}: not an IP address or DNS name")
    return host


def ensure_pki(
    certs_dir: Path, host: str, *, rotate: bool = False, now: datetime | None = None
) -> PkiFiles:
    """Make or keep the CA and the server certificate for `host` in `certs_dir`.

    Args:
        certs_dir: holds ca.key, ca.crt, domain.key, domain.crt; made (0700) if missing.
        host: the registry's address as clients type it (IP address or DNS name).
        rotate: make a new CA, and so a new server cert, even if the current CA is fine.
        now: when to issue (a naive value is local time); tests use it to make old certs.
    Returns:
        The paths, what was made this run, the CA fingerprint and the server cert expiry.
    Raises:
        InvalidInput: bad host, or an existing CA that is unreadable, mismatched or expired.
    """
    validate_host(host)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    _make_dir(certs_dir)
    ca_key_path, ca_crt_path = certs_dir / "ca.key", certs_dir / "ca.crt"
    key_path, crt_path = certs_dir / "domain.key", certs_dir / "domain.crt"

    ca = None if rotate else _existing_ca(ca_key_path, ca_crt_path, now)
    ca_created = ca is None
    if ca is None:
        ca = _new_ca(now)
        _write(ca_key_path, _key_pem(ca[0]), 0o600)
        _write(ca_crt_path, _crt_pem(ca[1]), 0o644)
    ca_cert = ca[1]

    leaf = None if ca_created else _existing_leaf(key_path, crt_path, ca_cert, host, now)
    cert_created = leaf is None
    if leaf is None:
        key, leaf = _new_leaf(ca, host, now)
        # key first: a crash in between leaves a mismatched pair, which the next run replaces
        _write(key_path, _key_pem(key), 0o600)
        _write(crt_path, _crt_pem(leaf) + _crt_pem(ca_cert), 0o644)
    return PkiFiles(
        ca_key=ca_key_path,
        ca_crt=ca_crt_path,
        key=key_path,
        crt=crt_path,
        ca_created=ca_created,
        cert_created=cert_created,
        ca_fingerprint=_fingerprint(ca_cert),
        not_after=leaf.not_valid_after_utc,
    )


def _existing_ca(key_path: Path, crt_path: Path, now: datetime) -> KeyPair | None:
    if not (key_path.exists() and crt_path.exists()):
        return None  # half a CA can neither sign nor be handed to clients: nothing to keep
    try:
        cert, key = _load_certs(crt_path)[0], _load_key(key_path)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}{_ROTATE_HINT}") from None
    if key.public_key() != cert.public_key():
        raise InvalidInput(f"{key_path} does not match {crt_path}{_ROTATE_HINT}")
    if cert.not_valid_after_utc <= now:
        raise InvalidInput(
            f"{crt_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}{_ROTATE_HINT}"
        )
    return key, cert


def _existing_leaf(
    key_path: Path, crt_path: Path, ca_cert: x509.Certificate, host: str, now: datetime
) -> x509.Certificate | None:
    if not (key_path.exists() and crt_path.exists()):
        return None
    try:
        chain, key = _load_certs(crt_path), _load_key(key_path)
    except InvalidInput:
        return None  # clients trust the CA, not this cert: a damaged one is simply replaced
    leaf, names = chain[0], _san(chain[0])
    keep = (
        key.public_key() == leaf.public_key()
        and _signed_by(leaf, ca_cert)
        and len(names) == 1
        and _names_host(names[0], host)
        and leaf.not_valid_after_utc - now > RENEW_BEFORE
        and chain[1:] == [ca_cert]
    )
    return leaf if keep else None


def _new_ca(now: datetime) -> KeyPair:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    start = now - CLOCK_SKEW
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (_key_usage(ca=True), True),
    ]
    return _issue(name, None, start, start + CA_LIFETIME, extensions)


def _new_leaf(ca: KeyPair, host: str, now: datetime) -> KeyPair:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ip = _parse_ip(host)
    san: x509.GeneralName = x509.IPAddress(ip) if ip is not None else x509.DNSName(host)
    # X.509 caps a CN at 64 characters; a longer name lives in the SAN alone, which RFC 5280
    # then wants critical since the subject is empty
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, host)] if len(host) <= 64 else []
    start = now - CLOCK_SKEW
    # a server cert outliving its CA would only fail later, with a more confusing error
    end = min(start + CERT_LIFETIME, ca[1].not_valid_after_utc)
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.SubjectAlternativeName([san]), not subject),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_key_usage(ca=False), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[0].public_key()), False),
    ]
    return _issue(x509.Name(subject), ca, start, end, extensions)


def _issue(
    subject: x509.Name,
    ca: KeyPair | None,
    start: datetime,
    end: datetime,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> KeyPair:
    """A new P-256 key and its cert, signed by `ca` (self-signed when None)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    signer, issuer = (key, subject) if ca is None else (ca[0], ca[1].subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return key, builder.sign(signer, hashes.SHA256())


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    from cryptography import x509

    # a CA signs certs and CRLs only; an EC server key only signs (ECDHE does the key exchange)
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _load_certs(path: Path) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(_read(path))
    except ValueError:
        raise InvalidInput(f"{path}: not a PEM certificate") from None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidInput(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInput(f"{path}: not an EC private key")
    return key


def _signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _san(cert: x509.Certificate) -> list[x509.GeneralName]:
    from cryptography import x509

    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (x509.ExtensionNotFound, ValueError):
        return []


def _names_host(name: x509.GeneralName, host: str) -> bool:
    """An IP host must be an IP entry and a name a DNS entry: clients check the type too."""
    from cryptography import x509

    ip = _parse_ip(host)
    if ip is not None:
        return isinstance(name, x509.IPAddress) and name.value == ip
    return isinstance(name, x509.DNSName) and name.value.lower() == host.lower()


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in host:
        return None  # a scoped IPv6 address (fe80::1%eth0) fits neither a cert nor a URL
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_dns_name(host: str) -> bool:
    labels = host.split(".")
    # an all-digit last label is a mistyped IPv4 address (10.0.0.256), not a name
    valid = all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()
    return len(host) <= 253 and valid


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise InvalidInput(f"{path} exists and is not a directory") from None
    except OSError as exc:
        raise InvalidInput(f"cannot create {path}: {exc.strerror}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror}") from None


def _write(path: Path, data: bytes, mode: int) -> None:
    try:
        write_atomic(path, data, mode)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization as ser

    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())


def _crt_pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM)


def _fingerprint(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()
