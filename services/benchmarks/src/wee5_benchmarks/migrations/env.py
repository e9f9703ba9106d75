from wee5_benchmarks.models import Base
from wee5_kit.migrations import run_env

run_env(Base.metadata)
