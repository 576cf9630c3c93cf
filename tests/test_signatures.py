"""Twilio request signatures: the published test vectors, then the real app behind every kind of
front door (HTTPS with and without the port, a TLS-terminating proxy, `IVR_PUBLIC_URL`).

Every test that shows a request being accepted also shows a near-identical forged one being
refused, so each of them fails if the signature check is removed (see `_refused`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import httpx
import pytest
from flask import Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import EnvironBuilder

from ivr import security
from ivr.config import Settings
from ivr.simulator import TwilioSimulator, raw_signature, sign
from tests.calls import Rig, rig
from tests.demo import BILAL

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
DOC_PARAMS = {
    "Digits": "1234",
    "To": "+18005551212",
    "From": "+14158675310",
    "Caller": "+14158675310",
    "CallSid": "CA1234567890ABCDE",
}
BODY = '{"property": "value", "boolean": true}'
BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"

# twilio-voice.md section 9.2: (url, params, signature)
VECTORS = [
    (URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ("https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w="),
    ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", PARAMS, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ("http://mycompany.com:80/myapp.php?foo=1&bar=2", PARAMS, "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ("https://example.com/myapp.php?foo=1&bar=2", DOC_PARAMS, "L/OH5YylLD5NRKLltdqwSvS0BnU="),
]


# --------------------------------------------------------------------------- test vectors


@pytest.mark.parametrize(("url", "params", "signature"), VECTORS)
def test_published_vectors_compute_and_validate(url, params, signature):
    assert sign(url, params, TOKEN) == signature
    assert raw_signature(url, params, TOKEN) == signature
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, params, signature)
    assert not validator.validate(url, params, signature.replace("=", "A") + "=")
    assert not RequestValidator("54321").validate(url, params, signature)
    assert not validator.validate(url, {**params, "Digits": "9999"}, signature)


def test_vectors_validate_with_the_port_added_or_removed():
    """The validator tries both forms, so Twilio dropping :443 (or keeping it) still passes."""
    validator = RequestValidator(TOKEN)
    assert validator.validate(URL, PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")  # signed with :443
    assert validator.validate("https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS,
                              "RSOYDt4T1cUTdK1PDd93/VVr8B8=")  # signed without
    assert validator.validate("http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS,
                              "0ZXoZLH/DfblKGATFgpif+LLRf4=")  # signed with :80
    # A non-default port is part of what was signed: dropping it is a different URL.
    assert not validator.validate("http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS,
                                  "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")


def test_json_body_vector_and_duplicate_keys_vector():
    validator = RequestValidator(TOKEN)
    assert hashlib.sha256(BODY.encode()).hexdigest() == BODY_HASH
    body_url = f"{URL}&bodySHA256={BODY_HASH}"
    assert validator.validate(body_url, BODY, "a9nBmqA0ju/hNViExpshrM61xv4=")
    assert not validator.validate(body_url, BODY.replace("true", "false"),
                                  "a9nBmqA0ju/hNViExpshrM61xv4=")
    dup = MultiDict([("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"),
                     ("Digits", "1234"), ("Digits", "1234")])
    assert validator.validate(URL, dup, "IK+Dwps556ElfBT0I3Rgjkr1wJU=")


def _flask_request(url: str, params: dict[str, str], headers: dict[str, str]) -> Request:
    builder = EnvironBuilder(method="POST", base_url=url.split("?")[0].rsplit("/", 1)[0],
                             path="/" + url.split("?")[0].rsplit("/", 1)[1],
                             query_string=url.split("?", 1)[1], data=params, headers=headers)
    return Request(builder.get_environ())


@pytest.mark.parametrize(("url", "params", "signature"), [VECTORS[0], VECTORS[4]])
def test_vectors_through_ivr_security_as_the_app_uses_it(url, params, signature):
    ok = _flask_request(url, params, {"X-Twilio-Signature": signature})
    assert ok.url == url
    assert security.is_valid(ok, TOKEN, None)
    assert security.signed_url(ok, None) == url
    assert not security.is_valid(ok, "54321", None)
    assert not security.is_valid(ok, "", None)  # no token configured: nothing is valid
    assert not security.is_valid(_flask_request(url, params, {}), TOKEN, None)
    tampered = _flask_request(url, {**params, "Digits": "1"}, {"X-Twilio-Signature": signature})
    assert not security.is_valid(tampered, TOKEN, None)


def test_security_rebuilds_the_signed_url_from_the_public_url():
    """The app saw http://internal:8000; Twilio signed the public https URL (vector 1)."""
    seen = _flask_request("http://internal:8000/myapp.php?foo=1&bar=2", PARAMS,
                          {"X-Twilio-Signature": VECTORS[0][2]})
    assert not security.is_valid(seen, TOKEN, None)
    assert security.signed_url(seen, "https://mycompany.com/") == URL
    assert security.is_valid(seen, TOKEN, "https://mycompany.com")
    assert security.is_valid(seen, TOKEN, "https://mycompany.com:443")
    assert not security.is_valid(seen, TOKEN, "https://evil.example")


