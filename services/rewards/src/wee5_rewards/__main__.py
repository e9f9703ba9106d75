import wee5_kit.lean  # noqa: F401  (before anything that imports nats-py: see it)
from wee5_kit.service import main
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build

main("rewards", RewardsSettings(), build)
