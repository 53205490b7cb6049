"""``python -m sandbox.slapd --port 9389 --state .state/slapd --data sandbox/slapd/example.yaml``:
a fresh slapd on 127.0.0.1 (StartTLS; CA written to <state>/tls/ca.pem), loaded over LDAP with
the example people and groups, serving until interrupted. The bind account is
``cn=cf-access,ou=service,dc=corp,dc=example`` with the password given by ``--bind-password``
(default: the demo's throwaway ``ldap-demo-bind-password``)."""

from __future__ import annotations

import argparse
import shutil
import signal
import time
from pathlib import Path

from sandbox.slapd import data
from sandbox.slapd.server import SlapdServer

DEMO_BIND_PASSWORD = "ldap-demo-bind-password"  # the demo's throwaway value, like the emulators'


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.slapd")
    parser.add_argument("--port", type=int, default=9389)
    parser.add_argument("--state", type=Path, default=Path(".state/slapd"))
    parser.add_argument("--data", type=Path, default=Path("sandbox/slapd/example.yaml"))
    parser.add_argument("--bind-password", default=DEMO_BIND_PASSWORD)
    parser.add_argument("--size-limit", type=int, default=100)
    args = parser.parse_args()
    shutil.rmtree(args.state / "db", ignore_errors=True)  # a fresh database each start
    with SlapdServer.start(args.state, size_limit=args.size_limit, port=args.port) as server:
        conn = server.admin()
        data.load(conn, data.Data.from_yaml(args.data), args.bind_password)
        conn.unbind_s()
        print(
            f"slapd on {server.url} (StartTLS, CA {server.tls.ca_file}); bind as {data.BIND_DN}", flush=True
        )
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        while not stop and server.process.poll() is None:
            time.sleep(0.5)


if __name__ == "__main__":
    main()
