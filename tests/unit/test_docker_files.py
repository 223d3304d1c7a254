"""Checks of docker/ that need no Docker engine: what would break `docker compose up`.

The compose file, the Dockerfile and the Prometheus/Grafana files are read as data and
checked against each other and against the platform's settings.
"""

from __future__ import annotations

import base64
import fnmatch
import re
import shlex
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from streams.kafka.publisher import PublisherConfig
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_FILE = DOCKER / "prometheus.yml"

KNOWN_SETTINGS = {name for name, _default, _doc in Settings.describe()} | {
    spec.metadata["env"] for spec in fields(PublisherConfig)
}
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
URL_IN_COMMAND = re.compile(r"https?://(?P<host>[^/:'\"\s]+):(?P<port>\d+)(?P<path>/[^'\"\s]*)?")


# --- reading the files --------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, with their stage number."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def runtime_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in runtime_stage():
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def image_cmd() -> list[str]:
    (cmd,) = [i.args for i in runtime_stage() if i.keyword == "CMD"]
    return yaml.safe_load(cmd)  # exec form is a JSON list


def image_healthcheck() -> str:
    (check,) = [i.args for i in runtime_stage() if i.keyword == "HEALTHCHECK"]
    return check


def copy_sources(stage: int | None = None) -> list[str]:
    """Sources of COPY instructions that read the build context (not another stage)."""
    sources = []
    for instruction in dockerfile():
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        if stage is not None and instruction.stage != stage:
            continue
        words = shlex.split(instruction.args)
        if any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.extend(paths[:-1])
    return sources


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def is_kafka(service: dict[str, Any]) -> bool:
    return str(service.get("image", "")).startswith("apache/kafka:")


def is_platform(service: dict[str, Any]) -> bool:
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == "docker/Dockerfile"


def kafka_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if is_kafka(s)}


def platform_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if is_platform(s)}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", image_cmd())
    return shlex.split(command) if isinstance(command, str) else command


SECRETS_DIR = PurePosixPath("/run/secrets")


def settings_of(service: dict[str, Any], token_dir: Path) -> Settings:
    """The service's settings, with the secret's file made up under `token_dir`."""
    env = {**image_env(), **env_of(service)}
    token_file = env.get("API_TOKEN_FILE")
    if token_file and PurePosixPath(token_file).parent == SECRETS_DIR:
        local = token_dir / PurePosixPath(token_file).name
        local.write_text("a-token-from-the-secret\n")
        env["API_TOKEN_FILE"] = str(local)
    return Settings.from_env(env)


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secrets")


def listening_address(service: dict[str, Any], token_dir: Path) -> tuple[str, int]:
    """(host, port) the platform service's web server binds, from its command and settings."""
    settings = settings_of(service, token_dir)
    if command_of(service)[-1] == "producer":
        return settings.producer_host, settings.producer_port
    return settings.web_host, settings.web_port


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) of each published port."""
    result = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            result.append((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        result.append((int(parts[-2]), int(parts[-1])))
    return result


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry."""
    result = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            result.append((entry["source"], entry["target"]))
        else:
            source, target = str(entry).split(":")[:2]
            result.append((source, target))
    return result


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """NAME://host:port,... -> {NAME: (host, port)}."""
    result = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def voters(value: str) -> list[tuple[int, str, int]]:
    result = []
    for item in value.split(","):
        node_id, _, address = item.partition("@")
        host, _, port = address.rpartition(":")
        result.append((int(node_id), host, int(port)))
    return result


def prometheus_targets() -> dict[str, set[str]]:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    return {
        job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
        for job in config["scrape_configs"]
    }


# --- compose: the file and its references ------------------------------------------------


def test_compose_file_declares_kafka_platform_and_monitoring(services: dict[str, Any]) -> None:
    assert len(kafka_services(services)) == 3
    roles = {command_of(s)[-1] for s in platform_services(services).values()}
    assert roles == {"worker", "producer"}
    workers = [s for s in platform_services(services).values() if command_of(s)[-1] == "worker"]
    assert len(workers) >= 2
    assert {"prometheus", "grafana"} <= services.keys()


