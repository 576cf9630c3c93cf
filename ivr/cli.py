"""The `ivr` command: demo, call, serve, worker, remind, sandbox, check, purge, migrate,
accounts.

Every command reads its configuration through `ivr.config.Settings.from_env()`; a bad value
stops it with one line naming the key. Nothing here talks to the real Twilio or Clinicea
unless the environment points at them.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from ivr import logs
from ivr.config import ConfigError, Settings

if TYPE_CHECKING:  # imported by the commands that need them (the worker's metrics directory)
    pass

log = logging.getLogger(__name__)

DEMO_CALLERS = {
    "known": "+923216315551",  # Bilal Ahmed: a returning patient with a completed visit
    "family": "+923001234567",  # Kamran, Sana and Zoya Ahmed share this number
    "new": "+923009998877",  # nobody in the sandbox: registration with consent
    "withheld": "anonymous",  # caller ID withheld: key in a number
    "no-visit": "+923331234567",  # Hira Malik: registered, never visited
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ivr` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    # The JSON handler only (the commands that build a runtime lower it to IVR_LOG_LEVEL): a
    # second, plain handler would print every line twice and break one-JSON-object-per-line
    # for log shippers.
    logs.configure(logging.WARNING)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ivr", description="clinic-ivr: a phone front desk")
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="sandbox Clinicea + the app + a terminal softphone")
    demo.add_argument("--from", dest="caller", default="known",
                      help=f"a demo caller ({', '.join(DEMO_CALLERS)}) or any number")
    demo.add_argument("--language", help="the clinic's language locale, e.g. ur-PK")
    demo.add_argument("--logs", action="store_true",
                      help="show the app's JSON log lines (IVR_LOG_LEVEL) between the prompts;"
                      " by default only warnings, so the call reads cleanly")
    demo.add_argument("--reminder", action="store_true",
                      help="the clinic calls you: Bilal Ahmed's appointment reminder "
                      "(tomorrow's reminders planned in the sandbox)")
    demo.set_defaults(run=cmd_demo)

    call = sub.add_parser("call", help="the softphone against a running server")
    call.add_argument("--url", required=True, help="base URL of the running app")
    call.add_argument("--from", dest="caller", default="known")
    call.set_defaults(run=cmd_call)

    serve = sub.add_parser("serve", help="run the web app (single-host installs)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--no-worker", action="store_true",
                       help="do not start the booking worker process beside the server")
    serve.set_defaults(run=cmd_serve)

    worker = sub.add_parser("worker", help="retry bookings Clinicea has not confirmed")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.set_defaults(run=cmd_worker)

    remind = sub.add_parser("remind", help="plan and send a day's appointment reminders")
    remind.add_argument("--day", help="YYYY-MM-DD, 'today' or 'tomorrow' (default: the "
                        "clinic's next run: today + [reminders] days_ahead)")
    remind.add_argument("--dry-run", action="store_true",
                        help="print who would be reminded and the texts; write and send nothing")
    remind.set_defaults(run=cmd_remind)

    sandbox = sub.add_parser("sandbox", help="the stand-in Clinicea on its own")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8081)
    sandbox.add_argument("--faults", help="fault spec, e.g. latency=150:50,fail=503:2:book")
    sandbox.set_defaults(run=cmd_sandbox)

    check = sub.add_parser("check", help="validate config, log in to Clinicea, find a number")
    check.add_argument("--number", default=DEMO_CALLERS["known"], help="a test mobile number")
    check.set_defaults(run=cmd_check)

    purge = sub.add_parser("purge", help="delete call events older than the retention period")
    purge.set_defaults(run=cmd_purge)

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(run=cmd_migrate)

    agent = sub.add_parser("add-agent", help="create a console agent (asks for a password)")
    agent.add_argument("username")
    agent.add_argument("--password-stdin", action="store_true")
    agent.set_defaults(run=cmd_add_agent)

    key = sub.add_parser("add-api-key", help="create an API key (printed once)")
    key.add_argument("name")
    key.set_defaults(run=cmd_add_api_key)

    remove = sub.add_parser("remove-agent", help="delete a console agent; its sessions end")
    remove.add_argument("username")
    remove.set_defaults(run=cmd_remove_agent)

    revoke = sub.add_parser("revoke-api-key", help="delete the API key(s) of that name")
    revoke.add_argument("name")
    revoke.set_defaults(run=cmd_revoke_api_key)
    return p


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything in one process: sandbox, app (in-process) and the softphone."""
    import dataclasses

    import httpx

    from ivr import softphone
    from ivr.app import create_app
    from ivr.runtime import build_runtime
    from ivr.sandbox.launch import start_sandbox
    from ivr.simulator import TwilioSimulator

    settings = Settings.from_env()
    if not settings.demo:
        print("ivr demo runs on the sandbox: unset CLINICEA_BASE_URL", file=sys.stderr)
        return 2
    if args.language:
        clinic = dataclasses.replace(settings.clinic, language=args.language)
        settings = dataclasses.replace(settings, clinic=clinic)
    if not args.logs:
        settings = dataclasses.replace(settings, log_level="WARNING")
    if args.reminder:
        return _demo_reminder(settings)
    if settings.database_url == "sqlite:///ivr.db":
        settings = dataclasses.replace(settings, database_url="sqlite:///ivr-demo.db")
    logs.configure(settings.log_level)
    rt = build_runtime(settings, sandbox=start_sandbox(settings))
    rt.store.migrate()
    app = create_app(rt)
    sandbox = rt.sandbox.state if rt.sandbox else None
    before = {a["ID"] for a in sandbox.calendar()} if sandbox else set()
    caller = DEMO_CALLERS.get(args.caller, args.caller)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://ivr.demo") as http:
        phone = TwilioSimulator("http://ivr.demo", settings.twilio_auth_token, http=http)
        softphone.run(phone, caller)
    if sandbox is not None:
        new = [a for a in sandbox.calendar() if a["ID"] not in before]
        print("\nBooked in the sandbox Clinicea during this call:" if new else
              "\nNothing was booked in the sandbox Clinicea.")
        for a in new:
            print(f"  {a['StartDateTime'].replace('T', ' ')}  {a['StaffTitle']} "
                  f"{a['StaffFirstName']} {a['StaffLastName']}  ({a['ClinicName']})  "
                  f"appointment {a['ID']}")
    pending = rt.store.bookings(statuses=("pending", "retrying", "booking"))
    if pending:
        print(f"{len(pending)} booking(s) wait in the outbox for Clinicea (run `ivr worker`).")
    rt.close()
    return 0


