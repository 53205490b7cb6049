"""Peak RSS of a process tree, sampled with psutil every ~100 ms.

Processes are put in three buckets by their command line:
``pulumi`` (the CLI and its Go plugins: language host), ``program`` (pulumi-language-python-exec,
the Python program) and ``provider`` (``python -m pulumi.dynamic`` /
pulumi-resource-pulumi-python, the dynamic-provider process). For the OpenTofu peer
(bench/peer_tofu.py): ``tofu`` (the CLI) and ``provider`` (terraform-provider-cloudfoundry).
Each bucket's peak is the largest sum of RSS of its processes seen in one sample; ``total`` is
the largest sum over all buckets.
"""

from __future__ import annotations

import threading
import time

import psutil


def bucket(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "other"
    if "pulumi.dynamic" in cmd or "pulumi-resource-pulumi-python" in cmd or "terraform-provider-" in cmd:
        return "provider"
    if cmd.split(" ")[0].rsplit("/", 1)[-1] == "tofu":
        return "tofu"
    if "language-python-exec" in cmd:
        return "program"
    if "pulumi" in cmd.split(" ")[0] or "pulumi-language" in cmd:
        return "pulumi"
    return "other"


class TreeSampler:
    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak: dict[str, int] = {"pulumi": 0, "program": 0, "provider": 0, "other": 0, "total": 0}
        self.samples = 0
        self._stop = threading.Event()
        self._buckets: dict[int, str] = {}
        # pid -> CPU seconds (user + system) last seen; summed per bucket at the end
        self._cpu: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return
        sums: dict[str, int] = {}
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                times = proc.cpu_times()
                self._cpu[proc.pid] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            kind = self._buckets.get(proc.pid)
            if kind is None or kind == "other":
                # Re-classify "other" too: a fresh fork may not have exec'd yet.
                kind = self._buckets[proc.pid] = bucket(proc)
            sums[kind] = sums.get(kind, 0) + rss
        self.samples += 1
        for kind, value in sums.items():
            self.peak[kind] = max(self.peak.get(kind, 0), value)
        self.peak["total"] = max(self.peak["total"], sum(sums.values()))

    def cpu_seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, seconds in self._cpu.items():
            kind = self._buckets.get(pid, "other")
            out[kind] = round(out.get(kind, 0.0) + seconds, 1)
        out["total"] = round(sum(self._cpu.values()), 1)
        return out


def run_sampled(
    popen_args: dict[str, object], timeout: float
) -> tuple[int, float, dict[str, int], dict[str, float], str]:
    """Start a process, sample its tree until it exits (or kill its group at ``timeout``).

    Returns (exit code, wall seconds, RSS peaks in bytes, CPU seconds by bucket, output)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as out:
        started = time.monotonic()
        proc = subprocess.Popen(  # type: ignore[call-overload]
            **popen_args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        with TreeSampler(proc.pid) as sampler:
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                import os
                import signal

                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = -9
        wall = time.monotonic() - started
        out.seek(0)
        return code, wall, dict(sampler.peak), sampler.cpu_seconds(), out.read()
