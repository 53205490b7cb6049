"""An AD-like LDAP server on ldaptor (Twisted): the real LDAP protocol on 127.0.0.1, over TLS
(``ldaps://``), with the Active Directory behaviours cf-access relies on:

* ``memberOf`` computed from groups' ``member``, and the in-chain rule
  ``(memberOf:1.2.840.113556.1.4.1941:=<group DN>)`` resolved transitively;
* ranged retrieval: ``member`` with more than ``max_values`` values comes back as
  ``member;range=0-<n>``; ``member;range=<low>-*`` returns the next slice;
* paged results (RFC 2696, control 1.2.840.113556.1.4.319) with an opaque cookie;
* ``userAccountControl`` is just data (bit 0x2 = disabled), as on a DC.

Fault knob: ``drop_paging_after`` (pages): from then on the server answers without the paged
results control, i.e. it silently stops paging, as a misbehaving proxy or DC can.
Run as ``python -m sandbox.ldap_ad --port N --data file.json --cert C --key K``.
"""

from __future__ import annotations

import base64
from typing import Any

from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap import ldaperrors
from ldaptor.protocols.ldap.ldapserver import BaseLDAPServer
from twisted.internet import protocol

from sandbox.ldap_ad.directory import IN_CHAIN, AdDirectory, Filter, UnsupportedFilter, norm_dn

PAGED = b"1.2.840.113556.1.4.319"


def _text(value: Any) -> str:
    raw = getattr(value, "value", value)
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def to_filter(node: Any) -> Filter:
    """ldaptor's filter objects → our ``Filter`` (only what the AD-like server supports)."""
    if isinstance(node, pureldap.LDAPFilter_and):
        return Filter("and", children=tuple(to_filter(c) for c in node))
    if isinstance(node, pureldap.LDAPFilter_or):
        return Filter("or", children=tuple(to_filter(c) for c in node))
    if isinstance(node, pureldap.LDAPFilter_not):
        return Filter("not", children=(to_filter(node.value),))
    if isinstance(node, pureldap.LDAPFilter_present):
        return Filter("present", attr=_text(node))
    if isinstance(node, pureldap.LDAPFilter_equalityMatch):
        return Filter("eq", attr=_text(node.attributeDesc), value=_text(node.assertionValue))
    if isinstance(node, pureldap.LDAPFilter_extensibleMatch):
        rule = _text(node.matchingRule) if node.matchingRule else ""
        if rule != IN_CHAIN:
            raise UnsupportedFilter(f"matching rule {rule!r}")
        return Filter("in_chain", attr=_text(node.type), value=_text(node.matchValue))
    raise UnsupportedFilter(type(node).__name__)


def _paged_request(controls: list[tuple[bytes, Any, Any]] | None) -> tuple[int, bytes] | None:
    for control_type, _criticality, value in controls or []:
        if control_type == PAGED:
            seq, _ = pureber.berDecodeObject(pureber.BERDecoderContext(), value)
            return int(seq[0].value), bytes(seq[1].value)
    return None


def _paged_response(cookie: bytes) -> tuple[bytes, None, bytes]:
    value = pureber.BERSequence([pureber.BERInteger(0), pureber.BEROctetString(cookie)]).toWire()
    return (PAGED, None, value)


class AdLdapServer(BaseLDAPServer):  # type: ignore[misc]
    """One client connection."""

    def __init__(self, directory: AdDirectory, drop_paging_after: int | None) -> None:
        super().__init__()
        self.directory = directory
        self.drop_paging_after = drop_paging_after
        self.bound = False
        self.pages_served = 0
        self._msg_id = 0
        self._controls: list[tuple[bytes, Any, Any]] | None = None

    def handle(self, msg: Any) -> None:
        # ldaptor hands handlers the request but not its message id or a way to attach
        # response controls; remember both for the search handler.
        self._msg_id = msg.id
        self._controls = msg.controls
        super().handle(msg)

    def _send(self, op: Any, controls: list[tuple[bytes, None, bytes]] | None = None) -> None:
        self.transport.write(pureldap.LDAPMessage(op, id=self._msg_id, controls=controls).toWire())

    # Error results of the right type (ldaptor's default is an ExtendedResponse).
    fail_LDAPBindRequest = pureldap.LDAPBindResponse
    fail_LDAPSearchRequest = pureldap.LDAPSearchResultDone

    def handle_LDAPBindRequest(self, request: Any, controls: Any, reply: Any) -> Any:
        dn, password = _text(request.dn), _text(request.auth)
        d = self.directory
        if norm_dn(dn) != norm_dn(d.bind_dn) or password != d.bind_password:
            # AD's wording: data 52e = invalid credentials.
            raise ldaperrors.LDAPInvalidCredentials(b"80090308: LdapErr: DSID-0C09044E, data 52e")
        self.bound = True
        return pureldap.LDAPBindResponse(resultCode=0)

    def handle_LDAPUnbindRequest(self, request: Any, controls: Any, reply: Any) -> None:
        self.transport.loseConnection()

    def handle_LDAPSearchRequest(self, request: Any, controls: Any, reply: Any) -> None:
        if not self.bound:
            raise ldaperrors.LDAPOperationsError(b"000004DC: LdapErr: a successful bind must be completed")
        base = _text(request.baseObject)
        if request.scope == 0 and not self.directory.exists(base):
            raise ldaperrors.LDAPNoSuchObject(base.encode("utf-8"))
        try:
            flt = to_filter(request.filter)
            matched = [e for e in self.directory.scope(base, request.scope) if flt.matches(self.directory, e)]
        except UnsupportedFilter as exc:
            raise ldaperrors.LDAPUnwillingToPerform(str(exc).encode("utf-8")) from None
        attrs = [_text(a) for a in request.attributes]
        paged = _paged_request(controls)
        start, size = 0, len(matched)
        if paged is not None:
            size = paged[0] or len(matched)
            start = int(base64.b64decode(paged[1]).decode()) if paged[1] else 0
        for entry in matched[start : start + size]:
            self._send(
                pureldap.LDAPSearchResultEntry(
                    objectName=entry.dn,
                    attributes=[(k, v) for k, v in self.directory.project(entry, attrs)],
                )
            )
        done = pureldap.LDAPSearchResultDone(resultCode=0)
        if paged is None:
            self._send(done)
            return
        self.pages_served += 1
        if self.drop_paging_after is not None and self.pages_served > self.drop_paging_after:
            self._send(done)  # the fault: no paged-results control in the response
            return
        following = start + size
        cookie = base64.b64encode(str(following).encode()) if following < len(matched) else b""
        self._send(done, controls=[_paged_response(cookie)])


class AdLdapFactory(protocol.ServerFactory):
    def __init__(self, directory: AdDirectory, drop_paging_after: int | None = None) -> None:
        self.directory = directory
        self.drop_paging_after = drop_paging_after

    def buildProtocol(self, addr: Any) -> AdLdapServer:
        server = AdLdapServer(self.directory, self.drop_paging_after)
        server.factory = self
        return server
