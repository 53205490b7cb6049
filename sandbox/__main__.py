"""``python -m sandbox --host 127.0.0.1 --port 9022 --seed FILE [--state-file F] [--latency-ms N]``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from .app import create_app
from .faults import FaultConfig
from .seed import load_seed_file
from .server import bind_socket, make_uvicorn_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local Cloud Controller V3 + UAA")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9022)
    parser.add_argument("--seed", type=Path, help="seed file (YAML or JSON)")
    parser.add_argument("--state-file", type=Path, help="load/save state as JSON here")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    parser.add_argument("--access-log", action="store_true", help="enable uvicorn's access log")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    seed = load_seed_file(args.seed) if args.seed else None
    app, state = create_app(seed, args.state_file)
    if args.latency_ms:
        state.faults = FaultConfig.from_knobs({"latency_ms": args.latency_ms})
    logging.getLogger("sandbox").info(
        "sandbox listening on http://%s:%d (UAA at /uaa, ops at /_sandbox)", args.host, args.port
    )
    server = uvicorn.Server(make_uvicorn_config(app, args.host, args.port, access_log=args.access_log))
    try:
        server.run(sockets=[bind_socket(args.host, args.port)])
    finally:
        state.save()


if __name__ == "__main__":
    main()
