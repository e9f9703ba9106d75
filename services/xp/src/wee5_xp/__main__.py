import wee5_kit.lean  # noqa: F401  (before anything that imports nats-py: see it)
from wee5_kit.service import main
from wee5_xp.config import XpSettings
from wee5_xp.server import build

main("xp", XpSettings(), build)
