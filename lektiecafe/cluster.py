"""The scale-out configuration on one machine: N hub processes on one PostgreSQL database, joined
by Redis, behind nginx with the shipped configuration (deploy/nginx/), all on loopback.

`lektiecafe cluster` runs it by hand; the tests and benchmarks start the same thing with
`start_cluster`. Only what the shipped configuration leaves to the IT department differs from
production: the files in lektiecafe/ (name, a self-signed certificate, the hub ports) and the
listening ports (loopback ports instead of 80 and 443)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from lektiecafe.launch import ROOT, HubProcess, free_port, start_hub, stop_process

NGINX = Path("/usr/sbin/nginx")
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
HUB_NAME, TURN_NAME = "localhost", "turn.localhost"


class ClusterDidNotStart(RuntimeError):
    """nginx (or a hub) would not start; the message says why, with its log's tail."""


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, what: str = "the server"
) -> None:
    """Until something listens on loopback `port`; raises if `process` exits or 10 s pass."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterDidNotStart(f"{what} exited: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise ClusterDidNotStart(f"{what} did not start: {log.read_text()[-3000:]}")


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A one-day certificate for HUB_NAME, TURN_NAME and 127.0.0.1: (certificate, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", f"/CN={HUB_NAME}"),
            *("-addext", f"subjectAltName=DNS:{HUB_NAME},DNS:{TURN_NAME},IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def shipped(name: str, replacements: dict[str, str]) -> str:
    """A shipped nginx file with its listening ports moved; each replaced text must be there."""
    text = (ROOT / "deploy/nginx" / name).read_text()
    for old, new in replacements.items():
        if old not in text:
            raise ClusterDidNotStart(f"deploy/nginx/{name} no longer has {old!r}")
        text = text.replace(old, new)
    return text


@dataclass
class Front:
    """nginx with the shipped configuration in front of the hub processes."""

    process: subprocess.Popen[bytes]
    http_url: str  # the plain-HTTP listener (port 80 in production)
    url: str  # https://localhost:<port 443 in production>
    port: int
    ca: Path  # the self-signed certificate, to trust
    key: Path  # its private key (coturn's TLS uses the same certificate)
    access_log: Path  # the http-level access log Debian's nginx.conf has
    error_log: Path

    def stop(self) -> None:
        stop_process(self.process)


def start_front(
    folder: Path,
    hub_ports: list[int],
    coturn_tls_port: int | None = None,
    worker_connections: int = 4096,
) -> Front:
    """nginx on free loopback ports before `hub_ports`, its files and logs in `folder`; TLS
    connections asking for TURN_NAME go to `coturn_tls_port` (or a closed port). Each client
    WebSocket takes four of the `worker_connections` (bench/load.py asks for more)."""
    if not (NGINX.exists() and STREAM_MODULE.exists()):
        raise ClusterDidNotStart(
            "nginx is missing: run scripts/ensure-test-tools (nginx, libnginx-mod-stream)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(folder)
    http_port, https_port, inner_port, hop_port = (free_port() for _ in range(4))
    conf = folder / "nginx"
    (conf / "lektiecafe").mkdir(parents=True, exist_ok=True)
    (conf / "lektiecafe/server-name.conf").write_text(f"server_name {HUB_NAME};\n")
    (conf / "lektiecafe/certificate.conf").write_text(
        f"ssl_certificate {cert};\nssl_certificate_key {key};\n"
    )
    (conf / "lektiecafe/hubs.conf").write_text(
        "".join(f"server 127.0.0.1:{port};\n" for port in hub_ports)
    )
    (conf / "lektiecafe/turn-name.conf").write_text(f"{TURN_NAME} lektiecafe_turn;\n")
    inner = {"127.0.0.1:8443": f"127.0.0.1:{inner_port}"}
    (conf / "lektiecafe.conf").write_text(
        shipped(
            "lektiecafe.conf",
            {"listen 80;": f"listen 127.0.0.1:{http_port};", "listen [::]:80;": "", **inner},
        )
    )
    (conf / "lektiecafe-stream.conf").write_text(
        shipped(
            "lektiecafe-stream.conf",
            {
                "listen 443;": f"listen 127.0.0.1:{https_port};",
                "listen [::]:443;": "",
                "127.0.0.1:5350": f"127.0.0.1:{hop_port}",
                "127.0.0.1:5349": f"127.0.0.1:{coturn_tls_port or free_port()}",
                **inner,
            },
        )
    )
    access_log = folder / "access.log"
    temp = "".join(
        f"  {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # What Debian's /etc/nginx/nginx.conf does around the two shipped files.
    (conf / "nginx.conf").write_text(
        f"load_module {STREAM_MODULE};\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        + f"worker_rlimit_nofile {2 * worker_connections};\n"
        + f"events {{ worker_connections {worker_connections}; }}\n"
        + f"http {{\n  access_log {access_log};\n{temp}  include lektiecafe.conf;\n}}\n"
        + "include lektiecafe-stream.conf;\n"
    )
    command = [str(NGINX), "-p", str(folder), "-c", str(conf / "nginx.conf")]
    command += ["-e", str(folder / "nginx-error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise ClusterDidNotStart(f"nginx refused the configuration: {checked.stderr}")
    log = folder / "nginx.out"
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(https_port, process, log, "nginx")
    except ClusterDidNotStart:
        stop_process(process)
        raise
    return Front(
        process,
        f"http://127.0.0.1:{http_port}",
        f"https://{HUB_NAME}:{https_port}",
        https_port,
        cert,
        key,
        access_log,
        folder / "nginx-error.log",
    )


@dataclass
class Cluster:
    hubs: list[HubProcess]
    front: Front | None = None
    stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.front is not None:
            self.front.stop()
        for hub in self.hubs:
            with suppress(OSError):
                hub.stop()


def start_cluster(
    hubs: int,
    database_url: str,
    redis_url: str,
    folder: Path,
    secret_key: str,
    env: dict[str, str] | None = None,
    with_front: bool = True,
    worker_connections: int = 4096,
) -> Cluster:
    """`hubs` hub processes on `database_url` (already migrated) joined by `redis_url`, sharing
    one data dir in `folder`, and nginx before them unless `with_front` is false; everything is
    stopped again if a part fails to start."""
    cluster = Cluster([])
    # One data dir for all, as a shared disk would be in production: an attachment uploaded
    # through one process is read by another.
    (data_dir := folder / "data").mkdir(parents=True, exist_ok=True)
    try:
        for _number in range(hubs):
            cluster.hubs.append(
                start_hub(
                    database_url,
                    data_dir,
                    secret_key,
                    {**(env or {}), "LEKTIECAFE_MESSAGE_QUEUE": redis_url},
                )
            )
        if with_front:
            ports = [int(hub.url.rsplit(":", 1)[1]) for hub in cluster.hubs]
            cluster.front = start_front(
                folder / "front", ports, worker_connections=worker_connections
            )
    except BaseException:
        cluster.stop()
        raise
    return cluster
