from wee5_benchmarks.config import BenchmarksSettings
from wee5_benchmarks.server import build
from wee5_kit.service import main

main("benchmarks", BenchmarksSettings(), build)
