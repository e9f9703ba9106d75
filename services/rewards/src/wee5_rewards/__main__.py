from wee5_kit.service import main
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build

main("rewards", RewardsSettings(), build)
