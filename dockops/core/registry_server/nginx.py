"""The nginx server block that puts TLS and basic auth in front of registry:2.

It follows the distribution project's nginx recipe (docs/recipes/nginx.md), minus its check for
docker 1.5 clients. The text is rendered from validated values only, so a --host or a path can
never smuggle a directive into the conf; its hash tells whether the frontend must be recreated.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from dockops.core.registry_server.pki import validate_host
from dockops.errors import InvalidInput

_PORT = r"[0-9]{1,5}"  # not \d: it also matches non-ASCII digits
_LISTEN = re.compile(rf"(?:\[(?P<ip6>[0-9a-fA-F:]+)\]:|(?P<ip4>[0-9.]+):)?(?P<port>{_PORT})")
_UPSTREAM = re.compile(
    rf"(?:\[(?P<ip6>[0-9a-fA-F:]+)\]|(?P<name>[A-Za-z0-9.\-]+)):(?P<port>{_PORT})"
)
# stricter than "no whitespace, ';', braces or quotes": '$' would make nginx expand variables
# and '#' would start a comment
_PATH = re.compile(r"/[A-Za-z0-9._/@+=,-]*")


@dataclass(frozen=True)
class FrontendConf:
    server_name: str
    listen: str
    upstream: str
    cert: str = "/etc/nginx/certs/domain.crt"
    key: str = "/etc/nginx/certs/domain.key"
    htpasswd: str = "/etc/nginx/auth/htpasswd"


_TEMPLATE = """\
# Written by dockops registry secure; rewritten on every run.
upstream docker-registry {{
    server {upstream};
}}

# registry:2 sets this header itself; the map supplies it on the answers nginx makes alone
map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {{
    '' 'registry/2.0';
}}

server {{
    listen {listen} ssl;
    server_name {server_name};

    # the server certificate followed by the CA: the full chain
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers HIGH:!aNULL:!MD5;
    ssl_prefer_server_ciphers on;
    ssl_session_cache shared:SSL:10m;

    # layers are often larger than the 1m default: 413 otherwise
    client_max_body_size 0;
    # docker pushes in chunks; 411 otherwise
    chunked_transfer_encoding on;

    location /v2/ {{
        auth_basic "Registry realm";
        auth_basic_user_file {htpasswd};
        # nginx's own 401 lacks this header otherwise, and docker login then fails
        add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;

        proxy_pass http://docker-registry;
        # with the port, so the upload Locations registry:2 returns point back here
        proxy_set_header Host $http_host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        # https, or registry:2 hands out http:// upload Locations
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_read_timeout 900;
        # stream layers through instead of spooling them to disk first
        proxy_request_buffering off;
        proxy_buffering off;
    }}

    location / {{
        return 404;
    }}
}}
"""


def render_conf(conf: FrontendConf) -> str:
    """Render the conf.d server block (the only file there; nginx.conf includes it in http{}).

    Returns:
        The conf text, newline-terminated.
    Raises:
        InvalidInput: a value that is not a host, address or absolute path of the expected form.
    """
    validate_host(conf.server_name)
    _check_address(_LISTEN, conf.listen, "listen")
    _check_address(_UPSTREAM, conf.upstream, "upstream")
    for what, path in (("cert", conf.cert), ("key", conf.key), ("htpasswd", conf.htpasswd)):
        if not _PATH.fullmatch(path):
            raise InvalidInput(f"{what} path {path!r}: not an absolute path nginx can take as is")
    server_name = conf.server_name
    if ":" in server_name:
        server_name = f"[{server_name}]"  # how the Host header carries an IPv6 address
    return _TEMPLATE.format(
        upstream=conf.upstream,
        listen=conf.listen,
        server_name=server_name,
        cert=conf.cert,
        key=conf.key,
        htpasswd=conf.htpasswd,
    )


def _check_address(pattern: re.Pattern[str], value: str, what: str) -> None:
    # fullmatch, not match + '$', which also matches before a final newline
    found = pattern.fullmatch(value)
    valid = found is not None and 1 <= int(found["port"]) <= 65535
    try:
        parts = found.groupdict() if found is not None else {}
        if parts.get("ip6") is not None:
            ipaddress.IPv6Address(parts["ip6"])
        for host in (parts.get("ip4"), parts.get("name")):
            if host is not None:
                validate_host(host)  # refuses 10.0.0.256 too, which looks like a name
    except (ValueError, InvalidInput):
        valid = False
    if not valid:
        forms = "PORT, IPV4:PORT or [IPV6]:PORT" if what == "listen" else "NAME:PORT, IP:PORT"
        raise InvalidInput(f"{what} {value!r}: expected {forms}")
