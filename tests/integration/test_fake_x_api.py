"""The X API v2 imitation (tests/fakes/x_api.py), over real HTTP on a loopback port: the answers X gives
(shapes, statuses, problem types), OAuth 2.0 PKCE with rotating refresh tokens, OAuth 1.0a signatures, rate
limits, credits, and the faults a publisher must survive.

The PKCE and OAuth 1.0a round trips with real libraries (authlib, oauthlib) run when those are importable;
the project pins neither, so without them those tests skip and the hand-written flows below still run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.fakes.x_api import (
    DUPLICATE_DETAIL,
    REPLY_NOT_ALLOWED,
    SNOWFLAKE_EPOCH_MS,
    UNSUPPORTED_APP_ONLY,
    XApi,
    oauth1_base_string,
    oauth1_signature,
    percent_encode,
    start_x_api,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def x() -> Iterator[XApi]:
    handle = start_x_api()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def http(x: XApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=x.base_url, timeout=5.0) as client:
        yield client


def bearer(token: dict[str, Any] | str) -> dict[str, str]:
    value = token if isinstance(token, str) else token["access_token"]
    return {"Authorization": f"Bearer {value}"}


def post(http: httpx.Client, auth: dict[str, str], text: str, **body: Any) -> httpx.Response:
    return http.post("/2/tweets", json={"text": text, **body}, headers=auth)


# ------------------------------------------------------------------------------------ posting and reading


def test_a_post_is_created_201_and_reads_back_with_its_fields(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    r = post(http, alice, "hello from the API")
    assert r.status_code == 201
    data = r.json()["data"]
    assert data["text"] == "hello from the API" and data["edit_history_tweet_ids"] == [data["id"]]
    assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(r.headers)
    # the id is a snowflake of the imitation's clock
    assert abs(((int(data["id"]) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000 - x.state.now()) < 1

    fields = "public_metrics,non_public_metrics,created_at,conversation_id,in_reply_to_user_id,referenced_tweets,author_id"
    got = http.get(f"/2/tweets/{data['id']}", params={"tweet.fields": fields}, headers=alice).json()
    assert "errors" not in got
    tweet = got["data"]
    assert tweet["author_id"] == x.state.user_id("alice")
    assert tweet["conversation_id"] == data["id"]
    assert tweet["created_at"] == datetime.fromtimestamp(x.state.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert set(tweet["public_metrics"]) == {"retweet_count", "reply_count", "like_count", "quote_count",
                                            "bookmark_count", "impression_count"}
    assert "impression_count" in tweet["non_public_metrics"]
    assert "in_reply_to_user_id" not in tweet and "referenced_tweets" not in tweet
    assert [p.text for p in x.state.posts_of("alice")] == ["hello from the API"]


def test_an_app_only_token_reads_but_may_not_post(x: XApi, http: httpx.Client) -> None:
    app = bearer(x.state.app.bearer_token)
    r = post(http, app, "from the app")
    assert r.status_code == 403
    assert r.json() == {"title": "Unsupported Authentication", "detail": UNSUPPORTED_APP_ONLY,
                        "type": "https://api.twitter.com/2/problems/unsupported-authentication", "status": 403}
    assert x.state.posts_of("alice") == []
    # reading is allowed, but not the owner's non-public metrics
    pid = x.state.add_post("alice", "an older post")
    got = http.get(f"/2/tweets/{pid}", params={"tweet.fields": "public_metrics,non_public_metrics"},
                   headers=app).json()
    assert "public_metrics" in got["data"] and "non_public_metrics" not in got["data"]
    assert got["errors"][0]["title"] == "Field Authorization Error"
    assert http.get("/2/users/me", headers=app).status_code == 403


def test_unknown_and_expired_tokens_are_401(x: XApi, http: httpx.Client) -> None:
    unknown = post(http, bearer("not-a-token"), "x")
    assert unknown.status_code == 401
    assert unknown.json() == {"title": "Unauthorized", "detail": "Unauthorized", "type": "about:blank", "status": 401}
    token = x.state.issue_user_token("alice")
    assert post(http, bearer(token), "before expiry").status_code == 201
    x.state.advance(7199)
    assert http.get("/2/users/me", headers=bearer(token)).status_code == 200
    x.state.advance(1)
    assert post(http, bearer(token), "after expiry").status_code == 401


def test_duplicate_content_is_refused_403(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    assert post(http, alice, "same words").status_code == 201
    again = post(http, alice, "same words")
    assert again.status_code == 403
    assert again.json() == {"title": "Forbidden", "detail": DUPLICATE_DETAIL, "type": "about:blank", "status": 403}
    assert x.state.count_text("alice", "same words") == 1
    # another account may say the same thing
    assert post(http, bearer(x.state.issue_user_token("bob")), "same words").status_code == 201


def test_replies_only_to_own_posts_or_posts_that_mention_or_quote_the_account(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    stranger = x.state.add_post("bob", "a post about tea")
    refused = post(http, alice, "I like tea too", reply={"in_reply_to_tweet_id": stranger})
    assert refused.status_code == 403
    assert refused.json()["detail"] == REPLY_NOT_ALLOWED
    assert "mentioned" in refused.json()["detail"]

    mention = x.state.add_mention("bob", "alice", "@alice what tea do you drink?")
    ok = post(http, alice, "green, mostly", reply={"in_reply_to_tweet_id": mention})
    assert ok.status_code == 201
    fields = {"tweet.fields": "in_reply_to_user_id,referenced_tweets,conversation_id"}
    reply = http.get(f"/2/tweets/{ok.json()['data']['id']}", params=fields, headers=alice).json()["data"]
    assert reply["in_reply_to_user_id"] == x.state.user_id("bob")
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": mention}]
    assert reply["conversation_id"] == mention

    own = post(http, alice, "1/ a thread").json()["data"]["id"]
    assert post(http, alice, "2/ its second part", reply={"in_reply_to_tweet_id": own}).status_code == 201

    mine = x.state.add_post("alice", "something quotable")
    quoting = x.state.add_post("bob", "look at this", quote_of=mine)
    assert post(http, alice, "thanks for sharing", reply={"in_reply_to_tweet_id": quoting}).status_code == 201

    gone = post(http, alice, "hello?", reply={"in_reply_to_tweet_id": "1999999999999999999"})
    assert gone.status_code == 403 and "deleted or not visible" in gone.json()["detail"]


def test_quote_and_media_show_in_the_fields(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    target = x.state.add_post("bob", "worth quoting")
    r = post(http, alice, "this!", quote_tweet_id=target, media={"media_ids": ["1455952740635586573"]})
    assert r.status_code == 201
    got = http.get(f"/2/tweets/{r.json()['data']['id']}", params={"tweet.fields": "referenced_tweets,attachments"},
                   headers=alice).json()["data"]
    assert got["referenced_tweets"] == [{"type": "quoted", "id": target}]
    assert got["attachments"] == {"media_keys": ["3_1455952740635586573"]}
    assert post(http, alice, "", media={"media_ids": []}).status_code == 400
    too_long = post(http, alice, "x" * 281)
    assert too_long.status_code == 400 and too_long.json()["title"] == "Invalid Request"
    assert post(http, alice, "a" * 257 + " https://example.com/x").status_code == 400  # 257 + 1 + 23
    assert post(http, alice, "a" * 256 + " https://example.com/" + "b" * 60).status_code == 201  # a URL weighs 23


def test_delete_and_lookups(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    first = post(http, alice, "first").json()["data"]["id"]
    second = post(http, alice, "second").json()["data"]["id"]
    bobs = x.state.add_post("bob", "bob's post")
    assert http.delete(f"/2/tweets/{bobs}", headers=alice).status_code == 403
    r = http.delete(f"/2/tweets/{first}", headers=alice)
    assert r.status_code == 200 and r.json() == {"data": {"deleted": True}}
    assert [p.text for p in x.state.posts_of("alice")] == ["second"]

    one = http.get(f"/2/tweets/{first}", headers=alice)
    assert one.status_code == 200 and "data" not in one.json()
    assert one.json()["errors"][0]["type"] == "https://api.twitter.com/2/problems/resource-not-found"
    many = http.get("/2/tweets", params={"ids": f"{first},{second},{bobs}", "tweet.fields": "author_id"},
                    headers=alice).json()
    assert [t["id"] for t in many["data"]] == [second, bobs]
    assert [e["resource_id"] for e in many["errors"]] == [first]
    assert http.get("/2/tweets", params={"ids": "abc"}, headers=alice).status_code == 400
    assert http.get(f"/2/tweets/{second}", params={"tweet.fields": "nonsense"}, headers=alice).status_code == 400


def test_users_me(x: XApi, http: httpx.Client) -> None:
    r = http.get("/2/users/me", headers=bearer(x.state.issue_user_token("bob")))
    assert r.json() == {"data": {"id": x.state.user_id("bob"), "name": "Bob", "username": "bob"}}


def test_own_timeline_pages_newest_first_with_meta(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    ids = []
    for i in range(12):
        ids.append(post(http, alice, f"post number {i}").json()["data"]["id"])
        x.state.advance(60)
    x.state.add_post("bob", "not on alice's timeline")
    uid = x.state.user_id("alice")
    seen: list[str] = []
    params: dict[str, Any] = {"max_results": 5}
    for _ in range(10):  # bounded
        body = http.get(f"/2/users/{uid}/tweets", params=params, headers=alice).json()
        page = [t["id"] for t in body["data"]]
        assert body["meta"]["result_count"] == len(page)
        assert body["meta"]["newest_id"] == page[0] and body["meta"]["oldest_id"] == page[-1]
        seen += page
        if "next_token" not in body["meta"]:
            break
        params = {"max_results": 5, "pagination_token": body["meta"]["next_token"]}
    assert seen == list(reversed(ids))
    since = http.get(f"/2/users/{uid}/tweets", params={"since_id": ids[9]}, headers=alice).json()
    assert [t["id"] for t in since["data"]] == [ids[11], ids[10]]
    empty = http.get(f"/2/users/{uid}/tweets", params={"since_id": ids[11]}, headers=alice).json()
    assert empty == {"meta": {"result_count": 0}}
    assert http.get(f"/2/users/{uid}/tweets", params={"max_results": 3}, headers=alice).status_code == 400
    bad = http.get(f"/2/users/{uid}/tweets", params={"pagination_token": "nope"}, headers=alice)
    assert bad.status_code == 400


def test_mentions_timeline_and_since_id(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    uid = x.state.user_id("alice")
    first = x.state.add_mention("bob", "alice")
    x.state.add_post("bob", "no mention here")
    second = x.state.add_mention("carol", "alice", "hey @Alice, a question")
    x.state.add_mention("bob", "carol")
    body = http.get(f"/2/users/{uid}/mentions", params={"tweet.fields": "author_id"}, headers=alice).json()
    assert [t["id"] for t in body["data"]] == [second, first]
    assert body["data"][0]["author_id"] == x.state.user_id("carol")
    newer = http.get(f"/2/users/{uid}/mentions", params={"since_id": first}, headers=alice).json()
    assert [t["id"] for t in newer["data"]] == [second]


# --------------------------------------------------------------------------------------------- OAuth 2.0


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize(x: XApi, http: httpx.Client, challenge: str, state: str = "st4te") -> dict[str, str]:
    r = http.get("/i/oauth2/authorize", params={
        "response_type": "code", "client_id": x.state.app.client_id, "redirect_uri": f"{x.base_url}/callback",
        "scope": "tweet.read tweet.write users.read offline.access", "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert r.status_code == 302
    location = urllib.parse.urlsplit(r.headers["location"])
    assert location.path == "/callback"
    return dict(urllib.parse.parse_qsl(location.query))


def test_pkce_round_trip_and_refresh_rotation_by_hand(x: XApi, http: httpx.Client) -> None:
    app = x.state.app
    basic = httpx.BasicAuth(app.client_id, app.client_secret)
    verifier, challenge = pkce_pair()
    got = authorize(x, http, challenge)
    assert got["state"] == "st4te"
    form = {"grant_type": "authorization_code", "code": got["code"], "redirect_uri": f"{x.base_url}/callback",
            "code_verifier": verifier, "client_id": app.client_id}
    no_basic = http.post("/2/oauth2/token", data=form)
    assert no_basic.status_code == 401 and no_basic.json()["error"] == "unauthorized_client"

    got = authorize(x, http, challenge)
    wrong = http.post("/2/oauth2/token", data={**form, "code": got["code"], "code_verifier": "x" * 64}, auth=basic)
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_request",
                            "error_description": "Value passed for the authorization code was invalid."}
    # a code serves once, even after a failed exchange
    assert http.post("/2/oauth2/token", data={**form, "code": got["code"]}, auth=basic).status_code == 400

    got = authorize(x, http, challenge)
    x.state.advance(31)  # codes live 30 s
    assert http.post("/2/oauth2/token", data={**form, "code": got["code"]}, auth=basic).status_code == 400

    got = authorize(x, http, challenge)
    token = http.post("/2/oauth2/token", data={**form, "code": got["code"]}, auth=basic).json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 7200
    assert set(token["scope"].split()) == {"tweet.read", "tweet.write", "users.read", "offline.access"}
    assert http.get("/2/users/me", headers=bearer(token)).json()["data"]["username"] == "alice"

    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": app.client_id}
    fresh = http.post("/2/oauth2/token", data=refresh, auth=basic).json()
    assert fresh["refresh_token"] != token["refresh_token"] and fresh["access_token"] != token["access_token"]
    reused = http.post("/2/oauth2/token", data=refresh, auth=basic)
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}
    x.state.advance(7200)
    assert http.get("/2/users/me", headers=bearer(fresh)).status_code == 401
    newest = http.post("/2/oauth2/token", data={**refresh, "refresh_token": fresh["refresh_token"]}, auth=basic)
    assert newest.status_code == 200
    assert http.get("/2/users/me", headers=bearer(newest.json())).status_code == 200


async def test_pkce_round_trip_with_authlib(x: XApi) -> None:
    pytest.importorskip("authlib")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    app = x.state.app
    updates: list[dict[str, Any]] = []

    async def update_token(token: dict[str, Any], refresh_token: str | None = None, access_token: str | None = None) -> None:
        updates.append({"token": dict(token), "old_refresh": refresh_token})

    verifier = secrets.token_urlsafe(64)
    async with AsyncOAuth2Client(
        client_id=app.client_id, client_secret=app.client_secret, redirect_uri=f"{x.base_url}/callback",
        scope="tweet.read tweet.write users.read offline.access", code_challenge_method="S256",
        token_endpoint=x.token_url, update_token=update_token, base_url=x.base_url, timeout=5.0,
    ) as client:
        url, state = client.create_authorization_url(x.authorize_url, code_verifier=verifier)
        async with httpx.AsyncClient(timeout=5.0) as browser:  # the user's browser, consenting at once
            redirect = await browser.get(url, follow_redirects=False)
        token = await client.fetch_token(x.token_url, authorization_response=redirect.headers["location"],
                                         code_verifier=verifier, state=state)
        assert token["expires_in"] == 7200 and "refresh_token" in token
        r = await client.post("/2/tweets", json={"text": "posted through authlib"})
        assert r.status_code == 201
        # authlib judges expiry by the wall clock; the imitation's clock has moved on as well
        first_refresh = token["refresh_token"]
        x.state.advance(7200)
        client.token["expires_at"] = int(time.time()) - 1
        me = await client.get("/2/users/me")
        assert me.status_code == 200 and me.json()["data"]["username"] == "alice"
        assert len(updates) == 1 and updates[0]["old_refresh"] == first_refresh
        assert updates[0]["token"]["refresh_token"] != first_refresh
        again = await client.post(x.token_url, data={"grant_type": "refresh_token", "refresh_token": first_refresh},
                                  auth=(app.client_id, app.client_secret))
        assert again.status_code == 400 and again.json()["error"] == "invalid_request"
    assert x.state.count_text("alice", "posted through authlib") == 1


# ------------------------------------------------------------------------------------------- OAuth 1.0a


def test_the_signature_is_x_documented_example() -> None:
    """docs.x.com "Creating a signature": the same inputs must give X's published signature."""
    params = [
        ("include_entities", "true"), ("status", "Hello Ladies + Gentlemen, a signed OAuth request!"),
        ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"), ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
        ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "1318622958"),
        ("oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"), ("oauth_version", "1.0"),
    ]
    base = oauth1_base_string("post", "https://api.twitter.com/1.1/statuses/update.json?include_entities=true", params)
    assert base.startswith("POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue")
    assert oauth1_signature(base, "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
                            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE") == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="


def sign(creds: dict[str, str], method: str, url: str, *, nonce: str | None = None, tamper: bool = False) -> str:
    oauth = {"oauth_consumer_key": creds["consumer_key"], "oauth_nonce": nonce or secrets.token_hex(16),
             "oauth_signature_method": "HMAC-SHA1", "oauth_timestamp": str(int(time.time())),
             "oauth_token": creds["access_token"], "oauth_version": "1.0"}
    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)
    base = oauth1_base_string(method, url, [*query, *oauth.items()])
    oauth["oauth_signature"] = oauth1_signature(base, creds["consumer_secret"] + ("x" if tamper else ""),
                                                creds["access_token_secret"])
    return "OAuth " + ", ".join(f'{k}="{percent_encode(v)}"' for k, v in sorted(oauth.items()))


