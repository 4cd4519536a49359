"""The one OCPI error tree. Handlers and routing raise these; one renderer turns them into envelopes.

    OcpiError                         (base: status_code, http_status, default_message)
    +-- ClientError          2000     generic client error
    |   +-- InvalidParameters  2001   invalid or missing parameters (also: spoofed FROM / owner ids)
    |   |   +-- PartyConflict  2001   a party the credentials may not claim: another platform's, the hub's, role HUB
    |   |   +-- AgreementConflict 2001 the two parties have an agreement already (admin API: 409)
    |   |   +-- SpoofedParty   2001   FROM / owner ids not the caller's (HTTP 403)
    |   |   +-- Unrepresentable 2001  the receiver's OCPI version cannot carry it as a valid object
    |   +-- NotEnoughInformation 2002
    |   +-- UnknownLocation    2003
    |   +-- UnknownToken       2004
    |   +-- InvalidJson        2000   body is not JSON (HTTP 400, transport_and_format 4.1)
    |   +-- NotFound           2000   unknown path or object (HTTP 404)
    |   +-- MethodNotAllowed   2000   wrong method, or credentials 405 (credentials.asciidoc)
    |   +-- PayloadTooLarge    2000   body over the configured cap (HTTP 413)
    |   +-- RateLimited        2000   too many requests, or too many in progress for one platform (HTTP 429)
    |   +-- BodyTimeout        2000   the request body did not arrive in time (HTTP 408, Connection: close)
    +-- AuthError            2000     missing/unknown token (HTTP 401)
    |   +-- Forbidden          2000   a known token that may not do this (HTTP 403)
    +-- ServerError          3000     generic server error (HTTP 500; never a traceback)
    |   +-- Overloaded           3000 the hub or a receiver's queue is full (HTTP 503 + Retry-After)
    |   +-- HandshakeFailed      3000 the partner failed the handshake (HTTP 200; admin API: 502)
    |       +-- UnableToUseClientApi 3001 the partner's versions/details could not be used
    |       +-- UnsupportedVersion   3002 no mutual version
    |       +-- NoMatchingEndpoints  3003 required endpoints missing
    +-- HubError             4000     generic hub error
        +-- UnusableAnswer     4000   a partner's answer the hub cannot use (routing/peers/foreign.py; retryable)
        |   +-- AnswerTooLarge 4000   the answer is longer than max_answer_bytes (retryable)
        +-- UnexpectedFailure  4000   a bug on one message's path, contained to it (retryable)
        +-- LoopDetected       4000   a request the hub sent itself came back to it (HTTP 508)
        +-- UnknownReceiver    4001   TO unknown, or it lacks the module
        |   +-- RedirectRefused 4001  the receiver redirects where the hub may not follow (final)
        |   +-- NoAgreement     4001  no roaming agreement in force between sender and receiver (final)
        +-- ReceiverTimeout    4002   the forwarded request timed out (retryable)
        +-- ConnectionProblem  4003   the receiver could not be reached (retryable)
            +-- UrlRefused     4003   the SSRF guard refuses the URL (routing/peers/ssrf.py; retryable)
                +-- OwnUrlRefused 4003 the URL leads back to the hub itself (final)

2001/2002 travel with HTTP 200 on OCPI paths (the OCPI layer was reached). The admin API is
plain HTTP: ``http_status(error, admin=True)`` is the one place that says what an error means
there (client errors 400, a party already served elsewhere 409, a partner that failed the
handshake 502). The HTTP status that goes with a 4xxx code is not specified (docs/DESIGN-NOTES.md,
HTTP and OCPI status codes);
like the Open Charging Network node we answer HTTP 200 with the 4xxx code so sloppy clients read
the body. ``retryable`` says whether the delivery worker may try the same message again.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AgreementConflict",
    "AnswerTooLarge",
    "AuthError",
    "BodyTimeout",
    "ClientError",
    "ConnectionProblem",
    "Forbidden",
    "HandshakeFailed",
    "HubError",
    "InvalidJson",
    "InvalidParameters",
    "LoopDetected",
    "MethodNotAllowed",
    "NoAgreement",
    "NoMatchingEndpoints",
    "NotEnoughInformation",
    "NotFound",
    "OcpiError",
    "Overloaded",
    "OwnUrlRefused",
    "PartyConflict",
    "PayloadTooLarge",
    "RateLimited",
    "ReceiverTimeout",
    "RedirectRefused",
    "ServerError",
    "SpoofedParty",
    "UnableToUseClientApi",
    "UnexpectedFailure",
    "UnknownLocation",
    "UnknownReceiver",
    "UnknownToken",
    "Unrepresentable",
    "UnsupportedVersion",
    "UnusableAnswer",
    "UrlRefused",
    "http_status",
]


class OcpiError(Exception):
    """Base of every error the hub answers with; carries the OCPI and HTTP status."""

    status_code: ClassVar[int] = 3000
    http_status: ClassVar[int] = 500
    admin_http_status: ClassVar[int | None] = None  # when the admin API answers differently
    default_message: ClassVar[str] = "Generic server error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, data: Any = None, headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.data = data
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def status(self) -> int:
        """HTTP status to answer with on an OCPI path."""
        return self.http_status


def http_status(error: OcpiError, *, admin: bool) -> int:
    """The HTTP status of an error: on OCPI paths its class's, on the (plain HTTP) admin API its admin one."""
    if admin and error.admin_http_status is not None:
        return error.admin_http_status
    return error.http_status


