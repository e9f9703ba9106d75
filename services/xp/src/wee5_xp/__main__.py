from wee5_kit.service import main
from wee5_xp.config import XpSettings
from wee5_xp.server import build

main("xp", XpSettings(), build)
