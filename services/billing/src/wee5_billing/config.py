"""Settings of the billing service, from `WEE5_*` environment variables."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

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

    # Trying paid features locally: every community has at least this plan (its own plan
    # when dearer), without Stripe or a platform admin. Refused at startup in a production-like
    # environment (WEE5_ENVIRONMENT) and with a live Stripe key.
    dev_plan: Literal["premium", "enterprise"] | None = None

    @field_validator("dev_plan", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _dev_plan_only_locally(self) -> Self:
        live_stripe = self.stripe_secret_key is not None and (
            self.stripe_secret_key.get_secret_value().startswith("sk_live_")
        )
        if self.dev_plan and (self.production_like() or live_stripe):
            where = "a live Stripe key" if live_stripe else f"WEE5_ENVIRONMENT={self.environment}"
            raise ValueError(
                f"WEE5_DEV_PLAN={self.dev_plan} gives every community the {self.dev_plan} plan "
                f"for free and is for local runs only; it is refused with {where}: unset it"
            )
        return self

    def stripe_price(self, plan: str, interval: str) -> str | None:
        """The Stripe price id of `plan` billed every `interval` (monthly|yearly), if set."""
        price: str | None = getattr(self, f"stripe_price_{plan}_{interval}", None)
        return price or None
