"""The nginx frontend conf: the recipe's directives in their blocks, and nothing smuggled in."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from dockops.core.registry_server.htpasswd import write_htpasswd
from dockops.core.registry_server.nginx import FrontendConf, render_conf
from dockops.core.registry_server.pki import ensure_pki
from dockops.errors import InvalidInput

HOST_NET = FrontendConf(
    server_name="registry.example.com", listen="127.0.0.1:8443", upstream="127.0.0.1:5000"
)
BRIDGE = FrontendConf(server_name="10.0.0.5", listen="443", upstream="myregistry:5000")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

Blocks = dict[tuple[str, ...], list[str]]


def parse(text: str) -> Blocks:
    """Directives by enclosing block, e.g. {("server", "location /v2/"): ["auth_basic ...", ...]}.

    Enough for what render_conf writes: one directive, block opening or closing per line.
    """
    blocks: Blocks = {(): []}
    stack: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split("#", 1)[0].split())
        if not line:
            continue
        if line.endswith("{"):
            stack.append(line[:-1].strip())
            blocks.setdefault(tuple(stack), [])
        elif line == "}":
            stack.pop()
        else:
            assert line.endswith(";"), f"not a directive: {raw!r}"
            blocks[tuple(stack)].append(line[:-1])
    assert stack == [], "unbalanced braces"
    return blocks


def test_host_network_conf_is_the_recipe() -> None:
    blocks = parse(render_conf(HOST_NET))
    assert blocks == {
        (): [],
        ("upstream docker-registry",): ["server 127.0.0.1:5000"],
        ("map $upstream_http_docker_distribution_api_version $docker_distribution_api_version",): [
            "'' 'registry/2.0'"
        ],
        ("server",): [
            "listen 127.0.0.1:8443 ssl",
            "server_name registry.example.com",
            "ssl_certificate /etc/nginx/certs/domain.crt",
            "ssl_certificate_key /etc/nginx/certs/domain.key",
            "ssl_protocols TLSv1.2 TLSv1.3",
            "ssl_ciphers HIGH:!aNULL:!MD5",
            "ssl_prefer_server_ciphers on",
            "ssl_session_cache shared:SSL:10m",
            "client_max_body_size 0",
            "chunked_transfer_encoding on",
        ],
        ("server", "location /v2/"): [
            'auth_basic "Registry realm"',
            "auth_basic_user_file /etc/nginx/auth/htpasswd",
            "add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always",
            "proxy_pass http://docker-registry",
            "proxy_set_header Host $http_host",
            "proxy_set_header X-Real-IP $remote_addr",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
            "proxy_set_header X-Forwarded-Proto $scheme",
            "proxy_read_timeout 900",
            "proxy_request_buffering off",
            "proxy_buffering off",
        ],
        ("server", "location /"): ["return 404"],
    }


def test_bridge_conf_listens_on_443_and_reaches_the_registry_by_name() -> None:
    blocks = parse(render_conf(BRIDGE))
    assert "listen 443 ssl" in blocks[("server",)]
    assert "server_name 10.0.0.5" in blocks[("server",)]
    assert blocks[("upstream docker-registry",)] == ["server myregistry:5000"]


def test_ipv6_addresses_are_bracketed() -> None:
    conf = FrontendConf(server_name="::1", listen="[::1]:8443", upstream="[::1]:5000")
    blocks = parse(render_conf(conf))
    assert "listen [::1]:8443 ssl" in blocks[("server",)]
    assert "server_name [::1]" in blocks[("server",)]  # as the Host header carries it
    assert blocks[("upstream docker-registry",)] == ["server [::1]:5000"]
    with pytest.raises(InvalidInput, match="listen"):
        render_conf(replace(conf, listen="::1:8443"))


def test_paths_are_rendered_as_given() -> None:
    conf = replace(HOST_NET, cert="/srv/c.crt", key="/srv/c.key", htpasswd="/srv/users")
    server = parse(render_conf(conf))
    assert "ssl_certificate /srv/c.crt" in server[("server",)]
    assert "ssl_certificate_key /srv/c.key" in server[("server",)]
    assert "auth_basic_user_file /srv/users" in server[("server", "location /v2/")]


def test_no_user_agent_check_from_the_old_recipe() -> None:
    assert "user_agent" not in render_conf(HOST_NET)


@pytest.mark.parametrize(
    "field, value",
    [
        ("server_name", "a.com; include /etc/passwd"),
        ("server_name", "a.com\n"),
        ("server_name", "*.example.com"),
        ("server_name", ""),
        ("listen", "443; include /etc/passwd"),
        ("listen", "443\n"),
        ("listen", "443 ssl"),
        ("listen", "0.0.0.0:443 default_server"),
        ("listen", "0"),
        ("listen", "65536"),
        ("listen", "\u0664\u0664\u0663"),  # Arabic-Indic digits: \d would take them
        ("listen", "localhost:443"),
        ("listen", "999.0.0.1:443"),
        ("listen", "[::g]:443"),
        ("listen", "[127.0.0.1]:443"),
        ("upstream", "registry:5000; }"),
        ("upstream", "registry 5000"),
        ("upstream", "registry"),
        ("upstream", "http://registry:5000"),
        ("upstream", "-registry:5000"),
        ("upstream", "10.0.0.256:5000"),
        ("upstream", "[zz]:5000"),
        ("upstream", "registry:5000\n"),
        ("cert", "certs/domain.crt"),
        ("cert", "/a b"),
        ("key", "/a;b"),
        ("key", "/a{b"),
        ("htpasswd", "/a}b"),
        ("htpasswd", "/a'b"),
        ("htpasswd", '/a"b'),
        ("htpasswd", "/etc/$host"),
        ("htpasswd", "/a#b"),
        ("htpasswd", "/a\n"),
        ("htpasswd", ""),
    ],
)
def test_injection_and_malformed_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidInput):
        render_conf(replace(HOST_NET, **{field: value}))


@pytest.mark.parametrize(
    "upstream", ["127.0.0.1:5000", "myregistry:5000", "registry.internal:5000", "[fd00::2]:5000"]
)
def test_good_upstreams_pass(upstream: str) -> None:
    assert f"server {upstream};" in render_conf(replace(HOST_NET, upstream=upstream))


def test_the_rendered_conf_depends_on_the_inputs_alone() -> None:
    text = render_conf(HOST_NET)
    assert render_conf(HOST_NET) == text
    assert render_conf(BRIDGE) != text


def _nginx_test(nginx: str, prefix: Path, main: Path) -> subprocess.CompletedProcess[str]:
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=True).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version)
    # -e (1.19.5+) keeps nginx from opening its compiled-in error log before reading the conf
    early_log = ["-e", "stderr"] if found and tuple(map(int, found.groups())) >= (1, 19, 5) else []
    command = [nginx, "-t", *early_log, "-p", str(prefix), "-c", str(main)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed on this machine")
@pytest.mark.parametrize(
    "conf",
    [
        HOST_NET,
        FrontendConf(server_name="::1", listen="[::1]:8443", upstream="[::1]:5000"),
        # a name nginx can resolve here; in bridge mode Docker's DNS resolves the container name
        replace(BRIDGE, upstream="localhost:5000"),
    ],
    ids=["host-network", "ipv6", "bridge"],
)
def test_nginx_accepts_the_conf(tmp_path: Path, conf: FrontendConf) -> None:
    assert NGINX is not None
    files = ensure_pki(tmp_path / "certs", conf.server_name)
    write_htpasswd(tmp_path / "htpasswd", "alice", "pw")
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    ours = replace(
        conf, cert=str(files.crt), key=str(files.key), htpasswd=str(tmp_path / "htpasswd")
    )
    temp = "\n".join(
        f"    {kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp}\n    include {conf_d}/*.conf;\n}}\n"
    )

    (conf_d / "registry.conf").write_text(render_conf(ours))
    result = _nginx_test(NGINX, tmp_path, main)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr

    # the same run with a bad value must fail: proof that nginx read our file at all
    broken = render_conf(ours).replace(
        "chunked_transfer_encoding on;", "chunked_transfer_encoding maybe;"
    )
    (conf_d / "registry.conf").write_text(broken)
    result = _nginx_test(NGINX, tmp_path, main)
    assert result.returncode != 0
    assert "chunked_transfer_encoding" in result.stderr