def test_oauth1_signed_requests_are_verified(x: XApi, http: httpx.Client) -> None:
    creds = x.state.oauth1_credentials("alice")
    url = f"{x.base_url}/2/tweets"
    r = http.post(url, content=json.dumps({"text": "signed"}), headers={
        "Authorization": sign(creds, "POST", url), "Content-Type": "application/json"})
    assert r.status_code == 201
    uid = x.state.user_id("alice")
    timeline = f"{x.base_url}/2/users/{uid}/tweets?max_results=5&tweet.fields=created_at%2Cnon_public_metrics"
    got = http.get(timeline, headers={"Authorization": sign(creds, "GET", timeline)})
    assert got.status_code == 200 and "non_public_metrics" in got.json()["data"][0]
    tampered = http.get(timeline, headers={"Authorization": sign(creds, "GET", timeline, tamper=True)})
    assert tampered.status_code == 401
    header = sign(creds, "GET", timeline, nonce="once")
    assert http.get(timeline, headers={"Authorization": header}).status_code == 200
    assert http.get(timeline, headers={"Authorization": header}).status_code == 401  # a replayed nonce
    other_query = timeline.replace("max_results=5", "max_results=6")
    assert http.get(other_query, headers={"Authorization": sign(creds, "GET", timeline)}).status_code == 401


