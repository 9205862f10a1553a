"""Text files placed in the base images (their bytes are part of each image's hash)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    """One /etc/passwd line and its primary group (same id as the user)."""

    name: str
    uid: int
    group: str | None = None  # defaults to the user's name
    home: str = "/nonexistent"
    shell: str = "/bin/false"


def passwd_file(users: tuple[User, ...]) -> str:
    return "".join(f"{u.name}:x:{u.uid}:{u.uid}:{u.name}:{u.home}:{u.shell}\n" for u in users)


def group_file(users: tuple[User, ...]) -> str:
    return "".join(f"{u.group or u.name}:x:{u.uid}:\n" for u in users)


NSSWITCH_CONF = """\
passwd: files
group: files
shadow: files
hosts: files dns
"""

# The official registry:2 config.yml, with deletes enabled (tests delete manifests).
REGISTRY_CONFIG = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""

# The official image's nginx.conf, with Debian's worker user and the logs on the container's
# stdout and stderr.
NGINX_CONF = """\
user  www-data;
worker_processes  auto;

error_log  /dev/stderr notice;
pid        /run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /dev/stdout  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
"""

# Like the official default.conf. On --network host it would take the machine's port 80, so
# tests replace /etc/nginx/conf.d (or this file) with a server on 127.0.0.1 and a free port.
NGINX_DEFAULT_CONF = """\
server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
"""

NGINX_INDEX_HTML = """\
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
</body>
</html>
"""

NGINX_ERROR_HTML = """\
<!DOCTYPE html>
<html>
<head>
<title>Error</title>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
</body>
</html>
"""
