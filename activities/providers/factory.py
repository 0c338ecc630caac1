"""Choose provider implementations from configuration: real clients where credentials (or base
URLs) are set, the outbox otherwise. Call from a running event loop (the Twilio client opens an
aiohttp session)."""
from __future__ import annotations

from dataclasses import dataclass

from activities.providers.base import (CreditBureauProvider, ErpProvider, MessageProvider, PlacementProvider,
                                       PostalProvider, RecoveryProvider, TelematicsProvider)
from activities.providers.outbox import (OutboxCreditBureau, OutboxErp, OutboxLog, OutboxMessages, OutboxPlacement,
                                         OutboxPostal, OutboxRecovery, OutboxTelematics)
from infra.settings import Settings


@dataclass
class Providers:
    messages: dict[str, MessageProvider]   # channel -> provider
    telematics: TelematicsProvider
    placement: PlacementProvider
    outbox: OutboxLog
    # The playbooks' hand-offs; outbox defaults so a caller that builds Providers by hand needs none.
    postal: PostalProvider | None = None
    erp: ErpProvider | None = None
    credit_bureau: CreditBureauProvider | None = None
    recovery: RecoveryProvider | None = None

    def __post_init__(self) -> None:
        self.postal = self.postal or OutboxPostal(self.outbox)
        self.erp = self.erp or OutboxErp(self.outbox)
        self.credit_bureau = self.credit_bureau or OutboxCreditBureau(self.outbox)
        self.recovery = self.recovery or OutboxRecovery(self.outbox)

    async def aclose(self) -> None:
        seen: set[int] = set()
        for provider in [*self.messages.values(), self.telematics, self.placement, self.postal, self.erp,
                         self.credit_bureau, self.recovery]:
            if id(provider) not in seen:
                seen.add(id(provider))
                await provider.aclose()


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_providers(settings: Settings) -> Providers:
    outbox = OutboxLog(settings.data_dir / "outbox.log")
    messages: dict[str, MessageProvider] = {
        channel: OutboxMessages(outbox, channel) for channel in ("sms", "email", "voice", "letter")}

    token = _secret(settings.twilio_auth_token)
    if settings.twilio_account_sid and token and settings.twilio_from_number:
        from activities.providers.twilio_client import TwilioSms, TwilioVoice, make_client

        client = make_client(settings.twilio_account_sid, token, settings.twilio_base_url)
        messages["sms"] = TwilioSms(client, settings.twilio_from_number, settings.public_base_url)
        messages["voice"] = TwilioVoice(client, settings.twilio_from_number, settings.public_base_url)

    api_key = _secret(settings.sendgrid_api_key)
    if api_key:
        from activities.providers.sendgrid_client import SendGridEmail

        messages["email"] = SendGridEmail(api_key, settings.sendgrid_from_email,
                                          base_url=settings.sendgrid_base_url)

    telematics: TelematicsProvider = OutboxTelematics(
        outbox, settings.outbox_telematics_confirm_seconds if settings.outbox_telematics_confirm_seconds >= 0 else None)
    if settings.telematics_base_url:
        from activities.providers.telematics_http import HttpTelematics

        telematics = HttpTelematics(settings.telematics_base_url, _secret(settings.telematics_api_key))

    placement: PlacementProvider = OutboxPlacement(outbox)
    if settings.placement_base_url:
        from activities.providers.placement_http import HttpPlacement

        placement = HttpPlacement(settings.placement_base_url, _secret(settings.placement_api_key))

    return Providers(messages, telematics, placement, outbox, **handoff_providers(settings))


def handoff_providers(settings: Settings) -> dict:
    """The HTTP partner for each hand-off whose base URL is set; the others stay on the outbox."""
    from activities.providers import handoffs_http as http

    chosen: dict = {}
    for field, cls, base, key in (
            ("postal", http.HttpPostal, settings.postal_base_url, settings.postal_api_key),
            ("erp", http.HttpErp, settings.erp_base_url, settings.erp_api_key),
            ("credit_bureau", http.HttpCreditBureau, settings.credit_bureau_base_url, settings.credit_bureau_api_key),
            ("recovery", http.HttpRecovery, settings.recovery_base_url, settings.recovery_api_key)):
        if base:
            chosen[field] = cls(base, _secret(key))
    return chosen