def test_oauth1_with_oauthlib_client(x: XApi, http: httpx.Client) -> None:
    oauth1 = pytest.importorskip("oauthlib.oauth1")
    creds = x.state.oauth1_credentials("alice")
    client = oauth1.Client(creds["consumer_key"], client_secret=creds["consumer_secret"],
                           resource_owner_key=creds["access_token"],
                           resource_owner_secret=creds["access_token_secret"])
    url = f"{x.base_url}/2/tweets"
    body = json.dumps({"text": "signed by oauthlib"})
    uri, headers, _ = client.sign(url, http_method="POST", body=body, headers={"Content-Type": "application/json"})
    assert http.post(uri, content=body, headers=headers).status_code == 201
    lookup = f"{x.base_url}/2/users/{x.state.user_id('alice')}/tweets?max_results=5&tweet.fields=author_id"
    uri, headers, _ = client.sign(lookup, http_method="GET")
    got = http.get(uri, headers=headers)
    assert got.status_code == 200 and got.json()["data"][0]["text"] == "signed by oauthlib"


async def test_oauth1_with_authlib_httpx(x: XApi) -> None:
    pytest.importorskip("authlib")
    from authlib.integrations.httpx_client import AsyncOAuth1Client

    creds = x.state.oauth1_credentials("bob")
    # without force_include_body authlib (1.9.10) sends a JSON body as b"" (authlib issue #543): the imitation
    # answers 400 "Request body must be a JSON object", as X would refuse an empty POST /2/tweets
    async with AsyncOAuth1Client(creds["consumer_key"], creds["consumer_secret"], token=creds["access_token"],
                                 token_secret=creds["access_token_secret"], base_url=x.base_url,
                                 force_include_body=True) as client:
        r = await client.post("/2/tweets", json={"text": "bob signs with authlib"})
        assert r.status_code == 201, r.text
        me = await client.get("/2/users/me", params={"user.fields": "id"})
        assert me.json()["data"]["username"] == "bob"