def _demo_reminder(settings: Settings) -> int:
    """`ivr demo --reminder`: the clinic calls Bilal (you) with tomorrow's reminder."""
    import dataclasses
    import tempfile

    import httpx

    from ivr.app import create_app
    from ivr.demo_reminder import book_bilal, take_reminder_call, with_reminders
    from ivr.runtime import build_runtime
    from ivr.sandbox.launch import start_sandbox
    from ivr.sandbox.seed import next_open_day
    from ivr.simulator import TwilioSimulator

    settings = with_reminders(settings)
    with tempfile.TemporaryDirectory(prefix="ivr-reminder-demo-") as tmp:
        if settings.database_url == "sqlite:///ivr.db":
            # A fresh store each time: a reminder answered in an earlier demo stays answered.
            settings = dataclasses.replace(settings, database_url=f"sqlite:///{tmp}/ivr.db")
        logs.configure(settings.log_level)
        rt = build_runtime(settings, sandbox=start_sandbox(settings))
        try:
            rt.store.migrate()
            app = create_app(rt)
            day = next_open_day(rt.clock.now().date())
            start = book_bilal(rt, day)
            print(f"The sandbox Clinicea has Bilal Ahmed booked with Dr. Farooq on "
                  f"{start:%A %d %B at %H:%M}.")
            with httpx.Client(transport=httpx.WSGITransport(app=app),
                              base_url="http://ivr.demo") as http:
                phone = TwilioSimulator("http://ivr.demo", settings.twilio_auth_token,
                                        http=http, to=_clinic_number(settings))
                take_reminder_call(rt, phone, day=day)
        finally:
            rt.close()
    return 0


def _clinic_number(settings: Settings) -> str:
    """The number reminder calls come from in the demo (the clinic's, else its desk's)."""
    reminders = settings.clinic.reminders
    if reminders is not None and reminders.from_number:
        return reminders.from_number
    return settings.clinic.transfer_number


