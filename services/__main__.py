"""`python -m services`: runs the service named by $SERVICE (reservation, stock or
alert), so one image recipe (services/Dockerfile) serves all three."""

import os
import runpy
import sys

from services.catalogue import NAMES as SERVICES

name = os.environ.get("SERVICE", "")
if name not in SERVICES:
    sys.exit(f"SERVICE must be one of {', '.join(SERVICES)}, got {name!r}")
runpy.run_module(f"services.{name}", run_name="__main__", alter_sys=True)
