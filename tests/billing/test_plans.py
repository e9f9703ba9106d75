"""The plan table: the one place features are assigned to plans."""

from __future__ import annotations

from itertools import pairwise

from wee5_billing.models import PLAN_NAMES
from wee5_billing.plans import PLANS, PLANS_BY_KEY, cheapest_plan_with


def test_plans_unlock_the_features_of_their_tier() -> None:
    assert {plan.key: plan.features for plan in PLANS} == {
        "free": (),
        "premium": ("custom_xp_rates", "analytics", "reward_rules", "announcement_templates"),
        "enterprise": (
            "custom_xp_rates",
            "analytics",
            "reward_rules",
            "announcement_templates",
            "badges",
            "multi_community",
            "cross_community_analytics",
        ),
    }


def test_each_plan_unlocks_everything_the_cheaper_ones_do() -> None:
    for cheaper, dearer in pairwise(PLANS):
        assert set(cheaper.features) < set(dearer.features), (cheaper.key, dearer.key)
    assert set(PLANS_BY_KEY["premium"].features) <= set(PLANS_BY_KEY["enterprise"].features)


def test_cheapest_plan_with_a_feature_is_the_first_that_unlocks_it() -> None:
    assert cheapest_plan_with("analytics") == PLANS_BY_KEY["premium"]
    assert cheapest_plan_with("reward_rules") == PLANS_BY_KEY["premium"]
    assert cheapest_plan_with("badges") == PLANS_BY_KEY["enterprise"]
    assert cheapest_plan_with("cross_community_analytics") == PLANS_BY_KEY["enterprise"]
    assert cheapest_plan_with("teleportation") is None


def test_the_database_accepts_exactly_the_plans_of_the_table() -> None:
    assert tuple(plan.key for plan in PLANS) == PLAN_NAMES
