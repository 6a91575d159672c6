"""Webhooks: check that a POST came from the server, unchanged, and read its event."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING, final

from google.protobuf.json_format import Parse, ParseError
from livekit.protocol.webhook import WebhookEvent

from .._errors import InvalidTokenError, WebhookError

if TYPE_CHECKING:
    from ._access_token import TokenVerifier

__all__ = ["WebhookReceiver"]


@final
class WebhookReceiver:
    """Verifies the webhooks livekit-server posts and returns their events.

    The server signs each webhook with a token of its API key (the ``Authorization`` header)
    whose ``sha256`` claim is the base64 SHA-256 of the body::

        receiver = WebhookReceiver(TokenVerifier(api_key, api_secret))
        event = receiver.receive(body, request.headers["Authorization"])
    """

    def __init__(self, token_verifier: TokenVerifier) -> None:
        """Verify with ``token_verifier`` (the key and secret the server signs webhooks with)."""
        self._verifier = token_verifier

    def receive(self, body: str | bytes, auth_token: str) -> WebhookEvent:
        """The event of a webhook, once its token and its body's hash check out.

        Args:
            body: the request body exactly as received (bytes, or text to encode as UTF-8).
            auth_token: the ``Authorization`` header (the token, with or without ``Bearer``).

        Raises:
            WebhookError: the token is invalid (its :class:`~lkanyio.InvalidTokenError` is the
                cause), carries no body hash, the body does not match it, or the body is not a
                webhook event.
        """
        raw = body.encode() if isinstance(body, str) else bytes(body)
        token = auth_token.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            claims = self._verifier.verify(token)
        except InvalidTokenError as exc:
            raise WebhookError(f"webhook refused: {exc}") from exc
        if not claims.sha256:
            raise WebhookError("webhook refused: its token carries no sha256 of the body")
        try:
            expected = base64.b64decode(claims.sha256, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WebhookError("webhook refused: its token's sha256 is not base64") from exc
        if not hmac.compare_digest(hashlib.sha256(raw).digest(), expected):
            raise WebhookError(
                "webhook refused: the body does not match the sha256 its token vouches for "
                "(changed on the way, or not the body the server sent)"
            )
        try:
            return Parse(raw.decode("utf-8"), WebhookEvent(), ignore_unknown_fields=True)
        except (ParseError, UnicodeDecodeError) as exc:
            raise WebhookError(f"webhook refused: the body is not a webhook event ({exc})") from exc