def test_oauth1_with_authlib_signer_over_the_project_httpx(x: XApi, http: httpx.Client) -> None:
    """What decision 0017 proposes: authlib signs (keeping the JSON body, adding oauth_body_hash as oauthlib
    does), the pinned httpx sends."""
    pytest.importorskip("authlib")
    from authlib.oauth1 import ClientAuth

    creds = x.state.oauth1_credentials("alice")
    auth = ClientAuth(creds["consumer_key"], creds["consumer_secret"], token=creds["access_token"],
                      token_secret=creds["access_token_secret"], force_include_body=True)
    body = json.dumps({"text": "authlib signs, httpx sends"}).encode()
    uri, headers, content = auth.prepare("POST", f"{x.base_url}/2/tweets", {"Content-Type": "application/json"},
                                         body)
    assert "oauth_body_hash" in headers["Authorization"]
    assert http.post(uri, headers=dict(headers), content=content).status_code == 201
    timeline = f"{x.base_url}/2/users/{x.state.user_id('alice')}/tweets?max_results=5"
    uri, headers, _ = auth.prepare("GET", timeline, {}, b"")
    assert http.get(uri, headers=dict(headers)).json()["data"][0]["text"] == "authlib signs, httpx sends"


# ------------------------------------------------------------------------------------ limits and credits