def cmd_call(args: argparse.Namespace) -> int:
    """The softphone against any running server, signing as Twilio does."""
    import httpx

    from ivr import softphone
    from ivr.simulator import TwilioSimulator

    settings = Settings.from_env()
    caller = DEMO_CALLERS.get(args.caller, args.caller)
    with httpx.Client(base_url=args.url, timeout=15.0) as http:
        phone = TwilioSimulator(args.url, settings.twilio_auth_token, http=http)
        softphone.run(phone, caller)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The web app under gunicorn, the booking worker in its own process (ivr.serve)."""
    from ivr.serve import serve

    return serve(args.host, args.port, booking_worker=not args.no_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    """Retry bookings until Clinicea confirms them (or they fail for agents to handle)."""
    import os

    from ivr.metricsdir import ensure_dir

    settings = Settings.from_env()
    # Before prometheus_client is imported (by ivr.runtime), which reads it then: this
    # process's Clinicea requests are then in the web server's /metrics (ivr/ops.py).
    ensure_dir(settings.metrics_path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = settings.metrics_path
    from ivr.runtime import build_runtime
    from ivr.sandbox.launch import demo_sandbox
    from ivr.worker import build_worker, run_until_stopped

    logs.configure(settings.log_level)
    # The runtime alone, no web app. In demo mode its own sandbox: `ivr serve` shares one.
    rt = build_runtime(settings, sandbox=demo_sandbox(settings))
    try:
        rt.store.migrate()
        if args.once:
            done = build_worker(rt).run_once()
            print(f"processed {done} booking(s)")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        log.info("booking worker running; Ctrl-C to stop")
        run_until_stopped(rt, stop)
        return 0
    finally:
        rt.close()


def cmd_remind(args: argparse.Namespace) -> int:
    """Plan a day's reminders and send what is due now (docs/reminders.md). Exit 0 when done,
    2 on a configuration error, 1 when Clinicea could not be read (nothing was planned)."""
    import socket
    from datetime import date

    from ivr.clinicea import CliniceaError
    from ivr.reminders import run_for
    from ivr.runtime import build_runtime
    from ivr.sandbox.launch import demo_sandbox

    # A bad --day is refused before anything is built: no database file, no migration.
    raw = (args.day or "").strip().lower()
    try:
        given = None if raw in ("", "today", "tomorrow") else date.fromisoformat(raw)
    except ValueError:
        print(f"--day: {args.day!r} is not YYYY-MM-DD, today or tomorrow", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    if settings.clinic.reminders is None:
        raise ConfigError("reminders: the clinic file has no [reminders] table")
    logs.configure(settings.log_level)
    rt = build_runtime(settings, sandbox=demo_sandbox(settings))
    try:
        rt.store.migrate()
        run = run_for(rt, f"{socket.gethostname()}-remind")
        assert run is not None
        today = rt.clock.now().date()  # "today" is the clinic's, known once the clock is built
        day = (today if raw == "today" else today + timedelta(days=1) if raw == "tomorrow"
               else given)
        target = run.target_day(day)
        if not args.dry_run:
            run.require_sending()
        try:
            plan = run.plan(target)
        except CliniceaError as exc:
            print(f"clinicea: {_explain(exc)}; nothing was planned, run it again",
                  file=sys.stderr)
            return 1
        if args.dry_run:
            print("\n".join(run.describe(plan)))
            print("dry run: nothing written, nothing sent")
            return 0
        written = run.write(plan)
        sent = run.send_pass()
        print(f"reminders of {target.isoformat()}: {len(plan.reminders)} patient(s), "
              f"{written} newly planned, {len(plan.skipped)} appointment(s) skipped")
        print(f"sent: {sent}")
        if rt.services.sms is None:
            print("note: Twilio is not configured (TWILIO_ACCOUNT_SID): nothing was sent; "
                  "the booking worker sends them once it is")
        return 0
    finally:
        rt.close()


def cmd_sandbox(args: argparse.Namespace) -> int:
    """The stand-in Clinicea on its own port, for curl and manual testing."""
    from ivr.sandbox import run_sandbox

    try:
        run_sandbox(args.host, args.port, faults_spec=args.faults)
    except ValueError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the configuration, log in to Clinicea and search a test number."""
    from ivr.clinicea import CliniceaClient, CliniceaError
    from ivr.phone import parse_phone
    from ivr.sandbox import EmbeddedSandbox, SandboxState

    settings = Settings.from_env()
    print(f"configuration: ok ({settings.clinic.name}, {len(settings.clinic.doctors)} doctors)")
    problems = 0
    demo_values = settings.demo_credentials_in_use()
    if demo_values:
        label = "note" if settings.demo else "PROBLEM"
        problems += 0 if settings.demo else 1
        print(f"{label}: running on demo credentials: {', '.join(demo_values)}")
    sandbox = None
    base_url = settings.clinicea_base_url
    if base_url is None:
        from ivr.clock import SystemClock

        sandbox = EmbeddedSandbox(SandboxState(SystemClock(settings.clinic.timezone)))
        base_url = sandbox.start()
        print(f"clinicea: the embedded sandbox ({base_url})")
    phone = parse_phone(args.number, settings.clinic.default_region)
    if phone is None:
        print(f"PROBLEM: {args.number!r} is not a phone number in region "
              f"{settings.clinic.default_region}")
        return 1
    client = CliniceaClient.from_settings(settings, base_url=base_url)
    try:
        patients = client.search_patients(phone)
        print(f"clinicea: logged in; {phone.masked} matches {len(patients)} patient(s)")
    except CliniceaError as exc:
        problems += 1
        print(f"PROBLEM: clinicea: {_explain(exc)}")
    finally:
        client.close()
        if sandbox is not None:
            sandbox.stop()
    print("all good" if not problems else f"{problems} problem(s)")
    return 1 if problems else 0


