"""The tokens that sign server API calls: exactly the call's grants, reused for half their life."""

from __future__ import annotations

import pytest

from lkanyio import api
from lkanyio.api import _twirp
from lkanyio.api._twirp import CALL_TOKEN_TTL, Twirp

KEY, SECRET = "k", "s" * 40


@pytest.fixture
def twirp() -> Twirp:
    return Twirp("http://127.0.0.1:1", KEY, SECRET, None)


def _claims(header: str) -> api.Claims:
    scheme, _, token = header.partition(" ")
    assert scheme == "Bearer"
    return api.TokenVerifier(KEY, SECRET).verify(token)


def test_a_token_carries_the_calls_grants_only(twirp: Twirp) -> None:
    claims = _claims(twirp.authorization(api.VideoGrants(room_admin=True, room="r"), None))
    assert claims.video == api.VideoGrants(room_admin=True, room="r")
    assert claims.sip == api.SIPGrants()
    sip = _claims(twirp.authorization(api.VideoGrants(), api.SIPGrants(call=True)))
    assert sip.sip == api.SIPGrants(call=True)


def test_calls_with_the_same_grants_share_a_token_for_half_its_life(
    twirp: Twirp, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(_twirp.time, "time", lambda: now[0])
    grants = api.VideoGrants(room_admin=True, room="r")
    first = twirp.authorization(grants, None)
    assert twirp.authorization(api.VideoGrants(room_admin=True, room="r"), None) == first
    assert twirp.authorization(api.VideoGrants(room_admin=True, room="other"), None) != first
    now[0] += CALL_TOKEN_TTL.total_seconds() / 2 - 1
    assert twirp.authorization(grants, None) == first
    now[0] += 2
    assert twirp.authorization(grants, None) != first


def test_the_kept_tokens_stay_bounded(twirp: Twirp) -> None:
    for i in range(3 * _twirp._SIGNED_KEPT):
        twirp.authorization(api.VideoGrants(room_admin=True, room=f"room-{i}"), None)
        assert len(twirp._signed) <= _twirp._SIGNED_KEPT


def test_a_pre_signed_token_is_sent_as_it_is() -> None:
    twirp = Twirp("http://127.0.0.1:1", "", "", "pre.signed.token")
    assert twirp.authorization(api.VideoGrants(room_create=True), None) == "Bearer pre.signed.token"
