from wee5_gateway.db.models import Base
from wee5_kit.migrations import run_env

run_env(Base.metadata)
