from wee5_billing.config import BillingSettings
from wee5_billing.server import build
from wee5_kit.service import main

main("billing", BillingSettings(), build)
