import wee5_kit.lean  # noqa: F401  (before anything that imports nats-py: see it)
from wee5_kit.service import main
from wee5_resources.config import ResourcesSettings
from wee5_resources.server import build

main("resources", ResourcesSettings(), build)
