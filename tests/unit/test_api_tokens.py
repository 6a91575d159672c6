"""Access tokens: lkanyio.api's and livekit-api's carry the same claims, each verifies the other's.

livekit-api is imported here only to compare against (its token code is synchronous: no event
loop is involved).  No server: tests/integration/test_api_room.py joins with these tokens.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from livekit import api as lkapi

import lkanyio
from lkanyio import api

KEY = "APIkey"
SECRET = "s" * 40
OTHER_SECRET = "t" * 40
GRANTS: dict[str, Any] = {
    "room_join": True,
    "room": "r1",
    "can_publish": False,
    "can_publish_sources": ["camera", "microphone"],
    "can_update_own_metadata": True,
    "hidden": True,
    "agent": True,
    "can_subscribe_metrics": True,
}


def _both(build: Any) -> tuple[str, str]:
    """The same builder calls on lkanyio's AccessToken and on livekit-api's."""
    return (
        build(api.AccessToken(KEY, SECRET), api).to_jwt(),
        build(lkapi.AccessToken(KEY, SECRET), lkapi).to_jwt(),
    )


def _everything(token: Any, mod: Any) -> Any:
    return (
        token.with_identity("alice")
        .with_name("Alice")
        .with_kind("agent")
        .with_metadata('{"x": 1}')
        .with_attributes({"team": "blue", "empty": ""})
        .with_ttl(timedelta(minutes=5))
        .with_grants(mod.VideoGrants(**GRANTS))
        .with_sip_grants(mod.SIPGrants(admin=True, call=True))
        .with_room_config(
            mod.RoomConfiguration(
                name="r1",
                empty_timeout=30,
                agents=[mod.RoomAgentDispatch(agent_name="helper", metadata="m")],
            )
        )
        .with_room_preset("preset")
        .with_sha256("abc=")
        .with_agent_grants(mod.AgentGrants(admin=True, dispatch_admin=True))
        .with_agent_endpoint_grants(mod.AgentEndpointGrants(call=True, agent_name="a"))
        .with_agent_thread_grants(mod.AgentThreadGrants(scope="s", thread_ids=["t1"], read=True))
        .with_inference_grants(mod.InferenceGrants(perform=True))
        .with_observability_grants(mod.ObservabilityGrants(write=True))
    )


def _payload(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _plain(claims: Any) -> dict[str, Any]:
    """Claims of either package as plain data (the room configuration as its bytes)."""
    config = claims.room_config
    data = dataclasses.asdict(dataclasses.replace(claims, room_config=None))
    data["room_config"] = None if config is None else config.SerializeToString(deterministic=True)
    return data


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_everything, id="every-claim"),
        pytest.param(
            lambda t, m: t.with_identity("bob").with_grants(
                m.VideoGrants(room_join=True, room="r")
            ),
            id="join",
        ),
        pytest.param(lambda t, m: t.with_grants(m.VideoGrants(room_create=True)), id="service"),
        pytest.param(lambda t, m: t, id="bare"),
    ],
)
def test_both_packages_sign_the_same_claims(build: Any) -> None:
    ours, theirs = _both(build)
    a, b = _payload(ours), _payload(theirs)
    assert abs(a.pop("exp") - b.pop("exp")) <= 1  # minted within the same second or the next
    assert abs(a.pop("nbf") - b.pop("nbf")) <= 1
    assert a == b
    assert jwt.get_unverified_header(ours) == jwt.get_unverified_header(theirs)


@pytest.mark.parametrize("build", [_everything, lambda t, m: t.with_identity("x")])
def test_each_package_verifies_the_others_tokens_with_the_same_claims(build: Any) -> None:
    ours, theirs = _both(build)
    ours_by_them = lkapi.TokenVerifier(KEY, SECRET).verify(ours)
    theirs_by_us = api.TokenVerifier(KEY, SECRET).verify(theirs)
    assert _plain(theirs_by_us) == _plain(ours_by_them)
    assert _plain(api.TokenVerifier(KEY, SECRET).verify(ours)) == _plain(ours_by_them)


def test_verified_claims_read_back_what_was_granted() -> None:
    claims = api.TokenVerifier(KEY, SECRET).verify(
        _everything(api.AccessToken(KEY, SECRET), api).to_jwt()
    )
    assert isinstance(claims, api.Claims)
    assert (claims.identity, claims.name, claims.kind) == ("alice", "Alice", "agent")
    assert claims.video == api.VideoGrants(**GRANTS)
    assert claims.sip == api.SIPGrants(admin=True, call=True)
    assert claims.attributes == {"team": "blue", "empty": ""}
    assert claims.room_preset == "preset"
    assert claims.room_config is not None
    assert [(a.agent_name, a.metadata) for a in claims.room_config.agents] == [("helper", "m")]
    assert claims.room_config.empty_timeout == 30
    assert claims.agent_thread == api.AgentThreadGrants(scope="s", thread_ids=["t1"], read=True)


def test_unset_claims_stay_out_of_the_token() -> None:
    token = api.AccessToken(KEY, SECRET).with_grants(api.VideoGrants(room_list=True)).to_jwt()
    payload = _payload(token)
    assert set(payload) == {"video", "sub", "iss", "nbf", "exp"}
    assert payload["video"] == {
        "roomList": True,
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
    }
    assert payload["exp"] - payload["nbf"] == int(api.DEFAULT_TTL.total_seconds())


def test_joining_needs_an_identity_and_a_room() -> None:
    grants = api.VideoGrants(room_join=True, room="r")
    with pytest.raises(ValueError, match="identity and room"):
        api.AccessToken(KEY, SECRET).with_grants(grants).to_jwt()
    with pytest.raises(ValueError, match="identity and room"):
        api.AccessToken(KEY, SECRET).with_identity("a").with_grants(
            api.VideoGrants(room_join=True)
        ).to_jwt()


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVEKIT_API_KEY", raising=False)
    monkeypatch.delenv("LIVEKIT_API_SECRET", raising=False)
    with pytest.raises(ValueError, match="api_key and api_secret"):
        api.AccessToken()
    with pytest.raises(ValueError, match="api_key and api_secret"):
        api.TokenVerifier().verify("x")
    monkeypatch.setenv("LIVEKIT_API_KEY", KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    token = api.AccessToken().with_identity("env").to_jwt()
    assert api.TokenVerifier().verify(token).identity == "env"
    assert api.TokenVerifier(KEY, SECRET).verify(token).identity == "env"


def _signed(secret: str = SECRET, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": KEY, "sub": "x", "nbf": now, "exp": now + 600, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, "HS256")


def test_an_expired_token_is_refused_with_when_it_expired() -> None:
    expired = api.AccessToken(KEY, SECRET).with_ttl(timedelta(seconds=-120)).to_jwt()
    with pytest.raises(lkanyio.InvalidTokenError, match=r"^the token expired at \d{4}-") as info:
        api.TokenVerifier(KEY, SECRET).verify(expired)
    assert isinstance(info.value.__cause__, jwt.ExpiredSignatureError)
    assert isinstance(info.value, lkanyio.LiveKitError)


def test_leeway_forgives_clock_skew_and_only_that() -> None:
    just_expired = _signed(exp=int(time.time()) - 20)
    assert api.TokenVerifier(KEY, SECRET).verify(just_expired).identity == "x"
    with pytest.raises(lkanyio.InvalidTokenError, match="expired"):
        api.TokenVerifier(KEY, SECRET, leeway=timedelta(0)).verify(just_expired)
    soon = _signed(nbf=int(time.time()) + 20)
    assert api.TokenVerifier(KEY, SECRET).verify(soon).identity == "x"
    with pytest.raises(lkanyio.InvalidTokenError, match="not valid before"):
        api.TokenVerifier(KEY, SECRET, leeway=timedelta(0)).verify(soon)


def test_a_token_not_valid_yet_is_refused() -> None:
    later = _signed(nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200)
    with pytest.raises(lkanyio.InvalidTokenError, match=r"^the token is not valid before \d{4}-"):
        api.TokenVerifier(KEY, SECRET).verify(later)
    # livekit-api refuses it too (the same check, PyJWT's)
    with pytest.raises(jwt.ImmatureSignatureError):
        lkapi.TokenVerifier(KEY, SECRET).verify(later)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    forged = api.AccessToken(KEY, OTHER_SECRET).with_identity("mallory").to_jwt()
    with pytest.raises(
        lkanyio.InvalidTokenError, match="signature does not match the secret of key 'APIkey'"
    ):
        api.TokenVerifier(KEY, SECRET).verify(forged)


def test_a_token_of_another_key_is_refused() -> None:
    other = api.AccessToken("OtherKey", SECRET).with_identity("x").to_jwt()
    with pytest.raises(lkanyio.InvalidTokenError, match="issued by key 'OtherKey', not 'APIkey'"):
        api.TokenVerifier(KEY, SECRET).verify(other)


def test_a_token_without_expiry_or_not_a_token_is_refused() -> None:
    forever = _signed(exp=None)
    with pytest.raises(lkanyio.InvalidTokenError, match="has no 'exp' claim"):
        api.TokenVerifier(KEY, SECRET).verify(forever)
    with pytest.raises(lkanyio.InvalidTokenError, match=r"^not a token"):
        api.TokenVerifier(KEY, SECRET).verify("not.a.jwt")
    none_alg = jwt.encode({"iss": KEY, "exp": int(time.time()) + 60}, None, "none")
    with pytest.raises(lkanyio.InvalidTokenError):
        api.TokenVerifier(KEY, SECRET).verify(none_alg)


def test_reading_claims_without_verifying() -> None:
    forged = api.AccessToken(KEY, OTHER_SECRET).with_identity("mallory").to_jwt()
    assert (
        api.TokenVerifier(KEY, SECRET).verify(forged, verify_signature=False).identity == "mallory"
    )
    assert api.TokenVerifier().verify(forged, verify_signature=False).identity == "mallory"


def test_claims_asdict_is_what_the_token_carries() -> None:
    token = _everything(api.AccessToken(KEY, SECRET), api)
    payload = _payload(token.to_jwt())
    for key in ("sub", "iss", "nbf", "exp"):
        payload.pop(key)
    assert token.claims.asdict() == payload
    assert payload["roomConfig"]["agents"] == [{"agentName": "helper", "metadata": "m"}]
