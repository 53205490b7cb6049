"""Default endpoints and scopes of the SDK-backed identity sources.

Kept apart from ``okta.py`` and ``entra.py`` so that reading the stack config (the pydantic
models in ``config.py``) does not import the Okta and Microsoft Graph SDKs: together they take
~2.4 s to import, paid on every ``pulumi`` run of a stack that only uses the directory source.
"""

from __future__ import annotations

OKTA_READ_SCOPES = ("okta.groups.read", "okta.users.read")

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_GRAPH_SCOPE = "https://graph.microsoft.com/.default"
