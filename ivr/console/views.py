"""The agents' console: its blueprint, sign-in and sessions, the Convox screen-pop, live calls
and the outbox. The Reminders and History pages are `ivr.console.reminders` and
`ivr.console.history`, on the same blueprint.

Server-rendered Jinja (autoescaped), one static CSS file and one static JS file (the live
view's poller); no inline script, so the Content-Security-Policy forbids it.

Sessions are Flask's signed cookies (`settings.secret_key`), HttpOnly, SameSite=Lax, and
Secure unless the app runs in demo mode over plain http (see `_cookie_config`). Every POST
carries the session's CSRF token in a hidden `csrf_token` field; without it the answer is 400.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState

from flows.clinic_services import ServiceUnavailable
from ivr import desk
from ivr.accounts import AddressLimiter, check_login
from ivr.console.headers import add_security_headers
from ivr.runtime import Runtime
from ivr.store import AgentRecord, BookingRecord, CallRecord, TextRecord
from ivr.texts import NEEDS_AGENT, send_again

log = logging.getLogger(__name__)

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

SESSION_HOURS = 12
MAX_ROW_ID = 2**63 - 1  # SQLite's (and PostgreSQL's BIGINT) largest integer
LIVE_TRANSFER_WINDOW = timedelta(hours=2)
OPEN_STATUSES = ("pending", "booking", "retrying", "failed")
RETRYABLE = ("pending", "retrying")  # never "booking": a worker may be sending it now
LOGIN_MESSAGES = {
    "bad_credentials": "Wrong username or password.",
    "locked": "Too many wrong passwords: this account is locked for 5 minutes.",
    "too_many_attempts": "Too many sign-in attempts from this address; wait a few minutes.",
}


def current_runtime() -> Runtime:
    """The app's runtime (`create_app` keeps it in `app.extensions["ivr"]`)."""
    runtime: Runtime = current_app.extensions["ivr"]
    return runtime


def _cookie_config(state: BlueprintSetupState) -> None:
    """Session cookie flags, decided once when the blueprint is registered.

    Secure whenever the public URL is https or the app is not in demo mode; a demo reached
    over plain http (`ivr demo`, tests) keeps a non-Secure cookie, or the browser would
    drop it and nobody could sign in."""
    app = state.app
    runtime: Runtime = app.extensions["ivr"]
    settings = runtime.settings
    public = (settings.public_url or "").lower()
    secure = public.startswith("https://") or not settings.demo
    app.config.update(
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    app.extensions.setdefault("ivr_login_limiter", AddressLimiter())


bp.record_once(_cookie_config)


# --------------------------------------------------------------------------- session plumbing


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


@bp.context_processor
def _inject() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "agent_name": session.get("agent")}


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            abort(400, "The form is missing its security token; reload the page and try again.")


@bp.after_request
def _headers(response: Any) -> Any:
    return add_security_headers(response)


def _current_agent() -> str | None:
    """The signed-in agent, checked against the store on every request: a session ends at
    logout (the agent's session generation moved on), when the agent is removed (or removed
    and created again: another id), and `SESSION_HOURS` after sign-in, however busy."""
    name = session.get("agent")
    if not name:
        return None
    agent = current_runtime().store.get_agent(name)
    if agent is None or not _session_holds(agent):
        session.clear()
        return None
    return name


def _agent_mark(agent: AgentRecord) -> str:
    """Which agent record a session belongs to: a digest of its (salted) password hash, so an
    agent removed and created again, or given a new password, is not the one signed in."""
    return hashlib.sha256(agent.password_hash.encode("utf-8")).hexdigest()[:24]


def _session_holds(agent: AgentRecord) -> bool:
    signed_in = session.get("since")
    if session.get("mark") != _agent_mark(agent):
        return False
    if session.get("generation") != (agent.session_generation or 0):
        return False
    if not isinstance(signed_in, str):
        return False
    try:
        since = datetime.fromisoformat(signed_in)
    except ValueError:
        return False
    if since.tzinfo is None:
        return False
    return since <= _instant() < since + timedelta(hours=SESSION_HOURS)  # absolute, not sliding


def _instant() -> datetime:
    """Now as an aware UTC instant, from the app's clock (clinic-local wall time)."""
    return current_runtime().clock.now().replace(tzinfo=clinic_zone()).astimezone(UTC)


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Redirect to the login page (and back afterwards) when nobody is signed in."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if _current_agent() is None:
            if request.path.endswith(".json"):
                return jsonify(error="sign in first"), 401
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def _safe_next(target: str | None) -> str:
    """Only paths of this console (no other host, no scheme-relative URL)."""
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return url_for("console.caller_search")


# --------------------------------------------------------------------------- time helpers