def test_environment_values_are_strings_or_numbers(services: dict[str, Any]) -> None:
    # Compose refuses booleans and nulls as environment values: "false" must be quoted.
    for name, service in services.items():
        env = service.get("environment") or {}
        values = env.values() if isinstance(env, dict) else []
        for value in values:
            assert isinstance(value, str | int | float) and not isinstance(value, bool), (
                f"{name}: environment value {value!r} must be a string or a number"
            )


def test_platform_services_set_only_known_settings(services: dict[str, Any]) -> None:
    for name, service in platform_services(services).items():
        unknown = sorted(set(env_of(service)) - KNOWN_SETTINGS)
        assert not unknown, f"{name} sets {unknown}, which no setting reads"


def test_platform_settings_are_valid(services: dict[str, Any], token_dir: Path) -> None:
    for service in platform_services(services).values():
        settings_of(service, token_dir)
        PublisherConfig.from_env({**image_env(), **env_of(service)})


def test_kafka_services_set_only_broker_variables(services: dict[str, Any]) -> None:
    for name, service in kafka_services(services).items():
        odd = sorted(v for v in env_of(service) if not v.startswith("KAFKA_") and v != "CLUSTER_ID")
        assert not odd, f"{name} sets {odd}: the apache/kafka image reads KAFKA_* and CLUSTER_ID"


def test_build_context_and_dockerfile_exist(services: dict[str, Any]) -> None:
    for service in platform_services(services).values():
        context = (DOCKER / service["build"]["context"]).resolve()
        assert context == ROOT
        assert (context / service["build"]["dockerfile"]).is_file()


def test_bind_mount_sources_exist_and_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source, _target in mounts(service):
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"


def test_depends_on_healthy_services_have_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[target] or is_platform(services[target]), (
                    f"{name} waits for {target} to be healthy, which has no healthcheck"
                )


# --- the image ----------------------------------------------------------------------------


def test_dockerfile_copy_sources_exist_and_are_not_ignored() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in copy_sources():
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        path = PurePosixPath(source.rstrip("/"))
        for candidate in [path, *path.parents]:
            for pattern in patterns:
                bare = pattern.removeprefix("**/")
                assert not fnmatch.fnmatch(str(candidate), bare), (
                    f"COPY {source}: excluded from the build context by .dockerignore {pattern!r}"
                )


def test_build_stage_has_what_pip_install_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {s.rstrip("/") for s in copy_sources(stage=0)}
    included = project["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = {"pyproject.toml", project["project"]["readme"],
              *{name.split(".")[0] for name in included}}
    assert needed <= copied, f"the build stage does not copy {sorted(needed - copied)}"


def test_image_runs_the_worker_from_app_as_non_root() -> None:
    runtime = runtime_stage()
    workdirs = [i.args for i in runtime if i.keyword == "WORKDIR"]
    assert workdirs[-1] == "/app"
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    # The deployment's modules sit beside worker.py, never in site-packages (PyTables).
    copied = {s.rstrip("/") for s in copy_sources(stage=max(i.stage for i in dockerfile()))}
    assert copied == {"worker.py", "agents", "tables"}
    assert image_cmd() == ["python", "worker.py", "worker"]
    assert image_env()["DATA_DIR"] == "/data"
    assert any(i.keyword == "VOLUME" and "/data" in i.args for i in runtime)
    exposed = {p for i in runtime if i.keyword == "EXPOSE" for p in i.args.split()}
    assert {"8881", "8888"} <= exposed


# --- Kafka --------------------------------------------------------------------------------


def test_quorum_voters_are_the_three_nodes(services: dict[str, Any]) -> None:
    nodes = kafka_services(services)
    envs = {name: env_of(s) for name, s in nodes.items()}
    ids = {name: int(env["KAFKA_NODE_ID"]) for name, env in envs.items()}
    assert len(set(ids.values())) == 3, f"node ids are not unique: {ids}"
    for name, env in envs.items():
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
        controller_port = listeners(env["KAFKA_LISTENERS"])[controller][1]
        expected = {(ids[n], nodes[n].get("hostname", n), controller_port) for n in nodes}
        assert set(voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])) == expected, name
    cluster_ids = {env["CLUSTER_ID"] for env in envs.values()}
    assert len(cluster_ids) == 1, "all nodes must be formatted with the same CLUSTER_ID"
    (cluster_id,) = cluster_ids
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, "CLUSTER_ID is not a UUID"