def test_rate_limits_per_endpoint_per_user_with_headers() -> None:
    with start_x_api(limits={"create": 2}) as x, httpx.Client(base_url=x.base_url, timeout=5) as http:
        alice, bob = bearer(x.state.issue_user_token("alice")), bearer(x.state.issue_user_token("bob"))
        first = post(http, alice, "one")
        reset = int(first.headers["x-rate-limit-reset"])
        assert first.headers["x-rate-limit-limit"] == "2" and first.headers["x-rate-limit-remaining"] == "1"
        assert reset == int(x.state.now() + 900)
        assert post(http, alice, "two").headers["x-rate-limit-remaining"] == "0"
        over = post(http, alice, "three")
        assert over.status_code == 429
        assert over.json() == {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                               "status": 429}
        assert over.headers["x-rate-limit-remaining"] == "0" and int(over.headers["x-rate-limit-reset"]) == reset
        assert post(http, bob, "bob has his own window").status_code == 201
        me = http.get("/2/users/me", headers=alice)
        assert me.status_code == 200 and me.headers["x-rate-limit-limit"] == "75"  # another endpoint
        x.state.advance(900)
        assert post(http, alice, "three").status_code == 201
        assert x.state.count_text("alice", "three") == 1


def test_credits_are_debited_per_action_and_402_when_empty(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    x.state.set_credits(0.5)
    assert post(http, alice, "plain post").status_code == 201
    assert x.state.credits() == pytest.approx(0.485)
    assert post(http, alice, "with a link https://example.com/a").status_code == 201
    assert x.state.credits() == pytest.approx(0.285)
    mention = x.state.add_mention("bob", "alice")
    assert post(http, alice, "answering", reply={"in_reply_to_tweet_id": mention}).status_code == 201
    assert x.state.credits() == pytest.approx(0.275)
    for i in range(6):
        x.state.add_post("alice", f"old post {i}")
    uid = x.state.user_id("alice")
    assert len(http.get(f"/2/users/{uid}/tweets", params={"max_results": 5}, headers=alice).json()["data"]) == 5
    assert x.state.credits() == pytest.approx(0.270)  # owned reads: $0.001 each
    http.get(f"/2/users/{uid}/tweets", params={"max_results": 5}, headers=alice)
    assert x.state.credits() == pytest.approx(0.270)  # the same posts again the same UTC day: no charge
    x.state.advance(86400)
    alice = bearer(x.state.issue_user_token("alice"))  # the old token has expired meanwhile
    assert http.get(f"/2/users/{uid}/tweets", params={"max_results": 5}, headers=alice).status_code == 200
    assert x.state.credits() == pytest.approx(0.265)
    assert [c.action for c in x.state.charges][:3] == ["post", "post_with_url", "reply_to_mention"]

    x.state.set_credits(0.01)
    assert post(http, alice, "goes slightly negative").status_code == 201  # as X documents
    assert x.state.credits() == pytest.approx(-0.005)
    empty = post(http, alice, "no credits left")
    assert empty.status_code == 402
    assert empty.json()["title"] == "CreditsDepleted"
    assert empty.json()["type"] == "https://api.twitter.com/2/problems/credits"
    assert "x-rate-limit-remaining" in empty.headers
    assert x.state.count_text("alice", "no credits left") == 0
    assert http.get(f"/2/users/{uid}/tweets", headers=alice).status_code == 402


def test_a_spend_cap_answers_429_usage_capped(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    x.state.set_spend_cap(0.015)
    assert post(http, alice, "within the cap").status_code == 201
    capped = post(http, alice, "over the cap")
    assert capped.status_code == 429
    assert capped.json()["title"] == "UsageCapExceeded"
    assert capped.json()["type"] == "https://api.twitter.com/2/problems/usage-capped"
    assert int(capped.headers["x-rate-limit-remaining"]) > 0  # not a rate limit: only the type tells them apart


# ------------------------------------------------------------------------------------------------- faults


def test_a_dropped_answer_after_accepting_leaves_the_post_on_the_timeline(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    x.state.set_fault("drop_after_accept", times=1)
    with pytest.raises(httpx.TransportError):
        post(http, alice, "in doubt")
    assert x.state.count_text("alice", "in doubt") == 1
    uid = x.state.user_id("alice")
    timeline = http.get(f"/2/users/{uid}/tweets", headers=alice).json()
    assert [t["text"] for t in timeline["data"]] == ["in doubt"]
    assert post(http, alice, "in doubt").status_code == 403  # retrying blindly is a duplicate
    assert x.state.fault is None


def test_a_5xx_after_accepting_and_a_5xx_before(x: XApi, http: httpx.Client) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    x.state.set_fault("error_after_accept", times=1, status=503)
    r = post(http, alice, "accepted anyway")
    assert r.status_code == 503 and r.json()["title"] == "Service Unavailable"
    assert x.state.count_text("alice", "accepted anyway") == 1
    x.state.set_fault("error", endpoint="create", times=1, status=500)
    assert post(http, alice, "never made").status_code == 500
    assert x.state.count_text("alice", "never made") == 0
    x.state.set_fault("error", endpoint="timeline", times=2)
    uid = x.state.user_id("alice")
    assert http.get(f"/2/users/{uid}/tweets", headers=alice).status_code == 503
    assert http.get(f"/2/users/{uid}/tweets", headers=alice).status_code == 503
    assert http.get(f"/2/users/{uid}/tweets", headers=alice).status_code == 200
    with pytest.raises(ValueError):
        x.state.set_fault("drop_after_accept", endpoint="timeline")


def test_latency_on_create_times_the_client_out_after_the_post_exists(x: XApi) -> None:
    alice = bearer(x.state.issue_user_token("alice"))
    x.state.set_latency(0.4, "create")
    with httpx.Client(base_url=x.base_url, timeout=0.1) as quick, pytest.raises(httpx.ReadTimeout):
        post(quick, alice, "slow answer")
    assert x.state.count_text("alice", "slow answer") == 1
    x.state.set_latency(0.0)


def test_control_and_state_over_http(x: XApi, http: httpx.Client) -> None:
    r = http.post("/__control", json={"add_mention": {"author": "bob", "mentioned": "alice"}, "advance": 60,
                                      "credits_usd": 2.5})
    assert r.status_code == 200 and r.json()["added"]
    snap = http.get("/__state").json()
    assert snap["credits_usd"][x.state.app.client_id] == 2.5
    assert snap["posts"][0]["text"].startswith("@alice")
    assert http.post("/__control", json={"fault": "nonsense"}).status_code == 400
