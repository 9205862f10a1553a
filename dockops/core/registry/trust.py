"""Where the daemon (and dockops) look for a registry's CA: `<certs.d>/HOST:PORT/ca.crt`.

The daemon reads certs.d at each connection, so installing a CA there needs no restart
(update-ca-certificates and a daemon restart is the heavy way). dockops's own HTTPS requests
trust the same file, so both sides agree on what is trusted.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from dockops.atomic import write_atomic

DEFAULT_CERTS_D = Path("/etc/docker/certs.d")


def default_certs_d() -> Path:
    """$DOCKOPS_CERTS_D (an engine with another certs.d, as the test harness's), else the
    daemon's /etc/docker/certs.d."""
    override = os.environ.get("DOCKOPS_CERTS_D")
    return Path(override) if override else DEFAULT_CERTS_D


def ca_path(registry: str, certs_d: Path | None = None) -> Path:
    return (certs_d or default_certs_d()) / registry / "ca.crt"


def trusted_ca(registry: str, certs_d: Path | None = None) -> Path | None:
    """The CA file the daemon would trust for `registry`, if there is one."""
    path = ca_path(registry, certs_d)
    return path if path.is_file() else None


def install_ca(ca_crt: Path, registry: str, certs_d: Path | None = None) -> Path:
    """Copy `ca_crt` to `<certs_d>/<registry>/ca.crt` (atomically; rewritten only if it differs).

    Returns:
        The installed path.
    """
    target = ca_path(registry, certs_d)
    data = ca_crt.read_bytes()
    if not (target.is_file() and target.read_bytes() == data):
        write_atomic(target, data, mode=0o644)
    return target


def is_trusted(registry: str, ca_crt: Path, certs_d: Path | None = None) -> bool:
    """True when certs.d holds exactly this CA for `registry`."""
    installed = trusted_ca(registry, certs_d)
    return (
        installed is not None and ca_crt.is_file() and installed.read_bytes() == ca_crt.read_bytes()
    )


def is_insecure(registry: str) -> bool:
    """Plain HTTP is allowed for loopback (as the daemon does) and for the registries listed in
    $DOCKOPS_INSECURE_REGISTRIES (comma-separated) or `insecure_registries` in config.toml."""
    if is_loopback(registry):
        return True
    listed = os.environ.get("DOCKOPS_INSECURE_REGISTRIES")
    if listed is not None:
        return registry in {item.strip() for item in listed.split(",")}
    from dockops.config import load_config

    return registry in load_config().insecure_registries


def is_loopback(registry: str) -> bool:
    """The daemon treats 127.0.0.0/8 (and ::1, localhost) registries as insecure by default:
    it falls back to plain HTTP for them, and so does dockops."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# A certificate chain that does not lead to a CA the client trusts, as Go (the daemon) and
# OpenSSL (Python) word it. A name mismatch or an expired certificate is not in it: trusting
# the CA would not fix those.
_UNTRUSTED_WORDS = (
    r"unknown authority",
    r"self[- ]signed certificate",
    r"unable to get (?:local )?issuer certificate",
    r"certificate is not trusted",
    # OpenSSL's reason code alone (requests often keeps nothing else): unless the rest says
    # the name or the dates are wrong, a CA it does not know is what fails in practice.
    r"certificate[ _]verify[ _]failed(?!: (?:hostname mismatch|ip address mismatch|"
    r"certificate has expired))",
)
_UNTRUSTED = re.compile("|".join(f"(?:{p})" for p in _UNTRUSTED_WORDS), re.IGNORECASE)


def untrusted_hint(registry: str, message: str) -> str | None:
    """What to do when `message` says the registry's certificate is not trusted: the certs.d
    file where the daemon (and dockops) look for its CA; None for any other message."""
    if _UNTRUSTED.search(message) is None:
        return None
    return (
        f"to trust its CA, put it in {ca_path(registry)} "
        "(dockops registry secure does it with --trust)"
    )
