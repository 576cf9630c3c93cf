"""Appointment reminders at the edge (docs/reminders.md): the day's run and what comes back.

`ReminderRun` plans a day (Clinicea's appointments of the day -> `flows.reminders.plan.plan_day`
-> the store, whose keys make a second plan of the same day write nothing new) and runs the
send pass: due texts, and calls inside calling hours paced to the account's calls per second
(by default through the store, so every process calling on the account keeps one pace).
`ivr remind` runs it once; the booking worker runs `run_once` on every pass (it plans the day
when the clinic's `[reminders] at` has passed). `ReminderReplies` takes what comes back: the
reminder call's status callback and the patients' SMS replies.

Logs carry reminder keys (a day and a Clinicea id), never a number or a text.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from flows.clinic_services import ClinicProfile
from flows.engine import CallState
from flows.lang import catalogue_for
from flows.reminders.frame import ReminderFrame
from flows.reminders.plan import (
    DayAppointment,
    DayPlan,
    call_times,
    first_channel,
    next_calling_moment,
    plan_day,
    reminder_from_json,
    sms_after_call,
)
from flows.reminders.status import after_call, after_reply
from flows.reminders.texting import SmsAppointment, read_reply, reminder_sms
from ivr.clinicea import CliniceaClient, CliniceaError
from ivr.clinicea.models import Appointment
from ivr.clinicea_services import profile_from_config
from ivr.clock import Clock
from ivr.config import ClinicConfig, ConfigError, ReminderSettings
from ivr.phone import parse_phone
from ivr.runtime import Runtime
from ivr.store import ReminderRecord, Store
from ivr.twilio_rest import (
    CallNotPlaced,
    CallOutcomeUnknown,
    CallRefused,
    OutboundCall,
    Pacer,
    SharedCallPacer,
    SmsNotSent,
    SmsOutcomeUnknown,
    SmsRefused,
    TwilioCalls,
    TwilioSms,
    utc_now,
)

log = logging.getLogger(__name__)

#: A row left `sending` longer than this had a sender that stopped (one Twilio request is 10 s
#: at most): never sent again on its own (`Store.expire_sending_reminders`).
STALE_AFTER = timedelta(minutes=2)
MAX_TRIES = 3  # Twilio said "not now" (429, 503, no connection): tries per channel
RETRY_AFTER = timedelta(minutes=1)
PLAN_RETRY_SECONDS = 60.0  # Clinicea could not be read: the worker tries the plan again then
#: What the desk reads on a reminder whose patient replied Twilio's CANCEL keyword.
CANCEL_KEYWORD_NOTE = ("replied CANCEL (also a carrier opt-out): check with the patient by phone"
                       " (texts to this number are blocked until they reply START)")
#: What the desk reads on a reminder not sent because its appointment had started.
TOO_LATE = "not sent: the appointment had started by the time it could go"
#: Path characters Twilio signs as they are (`ivr.security.signed_url` quotes the same way).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def reminder_url(public_url: str, key: str) -> str:
    """The first webhook of the reminder call (`POST /voice/reminder/<key>`)."""
    return f"{public_url.rstrip('/')}{quote(f'/voice/reminder/{key}', safe=_PATH_SAFE)}"


def status_url(public_url: str, key: str) -> str:
    """The reminder call's status callback."""
    return reminder_url(public_url, key) + "/status"


def day_appointments(rows: Iterable[Appointment], region: str) -> list[DayAppointment]:
    """Clinicea's rows of a day as the planner takes them (the mobile in E.164, or None)."""
    out = []
    for row in rows:
        phone = parse_phone(row.patient_mobile, region) if row.patient_mobile else None
        out.append(DayAppointment(
            id=row.id, start=row.start, status=row.status, patient_id=row.patient_id,
            patient_name=row.patient_name or "", mobile=phone.e164 if phone else None,
            doctor_id=row.doctor_id, doctor_name=row.doctor_name or "",
        ))
    return out


def sms_appointments(payload: dict[str, object]) -> list[SmsAppointment]:
    """The appointments of a stored reminder, as the text names them."""
    reminder = reminder_from_json(payload)
    return [SmsAppointment(a.start, a.doctor_id, a.doctor_name, a.clinic_id)
            for a in reminder.appointments]


@dataclass
class SendCounts:
    """What one send pass did."""

    texts: int = 0
    calls: int = 0
    retrying: int = 0
    failed: int = 0
    opted_out: int = 0

    def __str__(self) -> str:
        return (f"{self.texts} text(s) sent, {self.calls} call(s) placed, {self.retrying} to "
                f"retry, {self.failed} failed, {self.opted_out} opted out")