class ClientError(OcpiError):
    """2000: generic client error."""

    status_code = 2000
    http_status = 400
    default_message = "Generic client error"


class InvalidParameters(ClientError):
    """2001: invalid or missing parameters.

    HTTP 200: valid JSON that reached the OCPI layer gets no HTTP error code (status_codes,
    "HTTP status codes"); only unparsable JSON is HTTP 400 (InvalidJson).
    """

    status_code = 2001
    http_status = 200
    admin_http_status = 400
    default_message = "Invalid or missing parameters"


class SpoofedParty(InvalidParameters):
    """2001 with HTTP 403: the caller speaks for a party it does not serve (FROM header, owner ids)."""

    http_status = 403
    admin_http_status = 403
    default_message = "Party is not served by the calling platform"


class Unrepresentable(InvalidParameters):
    """2001: after translation the object would be invalid for the receiver's OCPI version.

    A required field the target version needs and nothing can derive (routing/versions/validate.py):
    the hub refuses rather than send an invalid object; the Loss report names the fields.
    """

    default_message = "The receiver's OCPI version cannot carry this as a valid object"


class PartyConflict(InvalidParameters):
    """2001: a party the credentials may not claim (admin API: 409).

    Served by another platform (a country_code and party_id belong to one platform, whatever the
    role), the hub's own party, or role HUB (routing/registry/identity.py).
    """

    admin_http_status = 409
    default_message = "A party in these credentials is already served by another platform"


class AgreementConflict(InvalidParameters):
    """2001: the two parties of an agreement have one already (admin API: 409)."""

    admin_http_status = 409
    default_message = "These two parties have an agreement already"


class NotEnoughInformation(ClientError):
    """2002: not enough information (e.g. authorize without usable location references)."""

    status_code = 2002
    http_status = 200
    admin_http_status = 400
    default_message = "Not enough information"


class UnknownLocation(ClientError):
    """2003: unknown location."""

    status_code = 2003
    http_status = 404
    default_message = "Unknown location"


class UnknownToken(ClientError):
    """2004: unknown token (real-time authorization)."""

    status_code = 2004
    http_status = 404
    default_message = "Unknown token"


class InvalidJson(ClientError):
    """The body is not valid JSON: HTTP 400 (transport_and_format, status codes)."""

    status_code = 2000
    http_status = 400
    default_message = "Request body is not valid JSON"


class NotFound(ClientError):
    """Unknown path or object: HTTP 404."""

    status_code = 2000
    http_status = 404
    default_message = "Not found"


class MethodNotAllowed(ClientError):
    """Method not allowed here (also credentials POST when registered, PUT/DELETE when not)."""

    status_code = 2000
    http_status = 405
    default_message = "Method not allowed"


class PayloadTooLarge(ClientError):
    """The request body is larger than the configured cap."""

    status_code = 2000
    http_status = 413
    default_message = "Request body too large"


class RateLimited(ClientError):
    """The caller sends faster than its configured rate."""

    status_code = 2000
    http_status = 429
    default_message = "Too many requests"


