"""The Helm chart (deploy/helm/todo-api), offline: rendered by Helm's own engine, linted by Helm's
own linter (helm-python-sdk carries Helm's Go library, no helm binary), each manifest validated
against Kubernetes' OpenAPI schemas with unknown fields refused (kubernetes-validate carries
them), and held to what docs/kubernetes.md promises of a release."""

from __future__ import annotations

import base64
import copy
import re
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from todo_api.cli import GRACEFUL_SHUTDOWN_SECONDS
from todo_api.settings import documented

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "todo-api"
# A recent Kubernetes, whose schemas kubernetes-validate bundles (1.25 to 1.37 in its 1.37.0);
# Helm's lint checks the chart's kubeVersion against it too.
KUBERNETES = "1.34.0"
# The oldest Kubernetes the chart's kubeVersion (">=1.27.0-0") admits: validated against too.
OLDEST = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"][2:].removesuffix("-0")
RELEASE = "todo-api"
NAMESPACE = "apps"

# The variables the chart holds in a Secret: none may reach a pod's spec as a plain `value:`.
SECRET_VARIABLES = {
    "BETTER_AUTH_SECRET",
    "DATABASE_URL",
    "DATABASE_DIRECT_URL",
    "REDIS_URL",
    "METRICS_TOKEN",
    "OPENAI_API_KEY",
}
# Values that look like real ones, so that a leak of any of them into a manifest shows.
SECRETS = {
    "BETTER_AUTH_SECRET": "pG7vQ2xL9sK4mN8rT1wZ5bC3dF6hJ0aE",
    "DATABASE_URL": "postgresql://todo:db-pass-8f3k@db.example.internal:5432/todo",
    "REDIS_URL": "redis://:redis-pass-2m9x@redis.example.internal:6379/0",
}
# The least a default install needs: its two replicas share their rate limits in Redis.
MINIMAL: dict[str, Any] = {"secret": {"values": SECRETS}}
# A production-like release: an existing Secret (External Secrets, say), Neon's direct URL for
# the migrations, an autoscaler, an Ingress with TLS, a NetworkPolicy and a ServiceMonitor.
EXISTING_SECRET = "todo-api-env"
PRODUCTION: dict[str, Any] = {
    "replicaCount": 3,
    "image": {"repository": "registry.example.com/todo/todo-api", "tag": "1.0.0"},
    "env": {
        "BETTER_AUTH_URL": "https://app.example.com",
        "CORS_ORIGINS": "https://app.example.com",
        "FORWARDED_ALLOW_IPS": "10.0.0.0/8",
    },
    "secret": {
        "existingSecret": EXISTING_SECRET,
        "existingSecretKeys": [
            "BETTER_AUTH_SECRET",
            "DATABASE_URL",
            "DATABASE_DIRECT_URL",
            "REDIS_URL",
            "METRICS_TOKEN",
        ],
    },
    "migrations": {"databaseUrlKey": "DATABASE_DIRECT_URL"},
    "resources": {"requests": {"cpu": "2", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 10},
    "ingress": {
        "enabled": True,
        "hosts": [{"host": "api.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"secretName": "api-example-com-tls", "hosts": ["api.example.com"]}],
    },
    "networkPolicy": {
        "enabled": True,
        "egress": {"database": {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}},
    },
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
}
RELEASES = {"minimal": MINIMAL, "production": PRODUCTION}
REDIS_REFUSAL = "REDIS_URL is required with more than one server process"


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """The layers deep-merged, later ones winning, as Helm merges several values files."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
    return result


def render(chart: helm.Chart, values: dict[str, Any]) -> dict[str, str]:
    """Each template's rendered text, as `helm install` would make it."""
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return {Path(name).name: text for name, text in rendered.items()}


def manifests(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        document
        for name, text in render(chart, values).items()
        if name.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]


def find(objects: list[dict[str, Any]], kind: str, name: str = RELEASE) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {o["kind"] for o in objects}


def pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in {"Deployment", "Job"}]


def api_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def refusal(chart: helm.Chart, values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmRenderError) as refused:
        render(chart, values)
    return str(refused.value)


# The chart itself


def test_app_version_is_the_services_version(chart: helm.Chart) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart.metadata["apiVersion"] == "v2"
    assert chart.metadata["appVersion"] == project["version"]
    # The image's tag follows it unless one is given.
    assert api_container(manifests(chart, MINIMAL))["image"] == f"todo-api:{project['version']}"


@pytest.mark.parametrize("release", RELEASES)
def test_helm_lint_strict_is_clean(release: str) -> None:
    report = helm.lint(CHART, RELEASES[release], strict=True, kube_version=f"v{KUBERNETES}")
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    # Severity 2 is a warning, 3 an error: --strict fails on either. The one INFO left is
    # "icon is recommended", for a chart that is not published to a chart repository.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_helm_lint_strict_fails_a_broken_chart(tmp_path: Path) -> None:
    """The lint above is worth something: a template that renders to no valid YAML fails it.
    (The chart's own refusals are not lint findings: Helm lints with `fail` turned into a log
    line, so they are checked by rendering, below.)"""
    broken = tmp_path / "todo-api"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("kind: ConfigMap\nmetadata: name: x\n")
    report = helm.lint(broken, MINIMAL, strict=True, kube_version=f"v{KUBERNETES}")
    assert any(m["severity"] == 3 and "broken.yaml" in m["path"] for m in report["messages"])


def test_every_value_has_a_comment_above_it() -> None:
    """Each key of values.yaml is preceded by a comment saying what it does (entries of a list,
    such as ingress.hosts, are examples of their list's comment)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    uncommented, list_indent = [], None
    for number, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        if list_indent is not None and indent >= list_indent:
            continue
        list_indent = None
        if stripped.startswith("- "):
            list_indent = indent
            continue
        if re.match(r"[\w./-]+:", stripped) and not lines[number - 1].lstrip().startswith("#"):
            uncommented.append(f"values.yaml:{number + 1}: {stripped}")
    assert not uncommented, "keys without a comment:\n" + "\n".join(uncommented)


def test_env_and_secret_values_name_variables_the_service_reads(chart: helm.Chart) -> None:
    """A misspelt variable would be ignored without a word: every one is documented (uvicorn
    reads FORWARDED_ALLOW_IPS itself)."""
    known = {variable.name for variable in documented()} | {"FORWARDED_ALLOW_IPS"}
    values = chart.values
    assert set(values["env"]) <= known
    assert set(values["secret"]["values"]) == SECRET_VARIABLES
    assert SECRET_VARIABLES.issubset(known)


# Valid Kubernetes objects


def validate_service_monitor(monitor: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    """kubernetes-validate has no schema for a CRD's kind (monitoring.coreos.com/v1 belongs to
    the Prometheus Operator), so the ServiceMonitor is checked by its structure: only fields of
    the operator's API, pointing at the chart's Service and Secret."""
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    service = find(objects, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "bearerTokenSecret"}
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert set(endpoint["bearerTokenSecret"]) == {"name", "key"}
    assert re.fullmatch(r"\d+[smh]", endpoint["interval"])
    assert re.fullmatch(r"\d+[smh]", endpoint["scrapeTimeout"])


@pytest.mark.parametrize("kubernetes", [KUBERNETES, OLDEST])
@pytest.mark.parametrize("release", RELEASES)
def test_every_manifest_is_a_valid_kubernetes_object(
    chart: helm.Chart, release: str, kubernetes: str
) -> None:
    objects = manifests(chart, RELEASES[release])
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "ServiceMonitor":
            validate_service_monitor(obj, objects)
            continue
        try:
            checked = kubernetes_validate.validate(obj, kubernetes, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(step) for step in exc.path)
            pytest.fail(f"{name} on Kubernetes {kubernetes}: {where}: {exc.message}")
        # The schemas of that very version, not of an older one standing in for it.
        assert checked == kubernetes.rsplit(".", 1)[0], name
    expected = {"ConfigMap", "Deployment", "Service", "Job", "PodDisruptionBudget"}
    if release == "production":
        expected |= {"HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "ServiceMonitor"}
    else:
        expected |= {"Secret"}
    assert kinds(objects) == expected


def test_strict_validation_refuses_an_unknown_field(chart: helm.Chart) -> None:
    """The check above is worth something: a field Kubernetes does not know fails it."""
    deployment = copy.deepcopy(find(manifests(chart, MINIMAL), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


# Secrets


@pytest.mark.parametrize("release", RELEASES)
def test_secrets_reach_the_pods_only_through_secret_key_refs(
    chart: helm.Chart, release: str
) -> None:
    objects = manifests(chart, RELEASES[release])
    secret_name = EXISTING_SECRET if release == "production" else RELEASE
    for spec in pod_specs(objects):
        for container in spec["containers"]:
            for name, entry in env_of(container).items():
                if name in SECRET_VARIABLES:
                    assert "value" not in entry, name
                    assert set(entry["valueFrom"]) == {"secretKeyRef"}, name
    api_env = env_of(api_container(objects))
    expected = set(RELEASES[release]["secret"].get("existingSecretKeys", SECRETS))
    assert SECRET_VARIABLES & set(api_env) == expected
    for name in expected:
        assert api_env[name]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": name}
    assert SECRET_VARIABLES.isdisjoint(find(objects, "ConfigMap")["data"])


def test_secret_values_appear_in_no_manifest_but_the_secrets(chart: helm.Chart) -> None:
    rendered = render(chart, MINIMAL)
    for name, text in rendered.items():
        for variable, value in SECRETS.items():
            assert value not in text, f"{variable} in {name}"
            if name not in {"secret.yaml", "migrate-secret.yaml"}:
                assert base64.b64encode(value.encode()).decode() not in text, (
                    f"{variable} in {name}"
                )
    secret = find(manifests(chart, MINIMAL), "Secret")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == SECRETS


def test_a_secret_given_as_a_plain_setting_is_refused(chart: helm.Chart) -> None:
    message = refusal(chart, merged(MINIMAL, {"env": {"DATABASE_URL": SECRETS["DATABASE_URL"]}}))
    assert "env.DATABASE_URL: DATABASE_URL is a secret" in message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"secret": {"values": {"DATABASE_URL": ""}}}, "DATABASE_URL is required"),
        (
            {"secret": {"values": {"BETTER_AUTH_SECRET": ""}}},
            "BETTER_AUTH_SECRET (in the Secret) or env.BETTER_AUTH_URL is required",
        ),
        ({"env": {"AUTO_MIGRATE": "true"}}, "env.AUTO_MIGRATE: the chart sets AUTO_MIGRATE"),
        (
            {"metrics": {"serviceMonitor": {"enabled": True}}},
            "metrics.serviceMonitor.enabled needs METRICS_TOKEN",
        ),
        (
            {"migrations": {"databaseUrlKey": "DATABASE_DIRECT_URL"}},
            "the Secret has no DATABASE_DIRECT_URL for the migration Job",
        ),
    ],
)
def test_values_that_would_deploy_something_broken_are_refused(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    assert message in refusal(chart, merged(MINIMAL, values))


def test_better_auth_url_alone_is_enough(chart: helm.Chart) -> None:
    values = merged(
        MINIMAL,
        {"env": {"BETTER_AUTH_URL": "https://app.example.com"}},
        {"secret": {"values": {"BETTER_AUTH_SECRET": ""}}},
    )
    api_env = env_of(api_container(manifests(chart, values)))
    assert "BETTER_AUTH_SECRET" not in api_env


# Migrations


@pytest.mark.parametrize("release", RELEASES)
def test_migrations_run_once_as_a_pre_install_and_pre_upgrade_hook(
    chart: helm.Chart, release: str
) -> None:
    objects = manifests(chart, RELEASES[release])
    job = find(objects, "Job", f"{RELEASE}-migrate")
    hook = job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert hook["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["db", "upgrade"]
    assert "command" not in container  # the image's ENTRYPOINT, todo-api
    assert pod["restartPolicy"] == "Never"
    # The ConfigMap, an ordinary object, does not exist yet on a first install.
    assert "envFrom" not in container
    ref = env_of(container)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    if release == "production":
        # Made beforehand; Neon's direct URL, not the pooler's.
        assert ref == {"name": EXISTING_SECRET, "key": "DATABASE_DIRECT_URL"}
        assert not any(o["kind"] == "Secret" for o in objects)
    else:
        # The chart's own Secret would not exist yet either: the Job reads a hook Secret made
        # just before it (a lower weight), holding the one URL.
        secret = find(objects, "Secret", f"{RELEASE}-migrate")
        assert ref == {"name": f"{RELEASE}-migrate", "key": "DATABASE_URL"}
        annotations = secret["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == hook["helm.sh/hook"]
        assert int(annotations["helm.sh/hook-weight"]) < int(hook["helm.sh/hook-weight"])
        assert set(secret["data"]) == {"DATABASE_URL"}
        # The Deployment's Secret is an ordinary object of the release.
        assert "annotations" not in find(objects, "Secret")["metadata"]


def test_the_servers_never_migrate(chart: helm.Chart) -> None:
    for release in RELEASES.values():
        api_env = env_of(api_container(manifests(chart, release)))
        assert api_env["AUTO_MIGRATE"] == {"name": "AUTO_MIGRATE", "value": "false"}


def test_migrations_can_be_left_to_the_operator(chart: helm.Chart) -> None:
    objects = manifests(chart, merged(MINIMAL, {"migrations": {"enabled": False}}))
    assert "Job" not in kinds(objects)
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"] == [RELEASE]


# Pods


def test_probes_liveness_never_asks_the_database(chart: helm.Chart) -> None:
    container = api_container(manifests(chart, MINIMAL))
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/api/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/api/health", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/api/health", "port": "http"}
    assert env_of(container)["PORT"]["value"] == "8000"


def test_a_rolling_update_never_drops_a_request(chart: helm.Chart) -> None:
    deployment = find(manifests(chart, MINIMAL), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    pause = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    # The kubelet kills the pod this long after its stop began: the pause, then the server's
    # drain of the requests in flight on SIGTERM, must fit.
    assert pod["terminationGracePeriodSeconds"] > int(pause[1]) + GRACEFUL_SHUTDOWN_SECONDS


def test_a_grace_period_too_short_for_the_drain_is_refused(chart: helm.Chart) -> None:
    """The drain the chart allows for is the server's own GRACEFUL_SHUTDOWN_SECONDS: a grace
    period of exactly the pause and the drain is refused, a second more accepted."""
    just_enough = 10 + GRACEFUL_SHUTDOWN_SECONDS
    short = merged(
        MINIMAL, {"preStopSleepSeconds": 10, "terminationGracePeriodSeconds": just_enough}
    )
    drain = f"plus the server's {GRACEFUL_SHUTDOWN_SECONDS} s drain on SIGTERM"
    assert f"must be more than preStopSleepSeconds (10) {drain}" in refusal(chart, short)
    enough = merged(short, {"terminationGracePeriodSeconds": just_enough + 1})
    pod = find(manifests(chart, enough), "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == just_enough + 1


@pytest.mark.parametrize("release", RELEASES)
def test_pods_run_unprivileged_on_a_read_only_root(chart: helm.Chart, release: str) -> None:
    for pod in pod_specs(manifests(chart, RELEASES[release])):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 10001  # the Dockerfile's user
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        [container] = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        # /tmp, the one place the service writes, is an emptyDir.
        [mount] = container["volumeMounts"]
        assert mount == {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 (a manifest's path)
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert "emptyDir" in volumes["tmp"]


def test_resources_request_cpu_and_memory_and_limit_memory(chart: helm.Chart) -> None:
    resources = api_container(manifests(chart, MINIMAL))["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    # Memory is limited; CPU is not (throttling stalls requests and probes).
    assert set(resources["limits"]) == {"memory"}


@pytest.mark.parametrize(
    ("cpu", "processes"),
    [("250m", "1"), ("500m", "1"), ("1", "1"), ("1.5", "1"), ("2", "2"), (2, "2"), ("2500m", "2")],
)
def test_web_concurrency_follows_the_cpu_request(
    chart: helm.Chart, cpu: str | int, processes: str
) -> None:
    values = merged(MINIMAL, {"resources": {"requests": {"cpu": cpu}}})
    api_env = env_of(api_container(manifests(chart, values)))
    assert api_env["WEB_CONCURRENCY"]["value"] == processes


def test_pods_spread_across_nodes(chart: helm.Chart) -> None:
    deployment = find(manifests(chart, MINIMAL), "Deployment")
    [spread] = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_settings_are_a_configmap_whose_change_rolls_the_pods(chart: helm.Chart) -> None:
    values = merged(MINIMAL, {"env": {"BETTER_AUTH_URL": "https://app.example.com"}})
    objects = manifests(chart, values)
    config = find(objects, "ConfigMap")["data"]
    assert config["BETTER_AUTH_URL"] == "https://app.example.com"
    assert config["LOG_FORMAT"] == "json"
    assert config["CORS_ORIGINS"] == "http://localhost:3000"
    assert "FORWARDED_ALLOW_IPS" not in config  # empty: left to the service's default
    container = api_container(objects)
    assert container["envFrom"] == [{"configMapRef": {"name": RELEASE}}]
    before = find(manifests(chart, MINIMAL), "Deployment")["spec"]["template"]["metadata"]
    after = find(objects, "Deployment")["spec"]["template"]["metadata"]
    assert before["annotations"]["checksum/config"] != after["annotations"]["checksum/config"]


# Redis


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": 3},
        {"replicaCount": 1, "autoscaling": {"enabled": True}},
        {"replicaCount": 1, "resources": {"requests": {"cpu": "2"}}},
    ],
    ids=["three-replicas", "autoscaler", "two-processes-a-pod"],
)
def test_more_than_one_process_without_redis_is_refused(
    chart: helm.Chart, values: dict[str, Any]
) -> None:
    message = refusal(chart, merged(MINIMAL, {"secret": {"values": {"REDIS_URL": ""}}}, values))
    assert REDIS_REFUSAL in message
    assert "the rate limits and per-user stream bounds must be shared across the replicas" in (
        message
    )


def test_one_process_needs_no_redis(chart: helm.Chart) -> None:
    values = merged(MINIMAL, {"replicaCount": 1, "secret": {"values": {"REDIS_URL": ""}}})
    assert "REDIS_URL" not in env_of(api_container(manifests(chart, values)))


def test_an_existing_secret_must_declare_its_redis_url(chart: helm.Chart) -> None:
    keys = [k for k in PRODUCTION["secret"]["existingSecretKeys"] if k != "REDIS_URL"]
    values = merged(PRODUCTION, {"secret": {"existingSecretKeys": keys}})
    assert REDIS_REFUSAL in refusal(chart, values)


# The production-like release's other objects


def test_service_is_cluster_ip_80_to_http(chart: helm.Chart) -> None:
    service = find(manifests(chart, MINIMAL), "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def test_ingress_keeps_event_streams_unbuffered_and_open(chart: helm.Chart) -> None:
    ingress = find(manifests(chart, PRODUCTION), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    # Longer than a stream may last (STREAM_MAX_SECONDS, 3600) and than its 15 s heartbeat.
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": RELEASE, "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == PRODUCTION["ingress"]["tls"]


def test_the_autoscaler_scales_on_cpu_in_replica_counts_place(chart: helm.Chart) -> None:
    objects = manifests(chart, PRODUCTION)
    hpa = find(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": RELEASE,
    }
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # The Deployment leaves the count to the autoscaler, or each upgrade would reset it.
    assert "replicas" not in find(objects, "Deployment")["spec"]


def test_the_disruption_budget_lets_one_pod_go_at_a_time(chart: helm.Chart) -> None:
    objects = manifests(chart, MINIMAL)
    budget = find(objects, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    selector = find(objects, "Deployment")["spec"]["selector"]
    assert budget["spec"]["selector"] == selector


def test_the_network_policy_admits_the_ingress_controller_and_reaches_the_backends(
    chart: helm.Chart,
) -> None:
    objects = manifests(chart, PRODUCTION)
    policy = find(objects, "NetworkPolicy")["spec"]
    assert policy["podSelector"] == find(objects, "Deployment")["spec"]["selector"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    [admitted] = policy["ingress"]
    namespaces = [p["namespaceSelector"]["matchLabels"] for p in admitted["from"]]
    assert namespaces == [
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "monitoring"},  # Prometheus, for the ServiceMonitor
    ]
    assert admitted["ports"] == [{"port": "http", "protocol": "TCP"}]
    reached = {
        (port["port"], port["protocol"]) for rule in policy["egress"] for port in rule["ports"]
    }
    assert reached == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (6379, "TCP"), (443, "TCP")}
    database = next(r for r in policy["egress"] if r["ports"][0]["port"] == 5432)
    assert database["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]


def test_the_service_monitor_scrapes_with_the_metrics_token(chart: helm.Chart) -> None:
    objects = manifests(chart, PRODUCTION)
    monitor = find(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/api/metrics"
    assert endpoint["bearerTokenSecret"] == {"name": EXISTING_SECRET, "key": "METRICS_TOKEN"}
    api_env = env_of(api_container(objects))
    assert api_env["METRICS_ENABLED"]["value"] == "true"


def test_notes_say_how_to_reach_the_api_and_swagger_ui(chart: helm.Chart) -> None:
    notes = render(chart, MINIMAL)["NOTES.txt"]
    assert f"port-forward service/{RELEASE} 8000:80" in notes
    assert "http://127.0.0.1:8000/api/docs" in notes
    notes = render(chart, PRODUCTION)["NOTES.txt"]
    assert "https://api.example.com/api/docs" in notes
