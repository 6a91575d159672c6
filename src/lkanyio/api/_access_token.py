"""Access tokens: grants and claims; :class:`AccessToken` mints, :class:`TokenVerifier` checks.

A LiveKit access token is a JWT signed with HS256 by an API key's secret: ``iss`` is the key,
``sub`` the participant's identity, ``nbf``/``exp`` its validity, and the claims below in
camelCase (``video``, ``sip``, ``roomConfig``, ...), the form livekit-server and every LiveKit SDK
read.  Names, fields and defaults are livekit-api's, so a token made here and one made there carry
the same claims for the same builder calls (``tests/unit/test_api_tokens.py`` checks both ways).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal, TypeAlias, TypeVar, final

import jwt
from google.protobuf.json_format import MessageToDict, ParseDict
from livekit.protocol.room import RoomConfiguration

from .._errors import InvalidTokenError

__all__ = [
    "DEFAULT_LEEWAY",
    "DEFAULT_TTL",
    "AccessToken",
    "AgentEndpointGrants",
    "AgentGrants",
    "AgentThreadGrants",
    "Claims",
    "InferenceGrants",
    "ObservabilityGrants",
    "ParticipantKind",
    "SIPGrants",
    "TokenVerifier",
    "VideoGrants",
]

DEFAULT_TTL: Final = timedelta(hours=6)
"""How long a token is valid unless :meth:`AccessToken.with_ttl` says otherwise."""
DEFAULT_LEEWAY: Final = timedelta(minutes=1)
"""Clock skew :class:`TokenVerifier` forgives on ``nbf`` and ``exp``."""

_Kind: TypeAlias = Literal["standard", "egress", "ingress", "sip", "agent"]
ParticipantKind: TypeAlias = _Kind
"""The participant kinds a token can claim (:meth:`AccessToken.with_kind`)."""


@final
@dataclass
class VideoGrants:
    """What the holder may do with rooms (the token's ``video`` claim).

    ``None`` leaves a permission out of the token (the server's default applies: it denies
    ``can_update_own_metadata``, for one).
    """

    room_create: bool | None = None
    """Create and delete rooms (RoomService ``CreateRoom``/``DeleteRoom``)."""
    room_list: bool | None = None
    """List rooms."""
    room_record: bool | None = None
    """Use the Egress service."""
    room_admin: bool | None = None
    """Administer :attr:`room`: its participants, tracks, metadata, agent dispatches."""
    room_join: bool | None = None
    """Join :attr:`room` (needs an identity)."""
    room: str = ""
    """The room the room-scoped grants apply to."""
    destination_room: str | None = None
    """The room a participant may be forwarded or moved to."""
    can_publish: bool = True
    """Publish tracks."""
    can_subscribe: bool = True
    """Subscribe to tracks."""
    can_publish_data: bool = True
    """Publish data packets and data streams."""
    can_publish_sources: list[str] | None = None
    """Only these track sources (``"camera"``, ``"microphone"``, ...); supersedes
    :attr:`can_publish` when set."""
    can_update_own_metadata: bool | None = None
    """Change one's own name, metadata and attributes."""
    ingress_admin: bool | None = None
    """Use the Ingress service."""
    hidden: bool | None = None
    """Be invisible to the other participants."""
    recorder: bool | None = None
    """Deprecated: mark the participant as a recorder."""
    agent: bool | None = None
    """Register as an agent worker (the server's ``/agent`` endpoint)."""
    can_manage_agent_session: bool | None = None
    """Manage an agent session remotely."""
    can_subscribe_metrics: bool | None = None
    """Subscribe to metrics."""


@final
@dataclass
class SIPGrants:
    """What the holder may do with SIP (the token's ``sip`` claim)."""

    admin: bool = False
    """Manage trunks and dispatch rules."""
    call: bool = False
    """Make outbound calls and transfers."""


@final
@dataclass
class InferenceGrants:
    """LiveKit Cloud inference (the token's ``inference`` claim)."""

    perform: bool = False
    """Perform inference."""


@final
@dataclass
class ObservabilityGrants:
    """LiveKit Cloud observability (the token's ``observability`` claim)."""

    write: bool = False
    """Publish observability data."""


@final
@dataclass
class AgentGrants:
    """LiveKit Cloud agents (the token's ``agent`` claim)."""

    admin: bool = False
    """Create, update and delete cloud agents."""
    simulation_admin: bool = False
    """Manage agent simulations and scenarios."""
    database_admin: bool = False
    """Access the project's agent databases."""
    dispatch_admin: bool = False
    """Manage the project's agent dispatch queue."""


@final
@dataclass
class AgentEndpointGrants:
    """Calls to an agent's non-public HTTP endpoints (the token's ``agentEndpoint`` claim)."""

    call: bool = False
    """Invoke the endpoints."""
    agent_name: str = ""
    """Only this agent (empty: every agent of the project)."""
    deployment: str = ""
    """Only this deployment (empty: every deployment)."""


@final
@dataclass
class AgentThreadGrants:
    """Agent threads (the token's ``agentThread`` claim)."""

    all: bool = False
    """Every thread and scope of the project (the action flags still apply)."""
    scope: str = ""
    """The scope threads may be listed and created in."""
    thread_ids: list[str] | None = None
    """The threads that may be read, written and deleted."""
    list: bool = False
    """List threads."""
    create: bool = False
    """Create threads."""
    write: bool = False
    """Write threads."""
    read: bool = False
    """Read threads."""
    delete: bool = False
    """Delete threads."""


@final
@dataclass
class Claims:
    """The claims of a token: what :class:`AccessToken` signs and :class:`TokenVerifier` returns."""

    identity: str = ""
    """The participant's identity (the JWT's ``sub``)."""
    name: str = ""
    """The participant's display name."""
    kind: str = ""
    """The participant kind (:data:`ParticipantKind`), or ``""``."""
    metadata: str = ""
    """The participant's metadata."""
    video: VideoGrants | None = None
    """Room grants."""
    sip: SIPGrants | None = None
    """SIP grants."""
    inference: InferenceGrants | None = None
    """Inference grants."""
    observability: ObservabilityGrants | None = None
    """Observability grants."""
    agent: AgentGrants | None = None
    """Cloud agent grants."""
    agent_endpoint: AgentEndpointGrants | None = None
    """Agent endpoint grants."""
    agent_thread: AgentThreadGrants | None = None
    """Agent thread grants."""
    attributes: dict[str, str] | None = None
    """The participant's attributes."""
    sha256: str | None = None
    """Base64 SHA-256 of a body the token vouches for (webhooks)."""
    room_preset: str | None = None
    """A room preset for a room the join creates."""
    room_config: RoomConfiguration | None = field(default=None)
    """The configuration of a room the join creates: empty timeouts, agent dispatches, ..."""

    def asdict(self) -> dict[str, Any]:
        """The claims as the token carries them: camelCase, without unset (``None``/``""``) ones."""
        claims = _camel(self)
        if self.room_config is not None:
            claims["roomConfig"] = MessageToDict(self.room_config)
        return claims


def _snake_to_camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _camel(value: Any) -> dict[str, Any]:
    """A grants or claims dataclass as camelCase JSON data, leaving out ``None`` and ``""``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if item is None or (isinstance(item, str) and item == "") or f.name == "room_config":
            continue
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            item = _camel(item)
        elif isinstance(item, list):
            item = list(item)
        elif isinstance(item, dict):
            item = dict(item)
        out[_snake_to_camel(f.name)] = item
    return out


G = TypeVar("G")


def _grants(claims: dict[str, Any], key: str, kind: type[G]) -> G | None:
    """The grants ``claims[key]`` as ``kind`` (unknown fields ignored), ``None`` if absent."""
    data = claims.get(key)
    if not isinstance(data, dict):
        return None
    known = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return kind(**{s: v for k, v in data.items() if (s := _camel_to_snake(k)) in known})


def _credentials(api_key: str | None, api_secret: str | None) -> tuple[str | None, str | None]:
    return (
        api_key or os.environ.get("LIVEKIT_API_KEY") or None,
        api_secret or os.environ.get("LIVEKIT_API_SECRET") or None,
    )


@final
class AccessToken:
    """A builder of access tokens, signed with an API key's secret.

    ::

        token = (
            AccessToken(api_key, api_secret)
            .with_identity("alice")
            .with_grants(VideoGrants(room_join=True, room="my-room"))
            .to_jwt()
        )

    Every ``with_*`` method sets one claim and returns the builder.
    """

    ParticipantKind: TypeAlias = _Kind

    def __init__(self, api_key: str | None = None, api_secret: str | None = None) -> None:
        """Start a token signed by ``api_key``'s ``api_secret``.

        Args:
            api_key: the key (default: ``LIVEKIT_API_KEY``).
            api_secret: its secret (default: ``LIVEKIT_API_SECRET``).

        Raises:
            ValueError: no key or no secret.
        """
        key, secret = _credentials(api_key, api_secret)
        if not key or not secret:
            raise ValueError(
                "api_key and api_secret must be set (or LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
            )
        self.api_key: str = key
        self.api_secret: str = secret
        self.claims = Claims()
        self.identity = ""
        self.ttl = DEFAULT_TTL

    def with_ttl(self, ttl: timedelta) -> AccessToken:
        """Valid for ``ttl`` from :meth:`to_jwt` on (default :data:`DEFAULT_TTL`)."""
        self.ttl = ttl
        return self

    def with_grants(self, grants: VideoGrants) -> AccessToken:
        """Set the room grants."""
        self.claims.video = grants
        return self

    def with_sip_grants(self, grants: SIPGrants) -> AccessToken:
        """Set the SIP grants."""
        self.claims.sip = grants
        return self

    def with_observability_grants(self, grants: ObservabilityGrants) -> AccessToken:
        """Set the observability grants."""
        self.claims.observability = grants
        return self

    def with_inference_grants(self, grants: InferenceGrants) -> AccessToken:
        """Set the inference grants."""
        self.claims.inference = grants
        return self

    def with_agent_grants(self, grants: AgentGrants) -> AccessToken:
        """Set the cloud agent grants."""
        self.claims.agent = grants
        return self

    def with_agent_endpoint_grants(self, grants: AgentEndpointGrants) -> AccessToken:
        """Set the agent endpoint grants."""
        self.claims.agent_endpoint = grants
        return self

    def with_agent_thread_grants(self, grants: AgentThreadGrants) -> AccessToken:
        """Set the agent thread grants."""
        self.claims.agent_thread = grants
        return self

    def with_identity(self, identity: str) -> AccessToken:
        """Set the participant's identity."""
        self.identity = identity
        return self

    def with_kind(self, kind: _Kind) -> AccessToken:
        """Set the participant kind (``"agent"``, ``"standard"``, ...)."""
        self.claims.kind = kind
        return self

    def with_name(self, name: str) -> AccessToken:
        """Set the participant's display name."""
        self.claims.name = name
        return self

    def with_metadata(self, metadata: str) -> AccessToken:
        """Set the participant's metadata."""
        self.claims.metadata = metadata
        return self

    def with_attributes(self, attributes: dict[str, str]) -> AccessToken:
        """Set the participant's attributes."""
        self.claims.attributes = attributes
        return self

    def with_sha256(self, sha256: str) -> AccessToken:
        """Vouch for a body by its base64 SHA-256 (what a webhook's token carries)."""
        self.claims.sha256 = sha256
        return self

    def with_room_preset(self, preset: str) -> AccessToken:
        """Name a room preset for the room the join creates."""
        self.claims.room_preset = preset
        return self

    def with_room_config(self, config: RoomConfiguration) -> AccessToken:
        """Configure the room the join creates, such as the agents dispatched to it.

        For example ``RoomConfiguration(agents=[RoomAgentDispatch(agent_name="helper")])``.
        """
        self.claims.room_config = config
        return self

    def to_jwt(self) -> str:
        """The signed token, valid from now for the TTL.

        Raises:
            ValueError: the grants join a room but the identity or the room is missing.
        """
        video = self.claims.video
        if video is not None and video.room_join and (not self.identity or not video.room):
            raise ValueError("identity and room must be set when joining a room")
        now = int(time.time())
        claims = self.claims.asdict()
        claims.update(
            sub=self.identity,
            iss=self.api_key,
            nbf=now,
            exp=now + int(self.ttl.total_seconds()),
        )
        return jwt.encode(claims, self.api_secret, algorithm="HS256")


def _when(seconds: object) -> str:
    try:
        return datetime.fromtimestamp(float(seconds), timezone.utc).isoformat()  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return repr(seconds)


def _why(exc: jwt.PyJWTError, token: str, api_key: str) -> str:
    """What is wrong with ``token``, in words (from PyJWT's error)."""
    try:
        unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        unverified = {}
    if isinstance(exc, jwt.ExpiredSignatureError):
        return f"the token expired at {_when(unverified.get('exp'))}"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return f"the token is not valid before {_when(unverified.get('nbf'))}"
    if isinstance(exc, jwt.InvalidSignatureError):
        return f"the token's signature does not match the secret of key {api_key!r}"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"the token was issued by key {unverified.get('iss')!r}, not {api_key!r}"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim!r} claim"
    if isinstance(exc, jwt.DecodeError):
        return f"not a token ({exc})"
    return f"the token is invalid ({exc})"


