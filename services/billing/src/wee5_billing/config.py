"""Settings of the billing service, from `WEE5_*` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

from wee5_kit.settings import KitSettings

STRIPE_API_BASE = "https://api.stripe.com"


class BillingSettings(KitSettings):
    # Stripe's secret API key (`sk_live_…`/`sk_test_…`). Unset: checkout and the portal answer
    # "Stripe is not configured" and every community stays on the plan it has (free by default).
    stripe_secret_key: SecretStr | None = None
    # The signing secret of the webhook endpoint (`whsec_…`); Stripe webhooks are refused
    # until it is set.
    stripe_webhook_secret: SecretStr | None = None
    # Where the Stripe SDK sends API calls (its `api` base address); tests point it at a local
    # server speaking Stripe's API.
    stripe_api_base: str = STRIPE_API_BASE
    # Timeout of one Stripe API call, and how often the SDK retries a failed one (with
    # backoff, on network errors, 409 and 5xx; every write carries an idempotency key).
    stripe_timeout_seconds: float = Field(default=10.0, gt=0)
    stripe_max_network_retries: int = Field(default=2, ge=0, le=5)

    # Stripe price ids (`price_…`) of each plan and interval; a pair left unset cannot be
    # bought (checkout answers 409 naming it).
    stripe_price_premium_monthly: str | None = None
    stripe_price_premium_yearly: str | None = None
    stripe_price_enterprise_monthly: str | None = None
    stripe_price_enterprise_yearly: str | None = None

    # A past-due subscription keeps its paid features this many days after its payment
    # failed; the daily billing checks then drop the community to free.
    billing_grace_days: int = Field(default=7, ge=0, le=90)

    def stripe_price(self, plan: str, interval: str) -> str | None:
        """The Stripe price id of `plan` billed every `interval` (monthly|yearly), if set."""
        price: str | None = getattr(self, f"stripe_price_{plan}_{interval}", None)
        return price or None
