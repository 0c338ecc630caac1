"""infra/deploy: Docker is not available here, so the compose file, the Prometheus config and the
Helm values are parsed and checked against the code they deploy (services, pinned images, the
settings names the containers set, the ports the metrics are scraped on)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from infra.settings import Settings
from schemas.task_queues import WORKFLOW

DEPLOY = Path(__file__).resolve().parent.parent / "infra" / "deploy"
# The Web UI's switches that hide its Terminate and Reset buttons.
UI_WITHOUT_STOPS = ("TEMPORAL_WORKFLOW_TERMINATE_DISABLED", "TEMPORAL_WORKFLOW_RESET_DISABLED")


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def _settings_names() -> set[str]:
    return {f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}


def test_compose_runs_temporal_on_postgres_with_ui_workers_and_ingress() -> None:
    services = _compose()["services"]
    assert {"postgresql", "temporal", "temporal-ui", "temporal-admin-tools", "arrears-db", "arrears-worker",
            "arrears-ingress", "prometheus"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        assert image and ":" in image and not image.endswith(":latest"), f"{name}: pin the image ({image!r})"
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
    temporal = services["temporal"]["environment"]
    assert temporal["DB"] == "postgres12" and temporal["POSTGRES_SEEDS"] == "postgresql"
    assert int(temporal["NUM_HISTORY_SHARDS"]) >= 4
    dynamic = temporal["DYNAMIC_CONFIG_FILE_PATH"].split("/")[-1]
    assert (DEPLOY / "dynamicconfig" / dynamic).exists()
    assert yaml.safe_load((DEPLOY / "dynamicconfig" / dynamic).read_text())["limit.historyCount.suggestContinueAsNew"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    # Operators close accounts by their updates: the Web UI offers no Terminate or Reset.
    assert {k: services["temporal-ui"]["environment"].get(k) for k in UI_WITHOUT_STOPS} == \
        dict.fromkeys(UI_WITHOUT_STOPS, "true")


def test_arrears_containers_use_real_settings_and_reach_their_services() -> None:
    services = _compose()["services"]
    known = _settings_names()
    for name in ("arrears-worker", "arrears-ingress"):
        service = services[name]
        env = service["environment"]
        for key in env:
            assert key in known, f"{name}: {key} is not a setting in infra/settings.py"
        host, port = env["TEMPORAL_ADDRESS"].split(":")
        assert host in services and port == "7233"
        db_host = re.search(r"@([^:/]+)", env["DATABASE_URL"]).group(1)
        assert db_host in services
        # Every environment value must be accepted by the settings model as the container sets it.
        Settings(**{k: re.sub(r"\$\{[^}:]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()})
    assert services["arrears-worker"]["command"] == ["arrears", "worker"]
    assert services["arrears-ingress"]["command"] == ["arrears", "api"]
    assert services["arrears-worker"]["deploy"]["replicas"] >= 2


def test_prometheus_scrapes_what_the_containers_expose() -> None:
    services = _compose()["services"]
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    worker_port = int(services["arrears-worker"]["environment"]["ARREARS_WORKER_METRICS_PORT"])
    assert jobs["arrears-worker"]["dns_sd_configs"][0]["port"] == worker_port
    assert services["arrears-worker"]["environment"]["ARREARS_WORKER_METRICS_HOST"] == "0.0.0.0"
    ingress_port = services["arrears-ingress"]["environment"]["ARREARS_API_PORT"]
    assert jobs["arrears-ingress"]["static_configs"][0]["targets"] == [f"arrears-ingress:{ingress_port}"]
    assert jobs["temporal"]["static_configs"][0]["targets"] == [
        "temporal:" + services["temporal"]["environment"]["PROMETHEUS_ENDPOINT"].split(":")[1]]


def test_prometheus_alerts_on_the_metrics_the_ledger_sweep_exports() -> None:
    from activities.ledger_recovery import RECORDS_RECOVERED_METRIC, RUNS_NOT_REPLAYING_METRIC

    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    assert prom["rule_files"] == ["alerts.yml"]
    prometheus = _compose()["services"]["prometheus"]
    assert "./alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]   # beside prometheus.yml
    rules = {r["alert"]: r for g in yaml.safe_load((DEPLOY / "alerts.yml").read_text(encoding="utf-8"))["groups"]
             for r in g["rules"]}
    for name, metric in (("ArrearsLedgerRecordsRecovered", RECORDS_RECOVERED_METRIC),
                         ("ArrearsLedgerRunNotReplaying", RUNS_NOT_REPLAYING_METRIC)):
        assert re.fullmatch(rf"increase\({metric}\[\d+h\]\) > 0", rules[name]["expr"]), rules[name]["expr"]
        assert rules[name]["labels"]["severity"] in ("warning", "critical")


def test_dockerfile_builds_the_console_script() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert text.startswith("#") and "FROM python:3.11" in text and "pip install ." in text
    for package in ("activities", "workflows", "workers", "infra", "ingress", "schemas", "domain", "policies"):
        assert f"COPY {package} " in text, package
    assert 'CMD ["arrears", "worker"]' in text


def test_helm_values_for_temporal_on_postgres() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text(encoding="utf-8"))
    persistence = values["server"]["config"]["persistence"]
    for store in ("default", "visibility"):
        assert persistence[store]["driver"] == "sql"
        assert persistence[store]["sql"]["driver"] == "postgres12"
        assert persistence[store]["sql"]["existingSecret"]          # no password in the values file
    assert values["server"]["config"]["numHistoryShards"] in (512, 1024, 2048, 4096)
    for bundled in ("cassandra", "mysql", "postgresql", "elasticsearch", "prometheus", "grafana"):
        assert values[bundled]["enabled"] is False
    assert values["web"]["enabled"] is True
    web_env = {e["name"]: e["value"] for e in values["web"]["additionalEnv"]}
    assert {k: web_env.get(k) for k in UI_WITHOUT_STOPS} == dict.fromkeys(UI_WITHOUT_STOPS, "true")
    partitions = values["server"]["dynamicConfig"]["matching.numTaskqueueReadPartitions"][0]
    assert partitions["constraints"]["taskQueueName"] == WORKFLOW


def test_every_server_we_configure_refuses_payloads_past_the_documented_limit() -> None:
    """Found from outside: thirty signals of 1.9 MB, sent past the ingress, filled a run's history past
    50 MB before its next task and the server terminated it. Compose, Helm and the dev server refuse
    any payload over MAX_PAYLOAD_BYTES, and the product's own largest stays well under it."""
    from infra.devstack import temporal_dev_server_argv
    from infra.settings import Settings
    from schemas.limits import MAX_PAYLOAD_BYTES
    from tests.test_account_size_budget import LARGEST_PAYLOAD

    compose = yaml.safe_load((DEPLOY / "dynamicconfig" / "arrears.yaml").read_text(encoding="utf-8"))
    helm = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text(encoding="utf-8"))["server"]["dynamicConfig"]
    assert compose["limit.blobSize.error"][0]["value"] == helm["limit.blobSize.error"][0]["value"] == MAX_PAYLOAD_BYTES
    argv = temporal_dev_server_argv(Settings())
    assert argv[argv.index("--dynamic-config-value") + 1] == f"limit.blobSize.error={MAX_PAYLOAD_BYTES}"
    assert LARGEST_PAYLOAD * 2 <= MAX_PAYLOAD_BYTES < 2 * 1024 * 1024
