from wee5_kit.service import main
from wee5_resources.config import ResourcesSettings
from wee5_resources.server import build

main("resources", ResourcesSettings(), build)
