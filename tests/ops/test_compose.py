"""docker-compose.yml agrees with the code: modules, ports and REFDESK_* settings exist."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from services.ingest.settings import IngestSettings
from services.notifier.settings import NotifierSettings
from services.publisher.settings import PublisherSettings
from services.router.settings import RouterSettings
from services.status.settings import StatusSettings
from shared.settings import CommonSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "router": RouterSettings,
    "notifier": NotifierSettings,
    "status": StatusSettings,
    "publisher": PublisherSettings,
    "migrate": CommonSettings,
}
PORT_FIELD = {
    "ingest": "ingest_port",
    "router": "router_port",
    "notifier": "notifier_port",
    "status": "port",
    "publisher": "port",
}


def env_names(model: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (prefix + field, or its alias)."""
    prefix = str(model.model_config.get("env_prefix") or "")
    names = set()
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


def refdesk_services() -> list[str]:
    return [name for name, svc in SERVICES.items() if name in SETTINGS]


def test_the_refdesk_services_and_the_infrastructure_are_all_there() -> None:
    assert {
        "kafka",
        "postgres",
        "migrate",
        "ingest",
        "router",
        "notifier",
        "status",
        "publisher",
        "mailpit",
        "prometheus",
        "grafana",
    } <= set(SERVICES)
    assert SERVICES["kafka"]["image"] == "apache/kafka:4.1.1"
    assert SERVICES["postgres"]["image"].startswith("postgres:15")


@pytest.mark.parametrize("name", refdesk_services())
def test_every_command_runs_a_module_that_exists(name: str) -> None:
    command = SERVICES[name]["command"]
    assert command[:2] == ["python", "-m"], command
    assert importlib.util.find_spec(command[2]) is not None, command[2]


@pytest.mark.parametrize("name", refdesk_services())
def test_every_refdesk_variable_is_a_settings_field(name: str) -> None:
    known = env_names(SETTINGS[name])
    named = {k for k in SERVICES[name]["environment"] if k.startswith("REFDESK_")}
    assert named, name
    assert named <= known, f"{name}: not settings fields: {sorted(named - known)}"


@pytest.mark.parametrize("name", list(PORT_FIELD))
def test_ports_match_the_settings_defaults(name: str) -> None:
    default = SETTINGS[name].model_fields[PORT_FIELD[name]].default
    svc = SERVICES[name]
    # published on the loopback unless the operator names an address; ingest (the providers'
    # webhooks) and status (the console) are the two meant to be reached from outside
    bind = "PUBLIC_BIND_ADDRESS" if name in ("ingest", "status") else "BIND_ADDRESS"
    assert svc["ports"] == [f"${{{bind}:-127.0.0.1}}:{default}:{default}"]
    assert str(svc["environment"]["HEALTHCHECK_PORT"]) == str(default)
    scraped = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        t for job in scraped["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert f"{name}:{default}" in targets


@pytest.mark.parametrize("name", list(PORT_FIELD))
def test_services_wait_for_their_dependencies(name: str) -> None:
    deps = SERVICES[name]["depends_on"]
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_each_service_has_its_own_database_and_migrate_covers_them() -> None:
    urls = {SERVICES[n]["environment"]["REFDESK_DATABASE_URL"] for n in PORT_FIELD}
    assert len(urls) == len(PORT_FIELD)
    template = SERVICES["migrate"]["environment"]["REFDESK_DATABASE_URL"]
    assert urls == {template.replace("{service}", n) for n in PORT_FIELD}
    init = (REPO / "deploy/postgres/init-databases.sql").read_text()
    for name in PORT_FIELD:
        assert f"refdesk_{name};" in init


def test_migrate_knows_every_service_with_migrations() -> None:
    from shared.migrate import services_with_migrations

    found = services_with_migrations()
    assert set(PORT_FIELD) <= set(found)


def test_the_dockerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "\nUSER refdesk" in text and "HEALTHCHECK" in text and "/healthz" in text
    assert "pip install ." in text


def test_prometheus_starts_with_every_service_ready_or_not() -> None:
    """Waiting for every service to be healthy kept Prometheus and Grafana down exactly when
    one never got ready (an operator's probe)."""
    assert set(PORT_FIELD) <= set(SERVICES["prometheus"]["depends_on"])
    for name in PORT_FIELD:
        assert SERVICES["prometheus"]["depends_on"][name]["condition"] == "service_started"


def test_every_container_rotates_its_logs() -> None:
    """Only the refdesk services rotated theirs: Kafka's, PostgreSQL's, Prometheus's and the
    rest grew without limit unless the Docker daemon was set to rotate (an outside review)."""
    for name, service in COMPOSE["services"].items():
        logging = service.get("logging") or {}
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 2, name


def test_grafana_and_prometheus_files_are_mounted_and_exist() -> None:
    for name in ("prometheus", "grafana", "postgres"):
        for volume in SERVICES[name].get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), volume


def _compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or, failing that, Debian's `docker-compose` (1.29)."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip(
            "neither the docker compose plugin nor docker-compose is installed here, so "
            "`compose config -q` cannot run; the YAML checks above ran"
        )
    done = subprocess.run(
        [*command, "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
