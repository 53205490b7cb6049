import pulumi

from components.probe import FileProbe

config = pulumi.Config()
FileProbe("probe", config.require("path"), config.get("content") or "hello")
pulumi.export("path", config.require("path"))