# --------------------------------------------------------------------------- the real app


def _incoming(r, **extra: str) -> dict[str, str]:
    return r.phone.webhook_params(from_=BILAL.e164, **extra)


def _refused(reply) -> bool:
    return reply.status_code == 403 and "<Response" not in reply.text


@pytest.mark.parametrize("signed_for", ["https://clinic.example/", "https://clinic.example:443/"])
@pytest.mark.parametrize("public_env", ["https://clinic.example", "https://clinic.example:443/"])
def test_https_public_url_with_and_without_the_port(public_env, signed_for, make_rig):
    public_url = Settings.from_env({"IVR_PUBLIC_URL": public_env}).public_url
    r = make_rig(public_url=public_url)
    r.phone.signing_base_url = signed_for
    reply = r.phone.post_raw("/voice/incoming", _incoming(r))
    assert reply.status_code == 200 and "Hello Bilal" in reply.text
    # Actions point at the public URL, so Twilio's next request is signed for it too.
    assert 'action="https://clinic.example' in reply.text.replace(":443", "")
    r.phone.signing_base_url = "https://evil.example/"
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r)))
    r.phone.signing_base_url = "http://clinic.example/"  # the scheme is signed too
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r)))


def test_public_url_accepts_https_while_the_app_sees_http_for_a_whole_call(make_rig):
    r = make_rig(public_url="https://clinic.example")
    r.phone.signing_base_url = "https://clinic.example/"
    call = r.call(BILAL.e164)
    call.press("1")
    assert "Dr. Farooq again" in call.last_heard
    assert all(url.startswith("https://clinic.example/") for _, url, _ in call.requests[1:])
    # The URL the app actually received is not what it was told it is published as.
    r.phone.signing_base_url = None
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r)))


def test_an_app_mounted_under_a_prefix_validates_against_its_public_url(make_rig):
    """gunicorn with SCRIPT_NAME=/ivr behind https://clinic.example/ivr: the public URL names
    the prefix once (action URLs are built on it too), and the whole call works."""
    r = make_rig(public_url="https://clinic.example/ivr")
    mounted = DispatcherMiddleware(NotFound(), {"/ivr": r.app})
    http = httpx.Client(transport=httpx.WSGITransport(app=mounted),
                        base_url="http://testserver")
    phone = TwilioSimulator("http://testserver/ivr", r.runtime.settings.twilio_auth_token,
                            http=http, signing_base_url="https://clinic.example/ivr/", seed=3)
    with http:
        call = phone.call(BILAL.e164)
        assert "Hello Bilal" in call.heard and not call.errors
        call.press("1")
        assert "Dr. Farooq again" in call.last_heard
        phone.signing_base_url = "https://clinic.example/ivr/ivr/"
        params = phone.webhook_params(from_=BILAL.e164)
        assert _refused(phone.post_raw("/voice/incoming", params))
        phone.signing_base_url = "https://clinic.example/"
        assert _refused(phone.post_raw("/voice/incoming", params))


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"}


def test_without_trusted_proxy_hops_forwarded_headers_change_nothing(make_rig):
    r = make_rig()  # proxy_hops=0
    assert r.runtime.settings.proxy_hops == 0
    r.phone.signing_base_url = "https://public.example/"
    # Signed for a URL the app was not sent to: forged forwarded headers don't help.
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r), headers=FORWARDED))
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r)))
    # A bad signature stays bad with forwarded headers.
    r.phone.signing_base_url = None
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r), signature="bm90IGl0",
                                     headers=FORWARDED))
    # Signed for the URL it really reached: accepted, the headers are simply ignored.
    ok = r.phone.post_raw("/voice/incoming", _incoming(r), headers=FORWARDED)
    assert ok.status_code == 200 and "Hello Bilal" in ok.text
    assert "public.example" not in ok.text