class BodyTimeout(ClientError):
    """The request body did not arrive within ``body_read_timeout``: HTTP 408 with ``Connection: close``."""

    status_code = 2000
    http_status = 408
    default_message = "The request body did not arrive in time"


class AuthError(OcpiError):
    """Missing or unknown credentials token: HTTP 401."""

    status_code = 2000
    http_status = 401
    default_message = "Missing or invalid Authorization token"


class Forbidden(AuthError):
    """A known token used where it is not allowed: HTTP 403."""

    http_status = 403
    default_message = "Not allowed with this token"


class ServerError(OcpiError):
    """3000: generic server error."""

    status_code = 3000
    http_status = 500
    default_message = "Generic server error"


class Overloaded(ServerError):
    """More pushes for one receiver than it can take now: HTTP 503 with Retry-After, nothing stored."""

    http_status = 503
    default_message = "Too many messages waiting for this receiver; retry later"


class HandshakeFailed(ServerError):
    """3001-3003 (raised as one of its subclasses): the partner failed the handshake."""

    http_status = 200
    admin_http_status = 502  # the partner failed the handshake, not the admin's request


class UnableToUseClientApi(HandshakeFailed):
    """3001: the partner's versions or version details could not be used."""

    status_code = 3001
    default_message = "Unable to use the client's API"


class UnsupportedVersion(HandshakeFailed):
    """3002: no mutual OCPI version."""

    status_code = 3002
    default_message = "Unsupported version"


class NoMatchingEndpoints(HandshakeFailed):
    """3003: required endpoints missing."""

    status_code = 3003
    default_message = "No matching endpoints or expected endpoints missing"


class HubError(OcpiError):
    """4000: generic hub error."""

    status_code = 4000
    http_status = 200
    admin_http_status = 502
    default_message = "Generic hub error"


class UnusableAnswer(HubError):
    """4000: a partner's answer the hub cannot use (routing/peers/foreign.py says why); a failed attempt for a push."""

    retryable = True
    default_message = "The receiver's answer could not be used"


class AnswerTooLarge(UnusableAnswer):
    """4000: the partner's answer is longer than ``max_answer_bytes``; the hub stopped reading it."""

    default_message = "The receiver's answer is too large"


class UnexpectedFailure(HubError):
    """4000: an unexpected error on one message's path (a bug, logged); that message's failed attempt only."""

    retryable = True
    default_message = "Unexpected failure while delivering this message (logged)"


class LoopDetected(HubError):
    """4000 with HTTP 508 (RFC 5842): a request carrying the hub's own ``Via`` mark came back to it.

    508, not 200: the hub's own outbound call that receives this (through a proxy or an alias)
    must not take it for a partner's answer; a still-alive check only counts an answer below 500.
    """

    http_status = 508
    default_message = "Loop detected: this request was sent by this hub and came back to it"


class UnknownReceiver(HubError):
    """4001: unknown receiver (TO address unknown or lacking the module)."""

    status_code = 4001
    default_message = "Unknown receiver"


class RedirectRefused(UnknownReceiver):
    """4001: the receiver's endpoint redirects where the hub may not follow; final, never retried."""

    default_message = "The receiver's endpoint redirects where the hub does not follow"


class NoAgreement(UnknownReceiver):
    """4001: the hub requires roaming agreements and none in force covers this sender, receiver and module.

    4001, not 2xxx: the message is fine, the hub will not route it (status_codes, 4xxx: errors a
    Hub encounters while routing); to the sender the receiver is unknown (HubClientInfo does not
    list it either). Final: retrying cannot help until the operator adds an agreement.
    """

    default_message = "No roaming agreement between these parties"


class ReceiverTimeout(HubError):
    """4002: timeout on the forwarded request."""

    status_code = 4002
    retryable = True
    default_message = "Timeout on forwarded request"


class ConnectionProblem(HubError):
    """4003: the receiving party could not be reached (or is not connected)."""

    status_code = 4003
    retryable = True
    default_message = "Connection problem: receiving party is not connected"


class UrlRefused(ConnectionProblem):
    """A partner URL the SSRF guard refuses (routing/peers/ssrf.py); the hub never connects to it."""

    default_message = "URL refused: it points at a non-public address"


class OwnUrlRefused(UrlRefused):
    """A partner URL that leads back to the hub itself: refused, and final (retrying cannot help)."""

    retryable = False
    default_message = "URL refused: it points at the hub itself"
