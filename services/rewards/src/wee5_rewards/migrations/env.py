from wee5_kit.migrations import run_env
from wee5_rewards.models import Base

run_env(Base.metadata)