@final
class TokenVerifier:
    """Checks access tokens signed by one API key and returns their :class:`Claims`."""

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        leeway: timedelta = DEFAULT_LEEWAY,
    ) -> None:
        """Verify tokens of ``api_key`` signed with ``api_secret``.

        Args:
            api_key: the key (default: ``LIVEKIT_API_KEY``); tokens of other keys are refused.
            api_secret: its secret (default: ``LIVEKIT_API_SECRET``).
            leeway: clock skew forgiven on the token's ``nbf`` and ``exp``.
        """
        self.api_key, self.api_secret = _credentials(api_key, api_secret)
        self._leeway = leeway

    def verify(self, token: str, *, verify_signature: bool = True) -> Claims:
        """The claims of ``token``, once its signature, issuer and validity period check out.

        Args:
            token: the JWT.
            verify_signature: ``False`` only reads the claims (no check at all).

        Raises:
            ValueError: no key or secret to verify with.
            InvalidTokenError: expired, not yet valid, signed with another secret, issued by
                another key, without an expiry, or not a token (the message says which).
        """
        if verify_signature and (not self.api_key or not self.api_secret):
            raise ValueError(
                "api_key and api_secret must be set (or LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
            )
        try:
            # A token without exp would verify forever: first-party minters always set it.
            claims: dict[str, Any] = jwt.decode(
                token,
                key=self.api_secret or "",
                issuer=self.api_key or "",
                algorithms=["HS256"],
                leeway=self._leeway.total_seconds(),
                options=(
                    {"verify_signature": True, "require": ["exp"]}
                    if verify_signature
                    else {"verify_signature": False}
                ),
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(_why(exc, token, self.api_key or "")) from exc
        result = Claims(
            identity=str(claims.get("sub", "")),
            name=str(claims.get("name", "")),
            kind=str(claims.get("kind", "")),
            metadata=str(claims.get("metadata", "")),
            video=_grants(claims, "video", VideoGrants) or VideoGrants(),
            sip=_grants(claims, "sip", SIPGrants) or SIPGrants(),
            inference=_grants(claims, "inference", InferenceGrants) or InferenceGrants(),
            observability=(
                _grants(claims, "observability", ObservabilityGrants) or ObservabilityGrants()
            ),
            agent=_grants(claims, "agent", AgentGrants),
            agent_endpoint=_grants(claims, "agentEndpoint", AgentEndpointGrants),
            agent_thread=_grants(claims, "agentThread", AgentThreadGrants),
            attributes=dict(claims.get("attributes") or {}),
            sha256=str(claims.get("sha256", "")),
            room_preset=claims.get("roomPreset") or None,
        )
        room_config = claims.get("roomConfig")
        if room_config:
            result.room_config = ParseDict(
                room_config, RoomConfiguration(), ignore_unknown_fields=True
            )
        return result