@dataclass
class RunReport:
    """What `ReminderRun.run` did: the plan, the rows it wrote, the first send pass."""

    plan: DayPlan
    written: int
    sent: SendCounts = field(default_factory=SendCounts)


class ReminderRun:
    """A day's reminder run and the send pass (module docstring); one per process."""

    def __init__(
        self,
        client: CliniceaClient,
        store: Store,
        clock: Clock,
        clinic: ClinicConfig,
        *,
        sms: TwilioSms | None,
        calls: TwilioCalls | None,
        pacer: Pacer | None = None,
        pacing_key: str = "default",
        public_url: str | None,
        worker_id: str = "remind",
        batch: int = 20,
        monotonic: Callable[[], float] = _time.monotonic,
        on_sent: Callable[[str], None] = lambda channel: None,
    ) -> None:
        """`sms` / `calls` None: Twilio is not configured, nothing of that channel is sent
        (the rows wait). Calls also need `public_url` (Twilio fetches the call from it).
        `pacer` None: the account's pace kept in the store under `pacing_key` (the Twilio
        account SID), shared with every other process calling on that account.
        `on_sent(channel)` is told of each call placed and text accepted (the metrics)."""
        if clinic.reminders is None:
            raise ConfigError("reminders: the clinic file has no [reminders] table")
        self.settings: ReminderSettings = clinic.reminders
        self.client, self.store, self.clock, self.clinic = client, store, clock, clinic
        self.sms, self.calls, self.public_url = sms, calls, public_url
        self.pacer: Pacer = pacer or store_pacer(store, pacing_key,
                                                 self.settings.calls_per_second)
        self.worker_id, self.batch = worker_id, batch
        self.profile: ClinicProfile = profile_from_config(clinic)
        self._monotonic = monotonic
        self._on_sent = on_sent
        self._plan_failed_at: float | None = None
        self._last_expiry: float | None = None

    # -- planning ------------------------------------------------------------------------------

    def target_day(self, day: date | None = None) -> date:
        """`day`, or the day the clinic reminds today (today + `days_ahead`)."""
        return day or self.clock.now().date() + timedelta(days=self.settings.days_ahead)

    def plan(self, day: date) -> DayPlan:
        """Read the day from Clinicea and plan it (nothing written). Raises `CliniceaError`."""
        rows = day_appointments(self.client.appointments_on(day), self.clinic.default_region)
        mobiles = {r.mobile for r in rows if r.mobile}
        return plan_day(day, rows, channels=self.settings.channels, now=self.clock.now(),
                        opted_out=self.store.opted_out(mobiles))

    def write(self, plan: DayPlan) -> int:
        """Store the plan (only what is not there yet) with each call's earliest time; the
        number of reminders written."""
        callers = [r.key for r in plan.reminders
                   if r.status == "queued" and first_channel(r.channels) == "call"]
        now = self.clock.now()
        hours = self.settings.calling_hours
        # The schedule decides who fits in today's calling hours; the pacer, not the row's
        # time, spaces the calls (one send pass places every due call, a second apart).
        times = call_times(len(callers), start=now, hours=hours,
                           per_second=self.settings.calls_per_second)
        opening = next_calling_moment(now, hours)
        call_at = {key: (None if t is None else opening) for key, t in zip(callers, times,
                                                                            strict=True)}
        written = self.store.plan_reminders(plan, call_at=call_at)
        log.info("reminders of %s planned: %d written, %d skipped", plan.day, written,
                 len(plan.skipped))
        return written

    def describe(self, plan: DayPlan) -> list[str]:
        """What a dry run prints: one line per reminder (masked number, first name, times,
        channel, the text) and one per appointment left out."""
        lang = catalogue_for(self.settings.language)
        today = self.clock.now().date()
        lines = [f"reminders of {plan.day.isoformat()}: {len(plan.reminders)} patient(s), "
                 f"{len(plan.skipped)} appointment(s) skipped"]
        for r in plan.reminders:
            phone = parse_phone(r.mobile, self.clinic.default_region)
            times = ", ".join(a.start.strftime("%H:%M") for a in r.appointments)
            how = "opted out: nothing sent" if r.status == "opted_out" else " then ".join(
                r.channels)
            lines.append(f"{phone.masked if phone else '?'} {r.first_name}: {times} ({how})")
            if r.status == "queued" and "sms" in r.channels:
                body = reminder_sms(lang, self.profile, [
                    SmsAppointment(a.start, a.doctor_id, a.doctor_name, a.clinic_id)
                    for a in r.appointments], today=today)
                lines.append(f"  text: {body}")
        for s in plan.skipped:
            lines.append(f"skipped appointment {s.appointment_id}: {s.reason}")
        return lines

    def run(self, day: date | None = None) -> RunReport:
        """Plan `day` (default: the clinic's next), write it, then one send pass."""
        self.require_sending()
        plan = self.plan(self.target_day(day))
        written = self.write(plan)
        return RunReport(plan, written, self.send_pass())

    def require_sending(self) -> None:
        """`ConfigError` when nothing could be sent (no From number)."""
        if not self.settings.from_number:
            raise ConfigError("reminders.from_number: the clinic's Twilio number is needed to "
                              "call or text (a dry run works without it)")

    def run_once(self) -> SendCounts:
        """The booking worker's pass: plan today's run once `at` has passed, then send."""
        now = self.clock.now()
        if now.time() >= self.settings.at and self._may_plan():
            day = self.target_day()
            if not self.store.reminder_day_planned(day):
                try:
                    self.write(self.plan(day))
                except CliniceaError as exc:
                    self._plan_failed_at = self._monotonic()
                    log.warning("reminders of %s not planned: Clinicea could not be read (%s);"
                                " trying again in %d s", day, exc, PLAN_RETRY_SECONDS)
        return self.send_pass()

    def _may_plan(self) -> bool:
        failed = self._plan_failed_at
        return failed is None or self._monotonic() - failed >= PLAN_RETRY_SECONDS

    # -- the send pass -------------------------------------------------------------------------

    def send_pass(self) -> SendCounts:
        """Send the due texts, then place the due calls if it is calling time (paced)."""
        counts = SendCounts()
        self._expire()
        sender = self.settings.from_number
        if not sender:
            return counts
        if self.sms is not None:
            for row in self.store.claim_reminders("sms", self.clock.now(), self.worker_id,
                                                  self.batch):
                self._guard(row, self._text, sender, counts)
        if self.calls is not None and self.public_url:
            # One claim per call, just before it is paced and placed: a sender stopped half way
            # leaves only the call in flight in doubt, the others queued for the next pass (a
            # batch claimed at once would be left `sending` and never called).
            for _ in range(self.batch):
                now = self.clock.now()
                if next_calling_moment(now, self.settings.calling_hours) != now:
                    break
                claimed = self.store.claim_reminders("call", now, self.worker_id, 1)
                if not claimed:
                    break
                self._guard(claimed[0], self._call, sender, counts)
        return counts

    def _guard(self, row: ReminderRecord,
                send: Callable[[ReminderRecord, str, SendCounts], None], sender: str,
                counts: SendCounts) -> None:
        try:
            send(row, sender, counts)
        except Exception:  # one bad row must not stop the others; it expires, never resent
            counts.failed += 1
            log.exception("reminder %s: sending failed", row.key)

    def _expire(self) -> None:
        now = self._monotonic()
        if self._last_expiry is not None and now - self._last_expiry < 30:
            return
        self._last_expiry = now
        stopped = self.store.expire_sending_reminders(STALE_AFTER)
        if stopped:
            log.warning("%d reminder(s) left sending by a stopped sender: not sent again",
                        stopped)

    def _not_to_send(self, row: ReminderRecord, counts: SendCounts) -> bool:
        """A claimed reminder that must not go out any more (its status set): the number said
        STOP after the plan, or its first appointment has started (a retry that waited for the
        next calling hours, a worker down since the plan)."""
        if self.store.opted_out([row.phone_e164]):
            self.store.set_reminder_status(row.key, "opted_out", only_from=("sending",))
            counts.opted_out += 1
            return True
        if reminder_from_json(row.payload).first.start <= self.clock.now():
            self.store.set_reminder_status(row.key, "failed", only_from=("sending",),
                                           note=TOO_LATE)
            counts.failed += 1
            log.warning("reminder %s: not sent, its appointment has started", row.key)
            return True
        return False

    def _text(self, row: ReminderRecord, sender: str, counts: SendCounts) -> None:
        store, key = self.store, row.key
        assert self.sms is not None
        if self._not_to_send(row, counts):
            return
        body = reminder_sms(catalogue_for(self.settings.language), self.profile,
                            sms_appointments(row.payload), today=self.clock.now().date())
        try:
            sid = self.sms.create(to=row.phone_e164, from_=sender, body=body)
        except SmsRefused as exc:
            store.reminder_failed(key, f"Twilio refused the text: {exc}", None)
            counts.failed += 1
        except SmsNotSent as exc:
            self._not_now(row, f"text not sent: {exc}", counts)
        except SmsOutcomeUnknown as exc:
            store.set_reminder_status(key, "sent", only_from=("sending",),
                                      note=f"{exc}: the text may have been sent; not resent")
            counts.texts += 1
        else:
            store.reminder_sent(key, "sms", sid)
            self._on_sent("sms")
            counts.texts += 1
            log.info("reminder %s: texted", key)

    def _call(self, row: ReminderRecord, sender: str, counts: SendCounts) -> None:
        assert self.calls is not None and self.public_url
        if self._not_to_send(row, counts):
            return
        self.pacer.wait()
        key = row.key
        try:
            sid = self.calls.create(OutboundCall(
                to=row.phone_e164, from_=sender, url=reminder_url(self.public_url, key),
                status_callback=status_url(self.public_url, key)))
        except CallRefused as exc:
            self._call_failed(row, f"Twilio refused the call: {exc}", counts)
        except CallNotPlaced as exc:
            self._not_now(row, f"call not placed: {exc}", counts)
        except CallOutcomeUnknown as exc:
            self._call_failed(row, f"{exc}: the call may have been placed; not placed again",
                              counts)
        else:
            self.store.reminder_sent(key, "call", sid)
            self._on_sent("call")
            counts.calls += 1
            log.info("reminder %s: call placed", key)

    def _not_now(self, row: ReminderRecord, error: str, counts: SendCounts) -> None:
        if row.attempts < MAX_TRIES:
            self.store.reminder_failed(row.key, error, self.clock.now() + RETRY_AFTER)
            counts.retrying += 1
        elif row.channel == "call":
            self._call_failed(row, f"{error} ({row.attempts} tries)", counts)
        else:
            self.store.reminder_failed(row.key, f"{error} ({row.attempts} tries)", None)
            counts.failed += 1

    def _call_failed(self, row: ReminderRecord, error: str, counts: SendCounts) -> None:
        """No call: the text instead when the clinic texts, else the desk."""
        if "sms" in row.channels:
            self.store.set_reminder_status(row.key, "queued", only_from=("sending",),
                                           channel="sms", note=error)
            counts.retrying += 1
        else:
            self.store.reminder_failed(row.key, error, None)
            counts.failed += 1
        log.warning("reminder %s: %s", row.key, error)


