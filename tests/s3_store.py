"""A real S3-compatible object store for tests: SeaweedFS (``weed server -s3``) on 127.0.0.1.

``scripts/bootstrap-seaweedfs.sh`` (run by ``make setup``) builds ``weed`` once and caches
it; this module builds it if needed (no skip when it is missing), starts a throwaway
server on free loopback ports with static S3 credentials, and creates buckets with a
SigV4-signed ``PUT /<bucket>`` (no AWS SDK is needed for three calls).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCESS_KEY = "cf-access-test-key"
SECRET_KEY = "cf-access-test-secret"  # a throwaway store's credential, not a real secret


def weed_binary() -> Path:
    subprocess.run(
        [str(REPO / "scripts" / "bootstrap-seaweedfs.sh")], check=True, capture_output=True, text=True
    )
    return Path((REPO / ".tools" / "weed-bin-dir").read_text(encoding="utf-8").strip()) / "weed"


def _free_port_block(size: int) -> int:
    """A base port with ``size`` consecutive free ports (weed needs HTTP + gRPC per role)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size >= 65535:
            continue
        if all(_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free loopback ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass
class S3Store:
    endpoint: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def host(self) -> str:
        return self.endpoint.removeprefix("http://")

    def backend_url(self, bucket: str) -> str:
        """The Pulumi DIY backend URL for a bucket here (gocloud s3blob: path style, no TLS)."""
        return f"s3://{bucket}?endpoint={self.host}&s3ForcePathStyle=true&disableSSL=true&region={REGION}"

    def credentials(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}

    def request(self, method: str, path: str, query: Mapping[str, str] | None = None) -> httpx.Response:
        """One SigV4-signed request (empty body) to the store."""
        now = dt.datetime.now(dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(b"").hexdigest()
        headers = {"host": self.host, "x-amz-content-sha256": payload, "x-amz-date": stamp}
        signed = ";".join(sorted(headers))
        canonical_query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted((query or {}).items())
        )
        canonical = "\n".join(
            [
                method,
                quote(path, safe="/-_.~"),
                canonical_query,
                *(f"{k}:{headers[k]}" for k in sorted(headers)),
                "",
                signed,
                payload,
            ]
        )
        scope = f"{day}/{REGION}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = _hmac(_hmac(_hmac(_hmac(f"AWS4{SECRET_KEY}".encode(), day), REGION), "s3"), "aws4_request")
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        del headers["host"]
        url = self.endpoint + quote(path, safe="/-_.~") + (f"?{canonical_query}" if canonical_query else "")
        return httpx.request(method, url, headers=headers, timeout=30)

    def create_bucket(self, bucket: str) -> None:
        resp = self.request("PUT", f"/{bucket}")
        if resp.status_code != 200:
            raise RuntimeError(f"creating bucket {bucket}: HTTP {resp.status_code} {resp.text[:200]}")

    def keys(self, bucket: str, prefix: str) -> list[str]:
        resp = self.request("GET", f"/{bucket}", {"list-type": "2", "prefix": prefix})
        resp.raise_for_status()
        return sorted(re.findall(r"<Key>([^<]+)</Key>", resp.text))

    def get(self, bucket: str, key: str) -> bytes:
        resp = self.request("GET", f"/{bucket}/{key}")
        resp.raise_for_status()
        return resp.content


@contextmanager
def s3_store(work_dir: Path, timeout_s: float = 60) -> Iterator[S3Store]:
    """Start ``weed server -s3`` in ``work_dir`` (data dir thrown away with it); stop it after."""
    weed = weed_binary()
    data = work_dir / "weed-data"
    data.mkdir(parents=True)
    config = work_dir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "cf-access-state",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    p = _free_port_block(8)
    log = work_dir / "weed.log"
    args = [
        str(weed),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        f"-master.port={p}",
        f"-master.port.grpc={p + 1}",
        f"-volume.port={p + 2}",
        f"-volume.port.grpc={p + 3}",
        "-filer",
        f"-filer.port={p + 4}",
        f"-filer.port.grpc={p + 5}",
        "-s3",
        f"-s3.port={p + 6}",
        f"-s3.port.grpc={p + 7}",
        "-s3.port.iceberg=0",  # extra gateways off: only the ports above are opened
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-master.volumeSizeLimitMB=32",
        "-volume.max=16",
        "-volume.preStopSeconds=0",  # a throwaway store: stop at once (default waits 10 s)
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=work_dir)
    store = S3Store(f"http://127.0.0.1:{p + 6}", process, log)
    try:
        _wait_ready(store, timeout_s)
        yield store
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


def _wait_ready(store: S3Store, timeout_s: float) -> None:
    """Until a signed ListBuckets answers 200 (master, volume, filer and gateway all up)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if store.process.poll() is not None:
            raise RuntimeError(f"weed exited ({store.process.returncode}); see {store.log}")
        try:
            resp = store.request("GET", "/")
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(0.3)
    raise RuntimeError(f"weed S3 gateway not ready after {timeout_s:.0f} s ({last}); see {store.log}")