def _explain(exc: Exception) -> str:
    from ivr.clinicea import CliniceaAuthError, CliniceaRejected, CliniceaUnavailable

    if isinstance(exc, CliniceaAuthError):
        return ("the API key, username or password was refused; check CLINICEA_API_KEY, "
                "CLINICEA_USERNAME and CLINICEA_PASSWORD")
    if isinstance(exc, CliniceaUnavailable):
        return f"not reachable or not answering ({exc}); check CLINICEA_BASE_URL and the network"
    if isinstance(exc, CliniceaRejected):
        return f"the request was refused: {exc.message}"
    return str(exc)


def cmd_purge(args: argparse.Namespace) -> int:
    """Delete call events past the retention period; calls and bookings stay."""
    from ivr.store import Store

    settings = Settings.from_env()
    store = Store(settings.database_url)
    store.migrate()
    days = settings.clinic.event_retention_days
    removed = store.purge_events(timedelta(days=days))
    print(f"removed {removed} call event(s) older than {days} days")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the schema (the servers' launchers also do this at start-up)."""
    from ivr.store import Store

    store = Store(Settings.from_env().database_url)
    version = store.migrate()
    print(f"schema at version {version}")
    return 0


def cmd_add_agent(args: argparse.Namespace) -> int:
    """Create a console agent; the password is asked for, never taken from the command line."""
    from ivr.accounts import create_agent
    from ivr.store import Store

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            print("the passwords differ", file=sys.stderr)
            return 2
    if len(password) < 10:
        print("use at least 10 characters", file=sys.stderr)
        return 2
    store = Store(Settings.from_env().database_url)
    store.migrate()
    create_agent(store, args.username, password)
    print(f"agent {args.username!r} created")
    return 0


def cmd_add_api_key(args: argparse.Namespace) -> int:
    """Create an API key for call-centre software; it is shown once and stored hashed."""
    from ivr.accounts import create_api_key
    from ivr.store import Store

    store = Store(Settings.from_env().database_url)
    store.migrate()
    try:
        key = create_api_key(store, args.name)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"API key for {args.name!r} (shown once, store it safely):\n{key}")
    return 0


def cmd_remove_agent(args: argparse.Namespace) -> int:
    """Delete a console agent: the next request of any of its sessions is signed out."""
    from ivr.store import Store

    store = Store(Settings.from_env().database_url)
    store.migrate()
    if not store.remove_agent(args.username.strip()):
        print(f"no agent {args.username!r}", file=sys.stderr)
        return 1
    print(f"agent {args.username!r} removed; its sessions have ended")
    return 0


def cmd_revoke_api_key(args: argparse.Namespace) -> int:
    """Delete every API key of that name: requests with it are answered 401 from now on."""
    from ivr.store import Store

    store = Store(Settings.from_env().database_url)
    store.migrate()
    removed = store.revoke_api_keys(args.name.strip())
    if not removed:
        print(f"no API key named {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked {removed} API key(s) named {args.name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
