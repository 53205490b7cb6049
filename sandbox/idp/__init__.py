"""Local emulators of the identity providers cf-access reads (Okta, Microsoft Graph + Entra ID).

In-process::

    with OktaEmulator.start(data, port=0, tls=True) as okta:
        okta.url, okta.ca_file, okta.faults, okta.counters
    with GraphEmulator.start(data, tls=True) as graph:
        graph.authority, graph.graph_base_url, graph.tenant_id

Standalone: ``python -m sandbox.idp okta|graph --help``.
"""

from .common import Fault, Faults, Truncate
from .data import IdpData, IdpGroup, IdpUser, generate_data
from .graph_app import DEFAULT_TENANT, FederatedCredential, GraphEmulator
from .okta_app import DEFAULT_API_TOKEN, OktaEmulator

__all__ = [
    "DEFAULT_API_TOKEN",
    "DEFAULT_TENANT",
    "Fault",
    "Faults",
    "FederatedCredential",
    "GraphEmulator",
    "IdpData",
    "IdpGroup",
    "IdpUser",
    "OktaEmulator",
    "Truncate",
    "generate_data",
]