def test_advertised_listeners_use_the_service_names(services: dict[str, Any]) -> None:
    for name, service in kafka_services(services).items():
        env = env_of(service)
        bound = listeners(env["KAFKA_LISTENERS"])
        advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        protocols = dict(item.split(":") for item in
                         env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(bound) <= set(protocols), f"{name}: listener without a security protocol"
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
        inter_broker = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
        host, port = advertised[inter_broker]
        assert host == service.get("hostname", name), f"{name} advertises {host}"
        assert port == bound[inter_broker][1]
        # A listener advertised to the host must be published on that port.
        published = dict(published_ports(service))
        for listener, (adv_host, adv_port) in advertised.items():
            if adv_host == "localhost":
                assert published.get(adv_port) == bound[listener][1], (
                    f"{name}: {listener} advertises localhost:{adv_port}, not published there"
                )


def test_replication_is_three_with_two_in_sync(services: dict[str, Any]) -> None:
    expected = {
        "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
        "KAFKA_MIN_INSYNC_REPLICAS": "2",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    for name, service in kafka_services(services).items():
        env = env_of(service)
        assert {key: env.get(key) for key in expected} == expected, name
    for name, service in platform_services(services).items():
        assert env_of(service).get("TOPIC_REPLICATION") == "3", name


def test_platform_bootstraps_from_the_brokers_internal_listeners(
    services: dict[str, Any],
) -> None:
    internal = set()
    for service in kafka_services(services).values():
        env = env_of(service)
        host, port = listeners(env["KAFKA_ADVERTISED_LISTENERS"])[
            env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
        internal.add(f"{host}:{port}")
    for name, service in platform_services(services).items():
        servers = set(env_of(service)["KAFKA_BOOTSTRAP_SERVERS"].split(","))
        assert servers == internal, name


# --- the platform services ----------------------------------------------------------------


def test_each_worker_has_its_own_state_and_address(services: dict[str, Any]) -> None:
    workers = {n: s for n, s in platform_services(services).items()
               if command_of(s)[-1] == "worker"}
    state = {n: [src for src, target in mounts(s) if target == "/data"] for n, s in workers.items()}
    for name, sources in state.items():
        assert len(sources) == 1, f"{name} keeps its table state outside a volume"
    all_sources = [sources[0] for sources in state.values()]
    assert len(set(all_sources)) == len(all_sources), "workers share a RocksDB state volume"
    # Table lookups are forwarded to the worker holding the key, at the URL it advertises
    # (WEB_ADVERTISED_HOST): each must be reachable under a name of its own.
    for name, service in workers.items():
        advertised = env_of(service).get("WEB_ADVERTISED_HOST")
        assert advertised == service.get("hostname", name), \
            f"{name}: WEB_ADVERTISED_HOST={advertised!r}"


def test_healthchecks_ask_the_address_the_service_listens_on(services: dict[str, Any],
                                                            token_dir: Path) -> None:
    cases = {"image default": ({}, image_healthcheck())}
    for name, service in platform_services(services).items():
        check = service.get("healthcheck", {}).get("test")
        cases[name] = (service, " ".join(check) if check else image_healthcheck())
    for name, (service, check) in cases.items():
        url = URL_IN_COMMAND.search(check)
        assert url, f"{name}: healthcheck {check!r} names no URL"
        host, port = listening_address(service, token_dir)
        expected_host = "127.0.0.1" if host in WILDCARD_HOSTS else host
        assert (url["host"], int(url["port"]), url["path"]) == (expected_host, port, "/health"), (
            f"{name}: healthcheck asks {url.group(0)} but the service listens on {host}:{port}"
        )


def test_published_ports_do_not_collide(services: dict[str, Any], token_dir: Path) -> None:
    seen: dict[int, str] = {}
    for name, service in services.items():
        for host_port, _container_port in published_ports(service):
            assert host_port not in seen, f"{name} and {seen[host_port]} publish {host_port}"
            seen[host_port] = name
    for name, service in platform_services(services).items():
        _host, port = listening_address(service, token_dir)
        assert [c for _h, c in published_ports(service)] == [port], name


# --- monitoring ---------------------------------------------------------------------------


def test_prometheus_scrapes_every_platform_service(services: dict[str, Any],
                                                   token_dir: Path) -> None:
    mounted = dict((target, source) for source, target in mounts(services["prometheus"]))
    assert (DOCKER / mounted["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS_FILE
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
    scraped = set().union(*prometheus_targets().values()) - {"localhost:9090"}
    expected = {f"{name}:{listening_address(s, token_dir)[1]}"
                for name, s in platform_services(services).items()}
    assert scraped == expected


def test_grafana_provisions_prometheus_and_the_dashboards_folder(
    services: dict[str, Any],
) -> None:
    grafana = {target: source for source, target in mounts(services["grafana"])}
    provisioning = DOCKER / grafana["/etc/grafana/provisioning"]
    datasources = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    # Prometheus listens on 9090 inside the compose network.
    assert [d["url"] for d in datasources] == ["http://prometheus:9090"]
    assert "prometheus" in services
    providers = yaml.safe_load(
        (provisioning / "dashboards" / "dashboards.yaml").read_text())["providers"]
    for provider in providers:
        folder = grafana[provider["options"]["path"]]
        assert (DOCKER / folder).resolve() == DOCKER / "grafana" / "dashboards"
    # An empty folder is not kept by git: a clone would lack the bind mount's source.
    assert (DOCKER / "grafana" / "dashboards" / ".gitkeep").exists()


# --- access control -----------------------------------------------------------------------


def test_the_image_holds_no_token_and_reads_it_from_a_secret() -> None:
    env = image_env()
    assert "API_TOKEN" not in env and "API_ALLOW_NO_TOKEN" not in env
    assert PurePosixPath(env["API_TOKEN_FILE"]).parent == SECRETS_DIR
    for instruction in runtime_stage():
        assert not (instruction.keyword == "ARG" and "TOKEN" in instruction.args.upper())


def test_every_platform_service_gets_the_token_from_the_environment_not_a_literal(
        compose: dict[str, Any], services: dict[str, Any], token_dir: Path) -> None:
    declared = compose.get("secrets", {})
    for name, service in platform_services(services).items():
        env = {**image_env(), **env_of(service)}
        assert "API_TOKEN" not in env and "API_ALLOW_NO_TOKEN" not in env, name
        secret = PurePosixPath(env["API_TOKEN_FILE"])
        assert secret.name in service.get("secrets", []), (
            f"{name}: API_TOKEN_FILE={secret} but the service mounts no secret {secret.name!r}")
        assert settings_of(service, token_dir).api_token is not None, name
        for secret in service.get("secrets", []):
            source = declared[secret]
            assert set(source) <= {"environment", "file"}, f"secret {secret}: {source}"


def test_allowed_hosts_cover_every_name_the_services_are_reached_by(
        services: dict[str, Any], token_dir: Path) -> None:
    from streams.web.access import AccessPolicy

    scraped = {target.split(":")[0] for targets in prometheus_targets().values()
               for target in targets} - {"localhost"}
    for name, service in platform_services(services).items():
        settings = settings_of(service, token_dir)
        host, _port = listening_address(service, token_dir)
        policy = AccessPolicy.from_settings(settings, host)
        reached_by = {"localhost", "127.0.0.1", name} | ({name} & scraped)
        if settings.web_advertised_host:
            reached_by.add(settings.web_advertised_host)
        missing = sorted(h for h in reached_by if not policy.host_allowed(h))
        assert not missing, f"{name} would refuse requests to {missing} (API_ALLOWED_HOSTS)"