# --- what comes back ---------------------------------------------------------------------------

#: Twilio's final call statuses (the status callback's `CallStatus`).
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


class ReminderReplies:
    """The reminder call's end and the patients' SMS replies, on the store.

    `call_frame(call_sid)` gives the stored frame of an answered reminder call (None when it
    was never answered); `request_callback` records a callback request for the desk.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        clinic: ClinicConfig,
        *,
        call_frame: Callable[[str], ReminderFrame | None],
        request_callback: Callable[[str | None, str, str], None],
        on_call_end: Callable[[str], None] = lambda call_status: None,
    ) -> None:
        self.store, self.clock, self.clinic = store, clock, clinic
        self._call_frame = call_frame
        self._request_callback = request_callback
        self._on_call_end = on_call_end  # told of each reminder call's end once (the metrics)

    def call_ended(self, key: str, call_sid: str, call_status: str,
                   answered_by: str | None) -> str | None:
        """The status callback of a reminder call: the reminder's status from what the
        patient chose, and the text as well when the call reached nobody or a machine. The
        new status, or None when nothing changed (an unknown key, a progress event, a
        repeated callback)."""
        if call_status not in FINAL_CALL_STATUSES:
            return None
        row = self.store.get_reminder(key)
        if row is None or (row.call_sid and row.call_sid != call_sid):
            log.warning("status callback of an unknown reminder call (%s)", key)
            return None
        frame = self._call_frame(call_sid)
        by = answered_by or (frame.answered_by if frame else None)
        live = ("sending", "sent")
        if sms_after_call(row.channels, call_status, by):
            changed = self.store.set_reminder_status(
                key, "queued", only_from=live, channel="sms", answered_by=by,
                note=f"call {call_status}" + (f" ({by})" if by else "") + ": texted instead")
            if changed:
                self._on_call_end(call_status)
            return "queued" if changed else None
        status = after_call(frame, call_status)
        changed = self.store.set_reminder_status(key, status, only_from=live, answered_by=by)
        if changed:  # a repeated callback changes nothing and is not counted again
            self._on_call_end(call_status)
        return status if changed else None

    def sms_reply(self, from_: str, body: str | None, opt_out_type: str | None = None) -> str:
        """An inbound SMS: mirror Twilio's opt-out, then the newest reminder of the number
        takes the answer; what it became ("opted_out", "confirmed", ..., "callback" when no
        reminder was found, "ignored" for a message from no number)."""
        phone = parse_phone(from_, self.clinic.default_region)
        if phone is None:
            return "ignored"
        reading = read_reply(body)
        twilio = (opt_out_type or "").strip().upper()
        opted = {"STOP": "out", "START": "in"}.get(twilio, reading.opted)
        word = (body or "").strip().upper()[:12]
        if opted == "out":
            self.store.opt_out(phone.e164, f"keyword:{word}" if reading.keyword else "reply")
        elif opted == "in":
            self.store.opt_in(phone.e164)
        intent = "opt_out" if opted == "out" and reading.intent == "opt_in" else reading.intent
        reminders = self.clinic.reminders
        days = (reminders.days_ahead if reminders else 1) + 1
        since = self.clock.now().date() - timedelta(days=days)
        text = (body or "").strip()
        for _ in range(3):  # the update is conditional on the status read: a race reads again
            row = self.store.reminder_by_phone(phone.e164, since)
            if row is None:
                if reading.keyword or not text:
                    return "ignored"
                self._request_callback(None, phone.e164, f"SMS from a patient: {text[:200]}")
                return "callback"
            new = after_reply(row.status, intent)
            note = CANCEL_KEYWORD_NOTE if reading.keyword and intent == "cancel" else None
            if self.store.set_reminder_status(row.key, new, only_from=(row.status,),
                                              reply=text, note=note):
                log.info("reminder %s: SMS reply read as %s", row.key, intent)
                return new
        return "ignored"


def frame_of(state: Mapping[str, Any] | None) -> ReminderFrame | None:
    """The reminder frame of a stored call state, or None when it is not a reminder call."""
    if not state or state.get("flow") != "reminder":
        return None
    call = CallState.from_dict(state, frame=ReminderFrame.load)
    return call.data if isinstance(call.data, ReminderFrame) else None


# --- built from a runtime --------------------------------------------------------------------


def store_pacer(store: Store, key: str, per_second: float, *,
                now: Callable[[], datetime] = utc_now,
                sleep: Callable[[float], None] = _time.sleep) -> SharedCallPacer:
    """A pacer taking its slots from the store's queue for account `key`: the worker, `ivr
    remind` run by hand and other hosts on the database keep one pace together."""
    return SharedCallPacer(lambda at, gap: store.take_call_slot(key, at, gap), per_second,
                           now=now, sleep=sleep)


def run_for(rt: Runtime, worker_id: str, *, pacer: Pacer | None = None) -> ReminderRun | None:
    """The process's reminder run on its runtime, or None when the clinic has no
    `[reminders]`. Its calls are paced in the store under the Twilio account SID."""
    if rt.settings.clinic.reminders is None:
        return None
    return ReminderRun(rt.client, rt.store, rt.clock, rt.settings.clinic, sms=rt.services.sms,
                       calls=rt.calls, pacer=pacer,
                       pacing_key=rt.settings.twilio_account_sid or "default",
                       public_url=rt.settings.public_url, worker_id=worker_id,
                       on_sent=rt.metrics.reminder_sent)


def replies_for(rt: Runtime) -> ReminderReplies:
    """What comes back from reminders, on the runtime's store and services."""

    def call_frame(call_sid: str) -> ReminderFrame | None:
        record = rt.store.load_call(call_sid)
        return frame_of(record.state) if record is not None else None

    def request_callback(call_sid: str | None, phone: str, reason: str) -> None:
        phone_number = parse_phone(phone, rt.settings.clinic.default_region)
        rt.store.add_callback(call_sid, phone, phone_number.masked if phone_number else None,
                              reason)

    return ReminderReplies(rt.store, rt.clock, rt.settings.clinic, call_frame=call_frame,
                           request_callback=request_callback,
                           on_call_end=rt.metrics.reminder_call_ended)
