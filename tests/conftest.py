"""Test-session setup shared by every test directory.

Kept import-light on purpose: Qt must not be imported here, only told (before anything else
imports it) to render offscreen so the suite runs on machines without a display.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
