"""Run an IdP emulator standalone.

    python -m sandbox.idp okta  --port 9031 --data sandbox/idp/example.yaml --tls-dir .state/idp-tls/okta \
        --client cf-access-okta=path/to/public.pem
    python -m sandbox.idp graph --port 9032 --data sandbox/idp/example.yaml --tls-dir .state/idp-tls/graph \
        --app cf-access-entra=emulator-secret
    python -m sandbox.idp okta --generate 2000x50 --latency 0.02

Prints the base URL and the CA bundle (for ``caBundle`` in the stack config), then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from .common import EmulatorBase
from .data import IdpData, generate_data
from .graph_app import DEFAULT_TENANT, GraphEmulator
from .okta_app import DEFAULT_API_TOKEN, OktaEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.idp",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=["okta", "graph"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", type=Path, help="YAML file of users and groups (see sandbox/idp/data.py)")
    parser.add_argument("--generate", metavar="USERSxGROUPS", help="generated data, e.g. 2000x50")
    parser.add_argument("--page-size", type=int, default=None, help="largest page the server returns")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--no-tls", action="store_true", help="plain http (the SDKs need https or hacks)")
    parser.add_argument("--tls-dir", type=Path, help="write ca.pem/server.pem here (default: a temp dir)")
    parser.add_argument(
        "--api-token", action="append", default=[], help=f"Okta SSWS token (default {DEFAULT_API_TOKEN})"
    )
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="CLIENT_ID=PUBLIC_KEY_PEM_FILE",
        help="Okta OAuth service app (private_key_jwt)",
    )
    parser.add_argument("--tenant", default=DEFAULT_TENANT)
    parser.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="CLIENT_ID=SECRET",
        help="Entra app registration with a client secret",
    )
    args = parser.parse_args(argv)

    if args.generate:
        users, _, groups = args.generate.partition("x")
        data = generate_data(int(users), int(groups))
    else:
        data = IdpData.from_obj(args.data)
    emulator: EmulatorBase
    if args.kind == "okta":
        okta = OktaEmulator(
            data, page_size=args.page_size or 200, api_tokens=tuple(args.api_token) or (DEFAULT_API_TOKEN,)
        )
        for spec in args.client:
            client_id, _, pem = spec.partition("=")
            okta.register_client(client_id, Path(pem).read_text(encoding="ascii"))
        emulator = okta
    else:
        graph = GraphEmulator(data, page_size=args.page_size or 999, tenant_id=args.tenant)
        for spec in args.app:
            client_id, _, secret = spec.partition("=")
            graph.register_app(client_id, secret=secret)
        emulator = graph
    emulator.faults.latency = args.latency
    if args.tls_dir is not None:
        emulator.launch(port=args.port, host=args.host, tls=not args.no_tls, tls_dir=args.tls_dir)
    else:
        emulator.launch(port=args.port, host=args.host, tls=not args.no_tls)
    print(f"{args.kind} emulator on {emulator.url}", flush=True)
    if emulator.ca_file:
        print(f"CA bundle: {emulator.ca_file}", flush=True)
    print(f"{len(data.users)} users, {len(data.groups)} groups", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
