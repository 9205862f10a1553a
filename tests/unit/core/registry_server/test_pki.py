"""The registry PKI: what clients will check in the certs, and what a re-run keeps or remakes."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import ssl
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from dockops.core.registry_server import pki
from dockops.core.registry_server.pki import ensure_pki, validate_host
from dockops.errors import InvalidInput
from tests.support.certs import NotVerified, describe_cert, verify_chain
from tests.support.modes import final_name, looser, watched

HOST = "registry.example.com"
NOW = datetime.now(timezone.utc)


@pytest.fixture(autouse=True)
def _now() -> None:
    """NOW is taken when each test starts: certificates are issued 5 minutes before the real
    time, and a NOW from collection time is older than that once the suite has run a while."""
    global NOW
    NOW = datetime.now(timezone.utc)


def certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def client_accepts(leaf: x509.Certificate, ca: x509.Certificate, host: str) -> None:
    """Verify as a TLS client would (RFC 5280 path building, SAN, EKU); raises otherwise."""
    try:
        subject: x509.verification.Subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    verifier = PolicyBuilder().store(Store([ca])).time(NOW).build_server_verifier(subject)
    verifier.verify(leaf, [])


def test_first_run_makes_a_p256_ca_and_a_server_cert_with_tight_modes(tmp_path: Path) -> None:
    certs_dir = tmp_path / "certs"
    files = ensure_pki(certs_dir, HOST)

    assert (files.ca_created, files.cert_created) == (True, True)
    assert [p.name for p in (files.ca_key, files.ca_crt, files.key, files.crt)] == [
        "ca.key",
        "ca.crt",
        "domain.key",
        "domain.crt",
    ]
    assert all(p.parent == certs_dir for p in (files.ca_key, files.ca_crt, files.key, files.crt))
    assert mode(certs_dir) == 0o700
    assert (mode(files.ca_key), mode(files.key)) == (0o600, 0o600)
    assert (mode(files.ca_crt), mode(files.crt)) == (0o644, 0o644)
    assert b"BEGIN PRIVATE KEY" in files.key.read_bytes()  # PKCS8, unencrypted

    (ca,) = certs(files.ca_crt)
    assert (
        files.ca_fingerprint
        == "sha256:" + hashlib.sha256(ca.public_bytes(Encoding.DER)).hexdigest()
    )
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dockops registry CA"
    assert ca.subject == ca.issuer
    ca.verify_directly_issued_by(ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == timedelta(days=3650)
    assert ca.not_valid_before_utc < NOW
    ca_key = load_pem_private_key(files.ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    assert isinstance(ca_key.curve, ec.SECP256R1)
    assert ca_key.public_key() == ca.public_key()


def test_server_cert_is_a_full_chain_a_client_accepts(tmp_path: Path) -> None:
    files = ensure_pki(tmp_path, HOST)
    leaf, chained_ca = certs(files.crt)
    (ca,) = certs(files.ca_crt)

    assert chained_ca == ca  # leaf first, then the CA, as nginx wants
    client_accepts(leaf, ca, HOST)
    assert leaf.subject.rfc4514_string() == f"CN={HOST}"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOST]
    assert san.get_values_for_type(x509.IPAddress) == []
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=825)
    assert files.not_after == leaf.not_valid_after_utc
    assert files.not_after.tzinfo is not None
    key = load_pem_private_key(files.key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == leaf.public_key()


@pytest.mark.parametrize("host", ["10.1.2.3", "::1", "2001:db8::5"])
def test_an_ip_host_gets_an_ip_san_not_a_dns_one(tmp_path: Path, host: str) -> None:
    files = ensure_pki(tmp_path, host)
    leaf, ca = certs(files.crt)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(host)]
    assert san.get_values_for_type(x509.DNSName) == []
    client_accepts(leaf, ca, host)


@pytest.mark.parametrize("host", [HOST, "127.0.0.1"])
def test_openssl_completes_a_tls_handshake_with_the_files(tmp_path: Path, host: str) -> None:
    files = ensure_pki(tmp_path, host)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.crt, files.key)
    client_ctx = ssl.create_default_context(cafile=str(files.ca_crt))
    server_sock, client_sock = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(server_sock, server_side=True) as tls:
                tls.sendall(b"ok")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    with client_ctx.wrap_socket(client_sock, server_hostname=host) as tls:
        assert tls.recv(2) == b"ok"
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
    thread.join(10)
    assert errors == []


def test_rerun_keeps_ca_and_cert_without_rewriting(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, HOST)
    before = {p.name: (p.read_bytes(), p.stat().st_ino) for p in tmp_path.iterdir()}
    again = ensure_pki(tmp_path, HOST)
    assert (again.ca_created, again.cert_created) == (False, False)
    assert again.ca_fingerprint == first.ca_fingerprint
    assert again.not_after == first.not_after
    assert {p.name: (p.read_bytes(), p.stat().st_ino) for p in tmp_path.iterdir()} == before


def test_rotate_makes_a_new_ca_and_a_new_server_cert(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path / "certs", HOST)
    old_leaf = certs(first.crt)[0]
    (tmp_path / "old.crt").write_bytes(first.crt.read_bytes())
    rotated = ensure_pki(tmp_path / "certs", HOST, rotate=True)
    assert (rotated.ca_created, rotated.cert_created) == (True, True)
    assert rotated.ca_fingerprint != first.ca_fingerprint
    leaf, ca = certs(rotated.crt)
    assert leaf != old_leaf
    client_accepts(leaf, ca, HOST)
    with pytest.raises(NotVerified, match="not signed"):
        verify_chain(tmp_path / "old.crt", rotated.ca_crt, HOST)  # the old leaf no longer chains


def test_a_new_host_gets_a_new_server_cert_under_the_same_ca(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, HOST)
    moved = ensure_pki(tmp_path, "10.0.0.7")
    assert (moved.ca_created, moved.cert_created) == (False, True)
    assert moved.ca_fingerprint == first.ca_fingerprint
    assert describe_cert(moved.crt).san == ("10.0.0.7",)
    verify_chain(moved.crt, moved.ca_crt, "10.0.0.7")


def test_a_cert_with_30_days_or_less_left_is_renewed(tmp_path: Path) -> None:
    old = ensure_pki(tmp_path, HOST, now=NOW - timedelta(days=800))  # 25 days left now
    assert old.not_after - NOW < timedelta(days=30)
    renewed = ensure_pki(tmp_path, HOST, now=NOW)
    assert (renewed.ca_created, renewed.cert_created) == (False, True)
    assert renewed.ca_fingerprint == old.ca_fingerprint
    assert renewed.not_after - NOW > timedelta(days=824)


def test_a_cert_with_more_than_30_days_left_is_kept(tmp_path: Path) -> None:
    old = ensure_pki(tmp_path, HOST, now=NOW - timedelta(days=780))  # 45 days left now
    kept = ensure_pki(tmp_path, HOST, now=NOW)
    assert (kept.ca_created, kept.cert_created) == (False, False)
    assert kept.not_after == old.not_after


@pytest.mark.parametrize("damaged", ["ca.crt", "ca.key"])
def test_a_corrupt_ca_is_refused_with_the_way_out(tmp_path: Path, damaged: str) -> None:
    first = ensure_pki(tmp_path, HOST)
    (tmp_path / damaged).write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    with pytest.raises(InvalidInput, match="--rotate") as info:
        ensure_pki(tmp_path, HOST)
    assert str(tmp_path / damaged) in str(info.value)
    assert info.value.exit_code == 2
    rotated = ensure_pki(tmp_path, HOST, rotate=True)
    assert rotated.ca_created and rotated.ca_fingerprint != first.ca_fingerprint


def test_a_ca_key_that_does_not_match_the_ca_cert_is_refused(tmp_path: Path) -> None:
    ensure_pki(tmp_path / "a", HOST)
    ensure_pki(tmp_path / "b", HOST)
    (tmp_path / "a" / "ca.key").write_bytes((tmp_path / "b" / "ca.key").read_bytes())
    with pytest.raises(InvalidInput, match=r"does not match.*--rotate"):
        ensure_pki(tmp_path / "a", HOST)


def test_an_expired_ca_is_refused(tmp_path: Path) -> None:
    ensure_pki(tmp_path, HOST, now=NOW - timedelta(days=3651))
    with pytest.raises(InvalidInput, match=r"expired.*--rotate"):
        ensure_pki(tmp_path, HOST)


@pytest.mark.parametrize("missing", ["ca.crt", "ca.key"])
def test_half_a_ca_is_replaced(tmp_path: Path, missing: str) -> None:
    first = ensure_pki(tmp_path, HOST)
    (tmp_path / missing).unlink()
    again = ensure_pki(tmp_path, HOST)
    assert (again.ca_created, again.cert_created) == (True, True)
    assert again.ca_fingerprint != first.ca_fingerprint
    verify_chain(again.crt, again.ca_crt, HOST)


def test_a_damaged_or_foreign_server_cert_is_replaced(tmp_path: Path) -> None:
    mine = ensure_pki(tmp_path / "mine", HOST)
    other = ensure_pki(tmp_path / "other", HOST)
    # another CA's leaf, passed off behind our CA cert: only its signature gives it away
    foreign = certs(other.crt)[0].public_bytes(Encoding.PEM) + mine.ca_crt.read_bytes()
    mine.crt.write_bytes(foreign)
    mine.key.write_bytes(other.key.read_bytes())
    replaced = ensure_pki(tmp_path / "mine", HOST)
    assert (replaced.ca_created, replaced.cert_created) == (False, True)
    verify_chain(replaced.crt, replaced.ca_crt, HOST)

    # our leaf followed by the wrong CA: nginx would serve a chain clients cannot build
    ours = certs(replaced.crt)[0].public_bytes(Encoding.PEM)
    mine.crt.write_bytes(ours + other.ca_crt.read_bytes())
    assert ensure_pki(tmp_path / "mine", HOST).cert_created
    assert certs(mine.crt)[1] == certs(mine.ca_crt)[0]

    mine.key.write_bytes(b"garbage")
    assert ensure_pki(tmp_path / "mine", HOST).cert_created
    assert mode(mine.key) == 0o600


def test_a_host_longer_than_a_common_name_lives_in_the_san_alone(tmp_path: Path) -> None:
    host = ".".join(["a" * 40, "b" * 40, "example"])
    files = ensure_pki(tmp_path, host)
    leaf, ca = certs(files.crt)
    assert len(leaf.subject) == 0
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    client_accepts(leaf, ca, host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "-a.com",
        "a-.com",
        "a..com",
        "a.com.",
        "a_b.com",
        "a b",
        "a;b",
        "x" * 64 + ".com",
        ".".join(["a" * 63] * 4),  # 255 characters
        "10.0.0.256",
        "fe80::1%eth0",
        "[::1]",
        "registry:5000",
    ],
)
def test_a_bad_host_is_refused_before_any_file_is_written(tmp_path: Path, host: str) -> None:
    with pytest.raises(InvalidInput, match="not an IP address or DNS name"):
        ensure_pki(tmp_path / "certs", host)
    assert not (tmp_path / "certs").exists()


@pytest.mark.parametrize("host", ["localhost", "a" * 63 + ".com", "xn--bcher-kva.de", "::1"])
def test_good_hosts_pass(host: str) -> None:
    assert validate_host(host) == host


def test_describe_cert_reads_the_leaf_of_the_chain(tmp_path: Path) -> None:
    files = ensure_pki(tmp_path, HOST)
    info = describe_cert(files.crt)
    leaf = certs(files.crt)[0]
    assert info.subject == f"CN={HOST}"
    assert info.issuer == "CN=dockops registry CA"
    assert info.san == (HOST,)
    assert info.not_after == files.not_after
    assert (
        info.fingerprint == "sha256:" + hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
    )
    assert describe_cert(files.ca_crt).fingerprint == files.ca_fingerprint


def test_a_ca_crt_that_is_no_certificate_is_refused(tmp_path: Path) -> None:
    files = ensure_pki(tmp_path, HOST)
    files.ca_crt.write_text("hello")
    with pytest.raises(InvalidInput, match="not a PEM certificate"):
        ensure_pki(tmp_path, HOST)


def test_verify_chain_names_the_reason(tmp_path: Path) -> None:
    files = ensure_pki(tmp_path / "now", HOST)
    verify_chain(files.crt, files.ca_crt, HOST)
    verify_chain(files.crt, files.ca_crt, HOST.upper())  # DNS names are case-insensitive
    with pytest.raises(NotVerified, match=r"does not cover other\.example\.com"):
        verify_chain(files.crt, files.ca_crt, "other.example.com")
    other = ensure_pki(tmp_path / "other", HOST)
    with pytest.raises(NotVerified, match="not signed by the CA"):
        verify_chain(files.crt, other.ca_crt, HOST)
    old = ensure_pki(tmp_path / "old", HOST, now=NOW - timedelta(days=900))
    with pytest.raises(NotVerified, match="expired on"):
        verify_chain(old.crt, old.ca_crt, HOST)


def test_an_ip_host_in_a_dns_san_entry_does_not_count(tmp_path: Path) -> None:
    files = ensure_pki(tmp_path, "10.0.0.1")
    ca = certs(files.ca_crt)[0]
    ca_key = load_pem_private_key(files.ca_key.read_bytes(), None)
    key = load_pem_private_key(files.key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    wrong = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "10.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=400))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("10.0.0.1")]), False)
        .sign(ca_key, hashes.SHA256())
    )
    files.crt.write_bytes(wrong.public_bytes(Encoding.PEM) + ca.public_bytes(Encoding.PEM))
    with pytest.raises(NotVerified, match=r"does not cover 10\.0\.0\.1 "):
        verify_chain(files.crt, files.ca_crt, "10.0.0.1")
    assert ensure_pki(tmp_path, "10.0.0.1").cert_created  # remade with an IP entry
    verify_chain(files.crt, files.ca_crt, "10.0.0.1")


def test_an_existing_certs_dir_keeps_its_mode_and_a_file_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    ensure_pki(shared, HOST)
    assert mode(shared) == 0o755
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInput, match="not a directory"):
        ensure_pki(tmp_path / "file", HOST)


# --- the modes at every step of the writes (tests/support/modes.py) ---------------------------


@pytest.mark.parametrize("umask", [0, 0o022])
def test_keys_and_certificates_never_have_looser_modes(tmp_path: Path, umask: int) -> None:
    certs = tmp_path / "certs"
    with watched(tmp_path, umask) as states:
        pki.ensure_pki(certs, "registry.example")
        pki.ensure_pki(certs, "registry.example", rotate=True)  # rewrites every file
    files = {final_name(p) for p, _ in states}
    assert {"ca.key", "ca.crt", "domain.key", "domain.crt"} <= files
    assert any(Path(p).name.endswith(".tmp") for p, _ in states)  # the temps were seen too
    allowed = {"ca.key": 0o600, "domain.key": 0o600, "ca.crt": 0o644, "domain.crt": 0o644}
    for path, mode in states:
        limit = 0o700 if path == "certs" else allowed[final_name(path)]
        assert not looser(mode, limit), f"{path} was {oct(mode)} at some point"
    assert dict(states[-5:]) == {
        "certs": 0o700,
        "certs/ca.key": 0o600,
        "certs/ca.crt": 0o644,
        "certs/domain.key": 0o600,
        "certs/domain.crt": 0o644,
    }
