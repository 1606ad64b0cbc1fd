"""`import keelml.monitor` stays light: scipy, scikit-learn and river load only when a test runs."""

from __future__ import annotations

import subprocess
import sys


def test_monitor_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, keelml.monitor, keelml.testing.detectors; "
        "print(','.join(m for m in ('sklearn', 'scipy', 'river') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import keelml.monitor pulled in {out.stdout.strip()}"


def test_keelml_registers_ws_monitor_without_heavy_libraries() -> None:
    code = (
        "import sys, keelml; from keelml.core.workspace import _ACCESSORS; "
        "print('monitor' in _ACCESSORS, [m for m in ('sklearn', 'scipy', 'river', 'fairlearn', 'plotly') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True []"
