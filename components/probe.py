"""A tiny dynamic resource that writes a file: the toolchain's self-test.

tests/e2e/test_engine_loop.py drives it through the real CLI to prove that the
engine, the language host, the dynamic-provider plugin and our package import
all work before any Cloud Foundry logic is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult


class FileProbeProvider(ResourceProvider):
    serialize_as_secret_always = False

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["path"] if olds.get("path") != news.get("path") else []
        return DiffResult(
            changes=olds.get("content") != news.get("content") or bool(replaces), replaces=replaces
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        Path(props["path"]).write_text(props["content"], encoding="utf-8")
        return CreateResult(id_=props["path"], outs={"path": props["path"], "content": props["content"]})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        Path(news["path"]).write_text(news["content"], encoding="utf-8")
        return UpdateResult(outs={"path": news["path"], "content": news["content"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        path = Path(id_)
        if not path.exists():
            return ReadResult(id_=None, outs={})
        outs = {"path": id_, "content": path.read_text(encoding="utf-8")}
        return ReadResult(id_=id_, outs=outs, inputs=dict(outs))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        Path(id_).unlink(missing_ok=True)


class FileProbe(Resource):
    def __init__(self, name: str, path: str, content: str) -> None:
        super().__init__(FileProbeProvider(), name, {"path": path, "content": content})
