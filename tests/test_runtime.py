"""The composition root: the booking worker runs without a web framework; building a runtime
starts nothing it was not given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ivr.clock import FixedClock
from ivr.config import ConfigError, Settings
from ivr.runtime import build_runtime
from ivr.sandbox import EmbeddedSandbox, SandboxState
from tests.calls import MONDAY_10AM
from tests.test_process_model import _clinicea

ROOT = Path(__file__).resolve().parents[1]

_WORKER = """
import json, sys
from ivr.cli import main
rc = main(["worker", "--once"])
web = sorted(m for m in sys.modules if m.split(".")[0] in ("flask", "werkzeug", "jinja2"))
print(json.dumps({"rc": rc, "web": web}))
"""


def test_the_booking_worker_imports_no_web_framework(tmp_path: Path):
    with EmbeddedSandbox(SandboxState(FixedClock(MONDAY_10AM))) as sandbox:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("CLINICEA_", "TWILIO_", "IVR_", "PROMETHEUS_"))}
        env = {**clean, "PYTHONPATH": str(ROOT), **_clinicea(sandbox.base_url),
               "IVR_DATABASE_URL": f"sqlite:///{tmp_path / 'ivr.db'}",
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
        done = subprocess.run([sys.executable, "-c", _WORKER], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "web": []}
    assert "processed 0 booking(s)" in done.stdout


def test_a_runtime_needs_a_clinicea():
    settings = Settings.for_tests()  # demo mode: no CLINICEA_BASE_URL, and no sandbox given
    try:
        build_runtime(settings)
    except ConfigError as exc:
        assert str(exc).startswith("CLINICEA_BASE_URL: ")
    else:
        raise AssertionError("a runtime without any Clinicea was built")
