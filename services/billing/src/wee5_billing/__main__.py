import sys

from pydantic import ValidationError

import wee5_kit.lean  # noqa: F401  (before anything that imports nats-py: see it)
from wee5_billing.config import BillingSettings
from wee5_billing.server import build
from wee5_kit.service import main

try:
    settings = BillingSettings()
except ValidationError as error:
    # One line naming the setting, not a traceback: the process cannot start as configured.
    sys.exit(f"billing: refusing to start: {'; '.join(e['msg'] for e in error.errors())}")
main("billing", settings, build)
