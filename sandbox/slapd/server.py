"""A throwaway OpenLDAP ``slapd`` on 127.0.0.1, for tests and the ldap-demo stack.

``SlapdServer.start(workdir)`` writes a slapd.conf (core, cosine, inetorgperson, nis schemas;
an mdb database; the ppolicy overlay, whose ``pwdAccountLockedTime`` marks locked accounts; a
TLS certificate for 127.0.0.1 from a CA of its own, so clients use StartTLS), starts Debian's
``slapd`` on a free port in the foreground (``-d 0``, so it dies with us) and waits until it
answers. Entries are loaded *through LDAP* by the caller (``sandbox.slapd.data``), bound as the
root DN, exactly like an admin would with ``ldapadd``.

``size_limit`` sets slapd's ``sizelimit`` for everyone but the root DN; paged searches may still
return everything (``size.prtotal=unlimited``), which is what a paging client must rely on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ldap

from sandbox.idp.tls import ServerTls, make_server_tls

SUFFIX = "dc=corp,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "slapd-root-throwaway"  # sandbox only: a throwaway server that dies with the test
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def slapd_binary() -> str:
    """Debian installs slapd to /usr/sbin, which is not on every PATH (make setup installs it)."""
    found = shutil.which("slapd") or ("/usr/sbin/slapd" if os.access("/usr/sbin/slapd", os.X_OK) else None)
    if found is None:
        raise RuntimeError("slapd is not installed: run make setup (it apt-installs slapd and ldap-utils)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _module_dir() -> str:
    for candidate in ("/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/ldap", "/usr/lib/aarch64-linux-gnu/ldap"):
        if Path(candidate, "back_mdb.so").exists() or Path(candidate, "back_mdb.la").exists():
            return candidate
    return "/usr/lib/ldap"


def _schema_dir() -> str:
    return "/etc/ldap/schema" if Path("/etc/ldap/schema/core.schema").exists() else "/etc/openldap/schema"


def slapd_conf(workdir: Path, tls: ServerTls, size_limit: int | None, paged_unlimited: bool = True) -> str:
    schemas = "\n".join(f"include {_schema_dir()}/{name}.schema" for name in SCHEMAS)
    # size.prtotal: how many entries one *paged* search may return in total (default: the hard
    # limit). unlimited = paging gets around the size limit, as on most production servers.
    total = " size.prtotal=unlimited" if paged_unlimited else ""
    limit = f"sizelimit size.soft={size_limit} size.hard={size_limit}{total}\n" if size_limit else ""
    return f"""{schemas}
modulepath {_module_dir()}
moduleload back_mdb
moduleload ppolicy
pidfile {workdir}/slapd.pid
TLSCACertificateFile {tls.ca_file}
TLSCertificateFile {tls.cert_file}
TLSCertificateKeyFile {tls.key_file}
{limit}
database mdb
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {workdir}/db
maxsize 104857600
overlay ppolicy
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


def _spawn(
    workdir: Path,
    tls: ServerTls,
    port: int,
    ldaps_port: int,
    log_file: Path,
    size_limit: int | None,
    paged_unlimited: bool,
) -> subprocess.Popen[bytes]:
    conf = workdir / "slapd.conf"
    conf.write_text(slapd_conf(workdir, tls, size_limit, paged_unlimited), encoding="utf-8")
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [
                slapd_binary(),
                *("-f", str(conf), "-d", "0"),
                *("-h", f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


@dataclass
class SlapdServer:
    workdir: Path
    port: int
    tls: ServerTls
    process: subprocess.Popen[bytes]
    log_file: Path
    ldaps_port: int = 0
    size_limit: int | None = None
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, workdir: Path, size_limit: int | None = None, port: int | None = None
    ) -> Iterator[SlapdServer]:
        server = cls.launch(workdir, size_limit=size_limit, port=port)
        try:
            yield server
        finally:
            server.stop()

    @classmethod
    def launch(cls, workdir: Path, size_limit: int | None = None, port: int | None = None) -> SlapdServer:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "db").mkdir(exist_ok=True)
        tls = make_server_tls(workdir / "tls")
        port = port or free_port()
        ldaps_port = free_port()
        log_file = workdir / "slapd.log"
        process = _spawn(workdir, tls, port, ldaps_port, log_file, size_limit, paged_unlimited=True)
        server = cls(workdir, port, tls, process, log_file, ldaps_port, size_limit)
        server._ready_or_stop()
        return server

    def restart(self, *, size_limit: int | None = None, paged_unlimited: bool = True) -> None:
        """Stop and start again on the same port, database and certificate with other limits
        (``paged_unlimited=False``: paged searches are held to the size limit too)."""
        self.stop()
        self.size_limit = size_limit
        self.process = _spawn(
            self.workdir, self.tls, self.port, self.ldaps_port, self.log_file, size_limit, paged_unlimited
        )
        self.stopped = False
        self._ready_or_stop()

    def _ready_or_stop(self) -> None:
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"slapd exited ({self.process.returncode}):\n{self.log_file.read_text()[-3000:]}"
                )
            with contextlib.suppress(ldap.LDAPError):
                conn = self.admin()
                conn.unbind_s()
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"slapd did not answer on {self.url} within {timeout:g}s:\n{self.log_file.read_text()[-3000:]}"
        )

    def admin(self) -> ldap.ldapobject.LDAPObject:
        """A connection bound as the root DN over StartTLS (for loading and changing entries)."""
        conn = ldap.initialize(self.url, bytes_mode=False)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        conn.set_option(ldap.OPT_TIMEOUT, 30)
        conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(self.tls.ca_file))
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        conn.start_tls_s()
        conn.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        return conn

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung server)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
