from wee5_billing.models import Base
from wee5_kit.migrations import run_env

run_env(Base.metadata)
