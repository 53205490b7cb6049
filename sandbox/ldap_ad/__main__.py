"""``python -m sandbox.ldap_ad --port N --data dir.json --cert C --key K [--drop-paging-after P]``:
serve the AD-like LDAP server over TLS (ldaps) on 127.0.0.1 until killed."""

from __future__ import annotations

import argparse
from pathlib import Path

from OpenSSL import SSL
from twisted.internet import reactor, ssl

from sandbox.ldap_ad.directory import AdDirectory
from sandbox.ldap_ad.server import AdLdapFactory


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.ldap_ad")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--drop-paging-after", type=int, default=None)
    parser.add_argument("--max-tls", choices=["1.2", "1.3"], default=None, help="highest TLS version offered")
    args = parser.parse_args()
    factory = AdLdapFactory(AdDirectory.load(args.data), args.drop_paging_after)
    context = ssl.DefaultOpenSSLContextFactory(str(args.key), str(args.cert))  # type: ignore[no-untyped-call]
    if args.max_tls == "1.2":  # an older server: clients that insist on TLS 1.3 must fail
        context.getContext().set_max_proto_version(SSL.TLS1_2_VERSION)  # type: ignore[no-untyped-call]
    reactor.listenSSL(args.port, factory, context, interface="127.0.0.1")
    print(f"AD-like LDAP server on ldaps://127.0.0.1:{args.port}", flush=True)
    reactor.run()  # type: ignore[misc]


if __name__ == "__main__":
    main()
