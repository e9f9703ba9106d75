import wee5_kit.lean  # noqa: F401  (before anything that imports nats-py: see it)
from wee5_benchmarks.config import BenchmarksSettings
from wee5_benchmarks.server import build
from wee5_kit.service import main

main("benchmarks", BenchmarksSettings(), build)