def test_one_trusted_proxy_hop_validates_against_the_forwarded_url(make_rig):
    r = make_rig(proxy_hops=1)
    r.phone.signing_base_url = "https://public.example/"
    reply = r.phone.post_raw("/voice/incoming", _incoming(r), headers=FORWARDED)
    assert reply.status_code == 200 and "Hello Bilal" in reply.text
    # Without the proxy's headers the app sees http://testserver: not what was signed.
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r)))
    # The proxy says another host than the one signed for.
    other = {**FORWARDED, "X-Forwarded-Host": "evil.example"}
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r), headers=other))
    # A bad signature is still refused behind the proxy.
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r), signature="bm90IGl0",
                                     headers=FORWARDED))
    # The proxy adds the default port: Twilio signed without it, still accepted.
    port = {**FORWARDED, "X-Forwarded-Port": "443"}
    assert r.phone.post_raw("/voice/incoming", _incoming(r), headers=port).status_code == 200
    # A client's own X-Forwarded-Host comes first; only the last (the proxy's) is trusted.
    chained = {**FORWARDED, "X-Forwarded-Host": "evil.example, public.example"}
    assert r.phone.post_raw("/voice/incoming", _incoming(r),
                            headers=chained).status_code == 200
    r.phone.signing_base_url = "https://evil.example/"
    assert _refused(r.phone.post_raw("/voice/incoming", _incoming(r), headers=chained))


def test_a_wrong_token_or_a_missing_header_is_refused(make_rig):
    r = make_rig()
    params = _incoming(r)
    url = r.phone.absolute("/voice/incoming")
    wrong = sign(url, params, "not-the-auth-token")
    assert _refused(r.phone.post_raw("/voice/incoming", params, signature=wrong))
    assert _refused(r.phone.post_raw("/voice/incoming", params, signature=None))
    assert _refused(r.phone.post_raw("/voice/incoming", params, signature=""))
    right = sign(url, params, r.runtime.settings.twilio_auth_token)
    assert r.phone.post_raw("/voice/incoming", params, signature=right).status_code == 200
    assert r.runtime.store.load_call(params["CallSid"]) is not None


SHARED_KEY = "webhook-shared-key-secret"
SHARED_KEY_SETTINGS = {"X-Twilio-Webhooks-Signature-Settings":
                       "key=webhooks_sharedkey_0123456789abcdef,algorithm=HMAC_SHA256"}


def test_a_shared_key_hmac_sha256_webhook_is_accepted_and_an_altered_one_refused(make_rig):
    r = make_rig(twilio_webhook_key=SHARED_KEY)
    params = _incoming(r)
    url = r.phone.absolute("/voice/incoming")
    signature = RequestValidator(SHARED_KEY).compute_signature(url, params, "HMAC_SHA256")
    ok = r.phone.post_raw("/voice/incoming", params, signature=signature,
                          headers=SHARED_KEY_SETTINGS)
    assert ok.status_code == 200 and "<Response>" in ok.text
    assert r.runtime.store.load_call(params["CallSid"]) is not None
    altered = {**_incoming(r), "From": "+923001112223"}
    signature = RequestValidator(SHARED_KEY).compute_signature(url, altered, "HMAC_SHA256")
    assert _refused(r.phone.post_raw("/voice/incoming", {**altered, "From": "+92300111"},
                                     signature=signature, headers=SHARED_KEY_SETTINGS))
    # SHA-1 of the shared key, or SHA-256 with the Auth Token: not what the header says.
    fresh = _incoming(r)
    for wrong in (RequestValidator(SHARED_KEY).compute_signature(url, fresh),
                  RequestValidator(r.runtime.settings.twilio_auth_token)
                  .compute_signature(url, fresh, "HMAC_SHA256")):
        assert _refused(r.phone.post_raw("/voice/incoming", fresh, signature=wrong,
                                         headers=SHARED_KEY_SETTINGS))
    unknown = {"X-Twilio-Webhooks-Signature-Settings": "key=k,algorithm=HMAC_MD5"}
    assert _refused(r.phone.post_raw("/voice/incoming", fresh, signature=signature,
                                     headers=unknown))
    # The classic Auth Token signature still works beside it.
    assert r.phone.post_raw("/voice/incoming", _incoming(r)).status_code == 200


def test_a_shared_key_webhook_is_refused_when_no_shared_key_is_configured(make_rig):
    r = make_rig()
    params = _incoming(r)
    url = r.phone.absolute("/voice/incoming")
    signature = RequestValidator(SHARED_KEY).compute_signature(url, params, "HMAC_SHA256")
    assert _refused(r.phone.post_raw("/voice/incoming", params, signature=signature,
                                     headers=SHARED_KEY_SETTINGS))
    # Nor may the header turn an Auth Token signature into a check against nothing.
    token_signed = r.phone.sign(url, params)
    assert _refused(r.phone.post_raw("/voice/incoming", params, signature=token_signed,
                                     headers=SHARED_KEY_SETTINGS))