def clinic_zone() -> ZoneInfo:
    """The clinic's time zone (the console shows clinic-local times)."""
    return ZoneInfo(current_runtime().settings.clinic.timezone)


def local_time(instant: datetime | None) -> datetime | None:
    """A store instant (naive UTC) as clinic-local wall time."""
    if instant is None:
        return None
    return instant.replace(tzinfo=UTC).astimezone(clinic_zone()).replace(tzinfo=None)


def _hhmm(instant: datetime | None) -> str:
    local = local_time(instant)
    return f"{local:%H:%M:%S}" if local else ""


@bp.app_template_filter("when")
def _when_filter(moment: datetime | None) -> str:
    return desk.when(moment) if moment else ""


# --------------------------------------------------------------------------- sign-in


@bp.get("/")
def index() -> Any:
    """The console's front door."""
    return redirect(url_for("console.caller_search"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in (rate limited per account and per address)."""
    next_url = request.values.get("next")
    error = None
    status = 200
    if request.method == "POST":
        rt = current_runtime()
        username = request.form.get("username", "")
        _warn_if_proxied_unseen(rt.settings.proxy_hops)
        result = check_login(
            rt.store, username, request.form.get("password", ""), rt.store.now(),
            # With IVR_PROXY_HOPS, ProxyFix has put the client's own address here (not the
            # proxy's): one agent's typos never lock out every agent behind the same proxy.
            address=request.remote_addr or "?",
            limiter=current_app.extensions["ivr_login_limiter"],
        )
        agent = rt.store.get_agent(username.strip()) if result.ok else None
        if result.ok and agent is not None:
            session.clear()  # no session fixation: a fresh session and CSRF token
            session.permanent = True
            session["agent"] = username.strip()
            session["mark"] = _agent_mark(agent)
            session["generation"] = agent.session_generation or 0
            session["since"] = _instant().isoformat()
            session["csrf"] = secrets.token_urlsafe(32)
            log.info("console sign-in by agent %s", username.strip())
            return redirect(_safe_next(next_url))
        error = LOGIN_MESSAGES[result.reason]
        status = 429 if result.reason == "too_many_attempts" else 401
    return render_template("console/login.html", error=error, next_url=next_url or ""), status


def _warn_if_proxied_unseen(proxy_hops: int) -> None:
    """Once per process: sign-ins come through a proxy the app was not told about, so the
    per-address limit counts every agent behind it as one address."""
    if proxy_hops or not request.headers.get("X-Forwarded-For"):
        return
    if not current_app.extensions.get("ivr_proxy_warned"):
        current_app.extensions["ivr_proxy_warned"] = True
        log.warning("console sign-ins arrive through a proxy (X-Forwarded-For) but "
                    "IVR_PROXY_HOPS is 0: the per-address sign-in limit sees the proxy's "
                    "address for every agent; set IVR_PROXY_HOPS")


@bp.post("/logout")
def logout() -> Any:
    """Sign out: this agent's sessions end everywhere (a saved cookie opens nothing)."""
    name = session.get("agent")
    if name and _current_agent() == name:
        current_runtime().store.end_agent_sessions(name)
        log.info("console sign-out by agent %s", name)
    session.clear()
    return redirect(url_for("console.login"))


# --------------------------------------------------------------------------- screen-pop


@bp.get("/caller")
@login_required
def caller_search() -> Any:
    """The screen-pop: `?mobile=<number>` (any format), optional `patient`, `doctor`, `day`."""
    return _render_caller(request.args)


def _render_caller(values: Any, *, error: str | None = None, status: int = 200) -> Any:
    rt = current_runtime()
    services = rt.services
    mobile = (values.get("mobile") or "").strip()
    ctx: dict[str, Any] = {
        "mobile": mobile,
        "error": error,
        "lookup": None,
        "doctors": services.profile.doctors,
        "values": values,
        "booking_key": values.get("booking_key") if desk.valid_key(values.get("booking_key"))
        else f"console:{uuid.uuid4()}",
    }
    if not mobile:
        return render_template("console/caller.html", **ctx), status
    try:
        lookup = desk.lookup_caller(services, mobile, values.get("patient") or None)
    except desk.DeskError as exc:
        ctx["error"] = exc.message
        return render_template("console/caller.html", **ctx), exc.status
    except ServiceUnavailable:
        ctx["error"] = error or desk.UNAVAILABLE_LOOKUP
        return render_template("console/caller.html", **ctx), 503
    ctx["lookup"] = lookup
    if lookup.patients and lookup.selected is None and values.get("patient") != "new":
        return render_template("console/caller.html", **ctx), status  # choose one first
    doctor_id = values.get("doctor") or values.get("doctor_id")
    if services.profile.doctor(doctor_id) is None:
        visit = lookup.last_visit
        doctor_id = visit.doctor_id if visit and services.profile.doctor(visit.doctor_id) else (
            services.profile.doctors[0].id)
    try:
        day = desk.parse_day(values.get("day")) if values.get("day") else None
    except desk.DeskError as exc:
        ctx["error"] = error or exc.message
        day = None
    if day is None:
        day = desk.first_free_day(services, doctor_id)
    slots: list[Any] = []
    try:
        slots = desk.free_slots(services, doctor_id, day)
    except ServiceUnavailable:
        ctx["slots_error"] = desk.UNAVAILABLE_LOOKUP
    site = desk.site_of(services, desk.doctor_of(services, doctor_id))
    ctx.update(doctor_id=doctor_id, day=day, slots=slots, site=site,
               chosen_start=values.get("start") or "", today=services.now().date())
    return render_template("console/caller.html", **ctx), status


@bp.post("/caller/book")
@login_required
def caller_book() -> Any:
    """Book for a found patient, or register (with consent) and book; then the confirmation."""
    rt = current_runtime()
    services = rt.services
    form = request.form
    key = form.get("booking_key", "")
    if not desk.valid_key(key) or not key.startswith("console:"):
        key = f"console:{uuid.uuid4()}"
    try:
        start = desk.parse_start(form.get("start"))
        patient = None
        patient_id = form.get("patient_id") or None
        if patient_id is None:
            patient = desk.new_patient(
                services, form.get("first_name"), form.get("last_name"),
                form.get("new_mobile") or form.get("mobile"), form.get("consent") == "yes",
            )
        outcome = desk.book(services, key=key, doctor_id=form.get("doctor_id"), start=start,
                            patient_id=patient_id, patient=patient, notes=form.get("notes", ""))
    except desk.DeskError as exc:
        message = exc.message
        if message == desk.CONSENT_REQUIRED:
            message = ("Tick the consent box: without the caller's consent nothing is "
                       "registered or booked.")
        return _render_caller(_form_values(form), error=message, status=exc.status)
    except ServiceUnavailable:
        return _render_caller(_form_values(form), error=desk.UNAVAILABLE_BOOKING, status=503)
    log.info("console booking %s by agent %s: %s", key, session.get("agent"), outcome.status)
    return redirect(url_for("console.booking", key=key))


def _form_values(form: Any) -> dict[str, str]:
    """The booking form as screen-pop query values, so a refused form keeps what was typed."""
    values = {k: form.get(k, "") for k in
              ("mobile", "first_name", "last_name", "new_mobile", "notes", "start",
               "booking_key", "consent")}
    values["patient"] = form.get("patient_id", "")
    values["doctor"] = form.get("doctor_id", "")
    start = form.get("start", "")
    values["day"] = start[:10] if len(start) >= 10 else form.get("day", "")
    return values


@bp.get("/bookings/<path:key>")
@login_required
def booking(key: str) -> Any:
    """A booking's confirmation (or where it stands in the outbox)."""
    rt = current_runtime()
    number = _record_id(key)
    record = None if number == 0 else rt.store.get_booking(key if number is None else number)
    if record is None:
        abort(404)
    text = rt.store.get_text(record.idempotency_key)
    return render_template("console/booking.html", b=_booking_view(record), text=text)


def _record_id(key: str) -> int | None:
    """A row id from a URL: ASCII digits (not "²": `str.isdigit` accepts it) within the
    database's integers. None for anything else (an idempotency key, maybe); 0 for digits too
    large to be any row's id, so the answer is 404, not an overflow's 500."""
    if not (key.isascii() and key.isdigit()):
        return None
    number = int(key)
    return number if 0 < number <= MAX_ROW_ID else 0


def _booking_view(record: BookingRecord) -> dict[str, Any]:
    services = current_runtime().services
    payload = record.payload  # None: an unreadable row, shown with what it has
    doctor = services.profile.doctor(payload.doctor_id) if payload else None
    site = services.profile.site(doctor.clinic_id) if doctor else None
    name = f"{payload.first_name} {payload.last_name}".strip() if payload else ""
    return {
        "record": record,
        "start": payload.start if payload else None,
        "doctor": doctor.name if doctor else (payload.doctor_id if payload else "?"),
        "site": site,
        "patient_name": name,
        "patient_id": record.patient_id or (payload.patient_id if payload else None),
        "notes": payload.notes if payload else "",
        "created": local_time(record.created_at),
        "next_attempt": local_time(record.next_attempt_at),
    }


# --------------------------------------------------------------------------- live view


@bp.get("/live")
@login_required
def live() -> Any:
    """Calls in the IVR now and recently transferred ones (the JS keeps it fresh)."""
    return render_template("console/live.html", data=_live_data())


@bp.get("/live.json")
@login_required
def live_json() -> Any:
    """The live view's data, polled every few seconds by `live.js`."""
    return jsonify(_live_data())


def _call_view(record: CallRecord) -> dict[str, Any]:
    store = current_runtime().store
    answers = [
        {"step": e.step or "", "kind": e.kind, "text": e.text or ""}
        for e in store.events(record.call_sid)
        if e.kind in ("pressed", "said")
    ]
    return {
        "caller": record.caller_masked or "withheld",
        "patient": record.patient_first_name or "",
        "step": record.step or "",
        "started": _hhmm(record.created_at),
        "transferred": _hhmm(record.transferred_at),
        "outcome": record.outcome or "",
        "answers": answers,
    }


def _live_data() -> dict[str, Any]:
    store = current_runtime().store
    now = store.now()
    in_progress = [_call_view(c) for c in store.calls_in_progress(limit=50)]
    transferred = [
        _call_view(c) for c in store.recent_calls(now - LIVE_TRANSFER_WINDOW, limit=200)
        if c.transferred_at is not None
    ][:20]
    return {"as_of": _hhmm(now), "in_progress": in_progress, "transferred": transferred}


# --------------------------------------------------------------------------- outbox


@bp.get("/outbox")
@login_required
def outbox() -> Any:
    """Bookings Clinicea has not confirmed, and open callback requests."""
    rt = current_runtime()
    rows = [_booking_view(b) for b in rt.store.bookings(statuses=OPEN_STATUSES, limit=200)]
    callbacks = [
        {"record": c, "created": local_time(c.created_at)} for c in rt.store.callbacks("open")
    ]
    texts = [_text_view(t) for t in rt.store.texts(NEEDS_AGENT, limit=200)]
    return render_template("console/outbox.html", rows=rows, callbacks=callbacks, texts=texts)


def _text_view(text: TextRecord) -> dict[str, Any]:
    """A confirmation text that needs an agent, with its booking (when, doctor, patient)."""
    record = current_runtime().store.get_booking(text.booking_key)
    return {"text": text, "booking": _booking_view(record) if record else None,
            "updated": local_time(text.updated_at)}


@bp.post("/texts/<path:key>/send-again")
@login_required
def text_send_again(key: str) -> Any:
    """An agent checked Twilio's log: send a failed or unknown confirmation text once more."""
    if send_again(current_runtime().store, key):
        log.info("text of booking %s: send again, asked by agent %s", key, session.get("agent"))
        flash("The text will be sent again within a few seconds.", "info")
    else:
        flash("That text is not failed or unknown any more.", "error")
    return redirect(url_for("console.outbox"))


@bp.post("/outbox/<path:key>/retry")
@login_required
def outbox_retry(key: str) -> Any:
    """Send a pending or retrying booking to Clinicea now."""
    rt = current_runtime()
    agent = session.get("agent", "?")
    record = rt.store.get_booking(key)
    if record is None:
        abort(404)
    if record.status == "failed":
        flash("A failed booking is not retried: book it again from the screen-pop, then mark "
              "this one handled.", "error")
        return redirect(url_for("console.outbox"))
    if record.status not in RETRYABLE:  # being sent right now, or already done
        flash(f"This booking is {record.status}; nothing to retry.", "info")
        return redirect(url_for("console.outbox"))
    result = rt.services.outbox.retry_now(key, by=agent)
    if result is None:
        flash("Someone else is sending this booking right now.", "info")
        return redirect(url_for("console.outbox"))
    messages = {
        "booked": "Booked in Clinicea.",
        "retrying": "Clinicea did not take it yet; it will be tried again.",
        "slot_taken": "That time has been taken: the booking failed; call the patient.",
        "failed": f"Clinicea refused it: {result.reason or 'no reason given'}.",
    }
    flash(messages.get(result.status, result.status), "info")
    return redirect(url_for("console.outbox"))


@bp.post("/outbox/<path:key>/handled")
@login_required
def outbox_handled(key: str) -> Any:
    """An agent dealt with this booking by hand."""
    rt = current_runtime()
    if rt.store.mark_handled(key, session.get("agent", "?")):
        flash("Marked handled.", "info")
    else:
        flash("That booking is not open any more.", "error")
    return redirect(url_for("console.outbox"))


@bp.post("/callbacks/<int:callback_id>/handled")
@login_required
def callback_handled(callback_id: int) -> Any:
    """The clinic called this caller back."""
    rt = current_runtime()
    if not 0 < callback_id <= MAX_ROW_ID:
        abort(404)
    if rt.store.mark_callback_handled(callback_id, session.get("agent", "?")):
        flash("Callback marked handled.", "info")
    else:
        flash("That callback is not open any more.", "error")
    return redirect(url_for("console.outbox"))
