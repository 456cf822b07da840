"""Lets the tests import the plugin from src/ before it is installed (e.g. in this repo's
test run, where the template is not a workspace member). Installed, it changes nothing."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
