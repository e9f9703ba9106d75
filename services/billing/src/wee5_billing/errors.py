"""Failures of the billing service that a caller can act on, each with its gRPC status."""

from wee5_kit.communities import COMMUNITY_ID_RULE
from wee5_kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)


class InvalidRequest(InvalidArgument):
    pass


class CommunityRequired(InvalidRequest):
    def __init__(self) -> None:
        super().__init__(f"community_id is required: {COMMUNITY_ID_RULE}")


class UnknownPlan(InvalidRequest):
    def __init__(self) -> None:
        super().__init__("plan must be free, premium or enterprise")


class StripeNotConfigured(Unavailable):
    """Checkout and the portal need Stripe's secret key."""

    # Sent as trailing metadata so the gateway can tell this apart from billing being down.
    reason = "stripe-not-configured"

    def __init__(self) -> None:
        super().__init__("Stripe is not configured: set WEE5_STRIPE_SECRET_KEY")


class StripeUnavailable(Unavailable):
    pass


class StripeRejected(FailedPrecondition):
    """Stripe refused a request (e.g. an unknown price id); its message says why."""


class PriceNotConfigured(FailedPrecondition):
    def __init__(self, plan: str, interval: str) -> None:
        super().__init__(
            f"the {plan} plan is not sold {interval} yet: "
            f"set WEE5_STRIPE_PRICE_{plan.upper()}_{interval.upper()}"
        )


class AlreadySubscribed(FailedPrecondition):
    def __init__(self, plan: str, status: str, holder: str = "community") -> None:
        super().__init__(
            f"this {holder} already has a {plan} subscription ({status}); change or cancel it "
            "in the billing portal"
        )


class NoStripeCustomer(FailedPrecondition):
    def __init__(self) -> None:
        super().__init__("this community has no subscription through Stripe yet")


class NotThePayingOwner(PermissionDenied):
    def __init__(self) -> None:
        super().__init__("only the owner who pays for this community's plan can manage its billing")


class WebhookNotConfigured(Unavailable):
    reason = "stripe-webhook-not-configured"

    def __init__(self) -> None:
        super().__init__("Stripe webhooks are off: set WEE5_STRIPE_WEBHOOK_SECRET")


class WebhookSignatureInvalid(InvalidArgument):
    pass


class WebhookPayloadInvalid(InvalidArgument):
    pass


class GroupNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no such group")


class NotTheGroupOwner(PermissionDenied):
    def __init__(self) -> None:
        super().__init__("only the group's owner can change which communities it holds")


class InWhopCompany(FailedPrecondition):
    def __init__(self, company_id: str) -> None:
        super().__init__(
            f"this community belongs to the Whop company {company_id}; groups are for "
            "communities outside Whop"
        )
