"""One settings object, read from the environment. Unset means embedded.

Production is the same code pointed elsewhere: set TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, DATABASE_URL and provider credentials.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Temporal. Unset address means: start the embedded dev server.
    temporal_address: str | None = Field(default=None, validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    temporal_tls: bool = Field(default=False, validation_alias="TEMPORAL_TLS")
    temporal_tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    temporal_api_key: SecretStr | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")

    # PostgreSQL. Unset means: embedded PostgreSQL under data_dir.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")

    # Where embedded services keep their state (Temporal's database file, PGDATA).
    data_dir: Path = Field(default=Path(".arrears"), validation_alias="ARREARS_DATA_DIR")

    # Dev stack ports.
    temporal_port: int = Field(default=7233, validation_alias="ARREARS_TEMPORAL_PORT")
    temporal_ui_port: int = Field(default=8233, validation_alias="ARREARS_TEMPORAL_UI_PORT")
    api_host: str = Field(default="127.0.0.1", validation_alias="ARREARS_API_HOST")
    api_port: int = Field(default=8000, validation_alias="ARREARS_API_PORT")
    # Where operators open the Temporal Web UI (links from the portfolio page); unset: the
    # embedded dev server's UI when TEMPORAL_ADDRESS is unset, no links otherwise.
    temporal_ui_url: str | None = Field(default=None, validation_alias="ARREARS_TEMPORAL_UI_URL")

    # Demo: one collection "day" lasts this many real seconds (configuration, not code).
    demo_seconds_per_day: float = Field(default=2.0, validation_alias="ARREARS_DEMO_SECONDS_PER_DAY")
    demo_accounts: int = Field(default=36, validation_alias="ARREARS_DEMO_ACCOUNTS")

    # Providers. No credentials means the outbox provider (PostgreSQL rows + a log line).
    twilio_account_sid: str | None = Field(default=None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(default=None, validation_alias="TWILIO_AUTH_TOKEN")
    twilio_from_number: str | None = Field(default=None, validation_alias="TWILIO_FROM_NUMBER")
    twilio_base_url: str | None = Field(default=None, validation_alias="TWILIO_BASE_URL")
    sendgrid_api_key: SecretStr | None = Field(default=None, validation_alias="SENDGRID_API_KEY")
    sendgrid_from_email: str = Field(default="collections@example.com", validation_alias="SENDGRID_FROM_EMAIL")
    sendgrid_base_url: str | None = Field(default=None, validation_alias="SENDGRID_BASE_URL")
    sendgrid_webhook_public_key: str | None = Field(default=None, validation_alias="SENDGRID_WEBHOOK_PUBLIC_KEY")
    telematics_base_url: str | None = Field(default=None, validation_alias="TELEMATICS_BASE_URL")
    telematics_api_key: SecretStr | None = Field(default=None, validation_alias="TELEMATICS_API_KEY")
    placement_base_url: str | None = Field(default=None, validation_alias="PLACEMENT_BASE_URL")
    placement_api_key: SecretStr | None = Field(default=None, validation_alias="PLACEMENT_API_KEY")
    # The playbooks' hand-offs (docs/policies.md, "Actions"). Unset base URL: the outbox.
    # POSTAL_API_KEY also verifies the carrier's signed receipts (/webhooks/postal).
    postal_base_url: str | None = Field(default=None, validation_alias="POSTAL_BASE_URL")
    postal_api_key: SecretStr | None = Field(default=None, validation_alias="POSTAL_API_KEY")
    erp_base_url: str | None = Field(default=None, validation_alias="ERP_BASE_URL")
    erp_api_key: SecretStr | None = Field(default=None, validation_alias="ERP_API_KEY")
    credit_bureau_base_url: str | None = Field(default=None, validation_alias="CREDIT_BUREAU_BASE_URL")
    credit_bureau_api_key: SecretStr | None = Field(default=None, validation_alias="CREDIT_BUREAU_API_KEY")
    recovery_base_url: str | None = Field(default=None, validation_alias="RECOVERY_BASE_URL")
    recovery_api_key: SecretStr | None = Field(default=None, validation_alias="RECOVERY_API_KEY")
    # Money owed back to a debtor (an overpayment, a payment to a closed account): the portfolio page
    # flags a refund task open longer than this as overdue.
    refund_due_days: int = Field(default=30, ge=1, le=365, validation_alias="ARREARS_REFUND_DUE_DAYS")
    company_name: str = Field(default="Arrears Finance", validation_alias="ARREARS_COMPANY_NAME")
    contact_phone: str = Field(default="+86 400 000 0000", validation_alias="ARREARS_CONTACT_PHONE")
    public_base_url: str = Field(default="http://127.0.0.1:8000", validation_alias="ARREARS_PUBLIC_BASE_URL")
    # The ingress as litigation counsel reaches it (scheme, host, optional path prefix): a referral's
    # evidence bundle is then referenced as <this>/accounts/{id}/evidence-bundles/{name}, served from
    # PostgreSQL by any ingress. Unset: the file URI of a copy on the worker's disk, for a person to forward.
    ingress_public_url: str | None = Field(default=None, max_length=500, validation_alias="ARREARS_INGRESS_PUBLIC_URL")
    # With no telematics API configured, the outbox's simulated device confirms a lock or unlock this
    # many real seconds after the command (negative: never; a person carries the command out).
    outbox_telematics_confirm_seconds: float = Field(default=5.0,
                                                     validation_alias="ARREARS_OUTBOX_TELEMATICS_CONFIRM_SECONDS")

    # Security (docs/security.md). Payload encryption at rest in Temporal: on unless switched off.
    payload_encryption: bool = Field(default=True, validation_alias="ARREARS_PAYLOAD_ENCRYPTION")
    # AES-256 keys as `id:base64key` entries separated by commas or new lines; the first encrypts,
    # every one decrypts (rotation: put a new key first, keep the old ones). Unset: the file below,
    # else a development key generated into <data_dir>/secrets/codec-keys on first use.
    codec_keys: SecretStr | None = Field(default=None, validation_alias="ARREARS_CODEC_KEYS")
    codec_keys_file: Path | None = Field(default=None, validation_alias="ARREARS_CODEC_KEYS_FILE")
    # Browser origins allowed to call the codec server (the Temporal Web UI); comma separated.
    # Unset: the embedded dev server's UI (localhost and 127.0.0.1 on ARREARS_TEMPORAL_UI_PORT).
    codec_cors_origins: str | None = Field(default=None, validation_alias="ARREARS_CODEC_CORS_ORIGINS")
    codec_port: int = Field(default=8081, validation_alias="ARREARS_CODEC_PORT")
    # Keyed hash of API keys (HMAC-SHA256). Unset: generated into <data_dir>/secrets/api-key-pepper.
    api_key_pepper: SecretStr | None = Field(default=None, validation_alias="ARREARS_API_KEY_PEPPER")
    # How ingress callers authenticate: `api_key`, `oidc`, or both (comma separated).
    auth_methods: str = Field(default="api_key", validation_alias="ARREARS_AUTH_METHODS")
    oidc_issuer: str | None = Field(default=None, validation_alias="ARREARS_OIDC_ISSUER")
    oidc_audience: str | None = Field(default=None, validation_alias="ARREARS_OIDC_AUDIENCE")
    # Unset: discovered from <issuer>/.well-known/openid-configuration.
    oidc_jwks_url: str | None = Field(default=None, validation_alias="ARREARS_OIDC_JWKS_URL")
    oidc_name_claim: str = Field(default="preferred_username", validation_alias="ARREARS_OIDC_NAME_CLAIM")
    oidc_roles_claim: str = Field(default="roles", validation_alias="ARREARS_OIDC_ROLES_CLAIM")
    oidc_algorithms: str = Field(default="RS256,ES256", validation_alias="ARREARS_OIDC_ALGORITHMS")
    # Who the `arrears` CLI acts as (it talks to Temporal directly); default: the OS login name.
    cli_operator: str | None = Field(default=None, validation_alias="ARREARS_OPERATOR")

    # Per-provider activity rate limits (activities per second across the task queue).
    rate_limit_sms: float = Field(default=50.0, validation_alias="ARREARS_RATE_LIMIT_SMS")
    rate_limit_email: float = Field(default=100.0, validation_alias="ARREARS_RATE_LIMIT_EMAIL")
    rate_limit_voice: float = Field(default=10.0, validation_alias="ARREARS_RATE_LIMIT_VOICE")
    rate_limit_telematics: float = Field(default=5.0, validation_alias="ARREARS_RATE_LIMIT_TELEMATICS")
    rate_limit_placement: float = Field(default=5.0, validation_alias="ARREARS_RATE_LIMIT_PLACEMENT")

    # Worker tuning (docs/scaling.md). Python runs workflow code under one GIL: more concurrent
    # workflow tasks than a few only makes each task slower (and a replay after a restart can then
    # exceed the workflow task timeout), so the default is small; scale out with processes.
    # `arrears worker` processes on this host: 0 (default) is one per usable core (CPU affinity and a
    # cgroup CPU quota counted), because one process cannot use more than about one core for
    # workflow code. The first runs every role, the others only the workflow worker.
    worker_processes: int = Field(default=0, ge=0, le=64, validation_alias="ARREARS_WORKER_PROCESSES")
    workflow_cache: int = Field(default=2000, ge=0, validation_alias="ARREARS_WORKFLOW_CACHE")
    max_concurrent_workflow_tasks: int = Field(default=8, ge=1, validation_alias="ARREARS_MAX_CONCURRENT_WORKFLOW_TASKS")
    workflow_pollers: int = Field(default=4, ge=1, validation_alias="ARREARS_WORKFLOW_POLLERS")
    # Per activity queue (one activity worker per queue).
    max_concurrent_activities: int = Field(default=40, ge=1, validation_alias="ARREARS_MAX_CONCURRENT_ACTIVITIES")
    activity_pollers: int = Field(default=2, ge=1, validation_alias="ARREARS_ACTIVITY_POLLERS")
    # Python's garbage collector in `arrears worker`: the youngest generation is collected after this
    # many new container objects (Python's default: 700), and what the worker imported before it
    # runs is frozen out of every collection. A replay allocates heavily and the cache keeps 1,000s
    # of accounts alive, so the default collected them over and over: a tenth of a restarting
    # worker's CPU (docs/scaling.md). 0 leaves Python's defaults and freezes nothing.
    worker_gc_threshold: int = Field(default=50_000, ge=0, le=10_000_000,
                                     validation_alias="ARREARS_WORKER_GC_THRESHOLD")
    # How workflow code is isolated. "off" (default): no sandbox. "passthrough": the SDK's sandbox
    # with the project's workflow modules imported once per process; its call restrictions do not
    # apply to passed-through modules (tests/test_workflow_isolation.py shows it), so it guards nothing
    # more than "off" and costs every new workflow instance the sandbox's set-up (a restart of
    # 1,000 accounts: worker CPU 13.1-13.7 s off, 15.0-17.4 s passthrough, docs/scaling.md). The guard
    # is the test suite, whose workers run the "full" sandbox, and the golden replays under all
    # three. "full": the SDK's sandbox, re-importing the workflow modules for every instance.
    workflow_sandbox: Literal["full", "passthrough", "off"] = Field(default="off",
                                                                    validation_alias="ARREARS_WORKFLOW_SANDBOX")
    # The weekly receivables ageing report (workflows/ageing.py, infra/schedules.py): a cron
    # expression read in `ageing_timezone` (Monday 07:00 by default); empty disables the schedule.
    ageing_schedule: str = Field(default="0 7 * * 1", max_length=100, validation_alias="ARREARS_AGEING_SCHEDULE")
    ageing_timezone: str = Field(default="UTC", max_length=64, validation_alias="ARREARS_AGEING_TIMEZONE")
    # The ledger sweep (workflows/ledger_sweep.py): a cron expression in UTC, hourly by default; it
    # writes the ledger records of account runs stopped without closing. Empty disables it.
    ledger_sweep_schedule: str = Field(default="17 * * * *", max_length=100,
                                       validation_alias="ARREARS_LEDGER_SWEEP_SCHEDULE")
    # The workers' build ID, recorded with every task they complete: a deploy sets its release
    # (image tag, commit). Unset: a hash of the code that decides commands (workers/main.py).
    build_id: str | None = Field(default=None, min_length=1, max_length=255, validation_alias="ARREARS_BUILD_ID")
    # Workflow task timeout given when an account is started (Temporal's default is 10 s).
    workflow_task_timeout: float = Field(default=10.0, gt=0, le=120, validation_alias="ARREARS_WORKFLOW_TASK_TIMEOUT")
    # How long a task waits for the worker that has the workflow cached before any worker takes it:
    # after a crash, this is how long an account's next task can wait for the dead worker.
    sticky_schedule_to_start: float = Field(default=3.0, gt=0, validation_alias="ARREARS_STICKY_SCHEDULE_TO_START")

    # PostgreSQL connections per activity queue. Ledger writes hold a connection for their whole
    # (short) transaction; provider activities only for the claim and the outcome, never across
    # the provider call, so they need few. Total per worker process = ledger + 6 x provider.
    db_pool_ledger: int = Field(default=8, ge=1, validation_alias="ARREARS_DB_POOL_LEDGER")
    db_pool_provider: int = Field(default=2, ge=1, validation_alias="ARREARS_DB_POOL_PROVIDER")
    db_command_timeout: float = Field(default=30.0, gt=0, validation_alias="ARREARS_DB_COMMAND_TIMEOUT")

    # Prometheus: the SDK runtime's metrics of `arrears worker` on this port (unset: none).
    # The ingress serves its own on GET /metrics.
    worker_metrics_port: int | None = Field(default=None, validation_alias="ARREARS_WORKER_METRICS_PORT")
    worker_metrics_host: str = Field(default="127.0.0.1", validation_alias="ARREARS_WORKER_METRICS_HOST")

    @field_validator("ingress_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = urlsplit(value.strip())
        if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
            raise ValueError("ARREARS_INGRESS_PUBLIC_URL: an http(s) URL without query or fragment, "
                             f"e.g. https://arrears.example.com, not {value!r}")
        return value.strip().rstrip("/")


@lru_cache
def get_settings() -> Settings:
    return Settings()