def test_a_replayed_signature_with_changed_parameters_is_refused(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    path = call.gather_url.replace("http://testserver", "")
    params = r.phone.webhook_params(from_=BILAL.e164, call_sid=call.sid,
                                    call_status="in-progress", Digits="0")
    signature = r.phone.sign(r.phone.absolute(path), params)
    forged = r.phone.post_raw(path, {**params, "Digits": "1"}, signature=signature)
    assert _refused(forged)
    assert r.runtime.store.load_call(call.sid).step == "menu"  # nothing ran
    # Another call's signature on this call's parameters: refused too.
    other = {**params, "CallSid": r.phone.new_sid()}
    assert _refused(r.phone.post_raw(path, other, signature=signature))
    # The genuine request still works.
    genuine = r.phone.post_raw(path, params, signature=signature)
    assert genuine.status_code == 200 and "<Dial" in genuine.text


def test_a_signature_for_another_route_or_turn_is_refused(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    path = call.gather_url.replace("http://testserver", "")
    params = r.phone.webhook_params(from_=BILAL.e164, call_sid=call.sid, Digits="1")
    for other in (path.replace("t=1", "t=2"), "/voice/incoming", "/voice/fallback"):
        signature = r.phone.sign(r.phone.absolute(other), params)
        assert _refused(r.phone.post_raw(path, params, signature=signature))
    assert r.runtime.store.load_call(call.sid).step == "menu"


VOICE_ROUTES = [
    "/voice/incoming",
    "/voice/step/menu?t=1&k=answer",
    "/voice/step/confirm?t=5&k=answer",
    "/voice/step/person?t=2&k=dial",
    "/voice/step/greet?t=1&k=resume",
    "/voice/status",
    "/voice/fallback",
    "/voice/fallback?after=dial",
    "/voice/reminder/2026-11-24/p:P1",
    "/voice/reminder/2026-11-24/p:P1/status",
]


def test_every_voice_route_is_covered_here():
    with rig() as r:
        rules = {rule.rule for rule in r.app.url_map.iter_rules() if rule.rule.startswith("/voice")}
    assert rules == {"/voice/incoming", "/voice/step/<step>", "/voice/status", "/voice/fallback",
                     "/voice/reminder/<path:key>", "/voice/reminder/<path:key>/status"}
    # A new /voice route fails this test until it is added to VOICE_ROUTES below.
    covered = {re.sub(r"/reminder/[^/?]+/[^/?]+", "/reminder/<path:key>",
                      re.sub(r"/step/[^?]+", "/step/<step>", p.split("?")[0]))
               for p in VOICE_ROUTES}
    assert covered == rules


@pytest.mark.parametrize("path", VOICE_ROUTES)
def test_every_voice_route_refuses_unsigned_and_forged_requests(path, make_rig):
    r = make_rig()
    params = r.phone.webhook_params(from_=BILAL.e164, call_status="completed",
                                    Digits="1", DialCallStatus="completed")
    assert _refused(r.phone.post_raw(path, params, signature=None))
    assert _refused(r.phone.post_raw(path, params, signature="bm90IGl0"))
    assert _refused(r.phone.post_raw(path, params, signature=""))
    assert r.runtime.store.load_call(params["CallSid"]) is None
    assert r.sandbox.requests() == []  # not even a patient search
    signed = r.phone.post_raw(path, params)
    assert signed.status_code == 200 and signed.text.lstrip().startswith("<?xml")


# --------------------------------------------------------------------------- properties

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_forms = st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1,
                                 max_size=12), _text, max_size=8)


class _QuietRig(Rig):
    """The module's rig, with a short repr for hypothesis's failure reports."""

    def __repr__(self) -> str:
        return "<rig>"


@pytest.fixture(scope="module")
def app_rig():
    with rig() as r:
        yield _QuietRig(**{f.name: getattr(r, f.name) for f in dataclasses.fields(r)})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=_forms, key=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1,
                                max_size=12), value=_text, how=st.sampled_from(
                                    ["change", "add", "drop", "token", "url"]))
def test_any_form_is_accepted_exactly_when_signed_as_sent(app_rig, form, key, value, how):
    """Whatever the parameters (unicode, control characters, odd keys), the app accepts the
    request signed for exactly what was sent, and refuses any change to it."""
    r = app_rig
    path = "/voice/fallback"
    signed = r.phone.post_raw(path, form)
    assert signed.status_code == 200, form
    sent = dict(form)
    if how == "change" and form:
        k = sorted(form)[0]
        sent[k] = form[k] + (value or "x")
    elif how == "add" or not form:
        sent[key if key not in form else key + "_"] = value
    elif how == "drop":
        sent.pop(sorted(form)[0])
    signature = r.phone.sign(r.phone.absolute(path), form)
    if how == "token":
        signature = sign(r.phone.absolute(path), form, "another-token")
        sent = form
    if how == "url":
        signature = r.phone.sign(r.phone.absolute(path + "?after=dial"), form)
        sent = form
    assert _refused(r.phone.post_raw(path, sent, signature=signature)), (how, form, sent)
