#!/usr/bin/env python3
"""Offline checks of everything under Deploy/ plus the Dockerfile's settings.

Run by scripts/validate-deploy.sh (which also runs hadolint and promtool). Needs PyYAML and
kubernetes-validate (both in .ci/requirements.txt); reaches no network and no cluster.

Each check prints `ok - <name>` or `FAIL - <name>: <why>`; the exit status is the failure count
(capped at 1).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "Deploy"
K8S = DEPLOY / "kubernetes"
KSERVE = DEPLOY / "kserve"
COMPOSE = DEPLOY / "compose"
DASHBOARDS = DEPLOY / "dashboards"
ALERTS = DEPLOY / "alerts"

# Kubernetes versions whose schemas kubernetes-validate ships and that the manifests must pass:
# the oldest minor still common in managed clusters and the newest the package knows.
K8S_VERSIONS = ["1.30.0", "1.37.0"]
CORE_KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"}

failures: list[str] = []
passes = 0


def check(name: str, problems: list[str] | str | None) -> None:
    """Records one check: `problems` empty/None means it passed."""
    global passes
    if isinstance(problems, str):
        problems = [problems]
    problems = list(dict.fromkeys(problems or []))  # each problem once, in order
    if problems:
        failures.append(name)
        print(f"FAIL - {name}:")
        for p in problems:
            print(f"       {p}")
    else:
        passes += 1
        print(f"ok - {name}")


def load_all(path: Path) -> list[dict]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --------------------------------------------------------------------------------------------
# Configuration keys: Config/loupe.yaml flattened to dotted names, and their LOUPE_* names.

def flatten(node, prefix=""):
    out = {}
    if isinstance(node, dict):
        for k, v in node.items():
            name = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flatten(v, name))
            else:
                out[name] = v
    return out


def config_keys() -> dict[str, object]:
    path = ROOT / "Config" / "loupe.yaml"
    if not path.exists():
        return {}
    with path.open() as f:
        return flatten(yaml.safe_load(f) or {})


def env_name(key: str) -> str:
    return "LOUPE_" + key.upper().replace(".", "_")


CONFIG = config_keys()
ENV_KEYS = {env_name(k): k for k in CONFIG}
# Variables the service reads that are not keys of the file.
ENV_EXTRA = {"LOUPE_CONFIG"}


def valid_env(name: str) -> bool:
    return name in ENV_KEYS or name in ENV_EXTRA or name.startswith("LOUPE_MODELS_POLICY_")


def ms_setting(key: str, env: dict[str, str], default: int) -> int:
    """A millisecond setting as the container sees it: env overrides the config file."""
    if env_name(key) in env:
        return int(str(env[env_name(key)]).replace("_", ""))
    value = CONFIG.get(key, default)
    return int(str(value).replace("_", ""))


# --------------------------------------------------------------------------------------------
# Metric names the service exports, found in the Swift sources (string literals "loupe_...").

def source_metric_names() -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r'"((?:loupe|process)_[a-z0-9_]+)')
    for path in (ROOT / "Sources").rglob("*.swift"):
        for m in pattern.finditer(path.read_text(errors="replace")):
            names.add(m.group(1))
    return names


def exposition_metric_names(path: str | None) -> set[str]:
    """Metric family names from a /metrics scrape saved to a file (TYPE/HELP lines and samples)."""
    names: set[str] = set()
    if not path:
        return names
    for line in Path(path).read_text().splitlines():
        if line.startswith("# TYPE ") or line.startswith("# HELP "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_known(name: str, known: set[str]) -> bool:
    if name in known:
        return True
    for suffix in HISTOGRAM_SUFFIXES + ("_total", "_created"):
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return True
    return False


PROMQL_METRIC = re.compile(r"\b(loupe_[a-zA-Z0-9_]+|process_[a-zA-Z0-9_]+|up)\b")


def promql_metrics(expr: str) -> set[str]:
    return {m for m in PROMQL_METRIC.findall(expr) if m != "up"}


# --------------------------------------------------------------------------------------------
# Kubernetes manifests.

def k8s_documents() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(list(K8S.rglob("*.yaml")) + list(KSERVE.rglob("*.yaml"))):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_all(path):
            docs.append((path, doc))
    return docs


def check_core_schemas(docs):
    try:
        import kubernetes_validate
    except ImportError:
        check("kubernetes-validate installed", "python module kubernetes_validate not found "
              "(pip install -r .ci/requirements.txt)")
        return
    try:  # the schemas this kubernetes-validate ships; a newer release may drop old minors
        from kubernetes_validate.utils import all_versions, latest_version
        shipped = set(all_versions())
        versions = [v for v in K8S_VERSIONS if v in shipped] or [latest_version()]
    except Exception:
        versions = K8S_VERSIONS
    for version in versions:
        for path, doc in docs:
            if doc.get("kind") not in CORE_KINDS:
                continue
            problems = []
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except Exception as e:  # ValidationError carries the schema path
                problems.append(str(e).splitlines()[0])
            check(f"k8s {version} strict schema: {rel(path)} {doc['kind']}/{doc['metadata']['name']}", problems)


def require(doc: dict, dotted: str, problems: list[str], expect=None):
    node = doc
    for part in dotted.split("."):
        if isinstance(node, list):
            if not node:
                problems.append(f"{dotted}: empty list")
                return None
            node = node[0]
        if not isinstance(node, dict) or part not in node or node[part] in (None, "", [], {}):
            problems.append(f"missing {dotted}")
            return None
        node = node[part]
    if expect is not None and node != expect:
        problems.append(f"{dotted} is {node!r}, expected {expect!r}")
    return node


def check_custom_resources(docs):
    seen = set()
    for path, doc in docs:
        kind = doc.get("kind")
        problems: list[str] = []
        if kind == "ServiceMonitor":
            require(doc, "apiVersion", problems, "monitoring.coreos.com/v1")
            require(doc, "metadata.name", problems)
            require(doc, "spec.selector.matchLabels", problems)
            for ep in require(doc, "spec.endpoints", problems) or []:
                if "port" not in ep and "targetPort" not in ep:
                    problems.append("an endpoint names neither port nor targetPort")
                if ep.get("path", "/metrics") != "/metrics":
                    problems.append(f"endpoint path {ep.get('path')} is not /metrics")
        elif kind == "PrometheusRule":
            require(doc, "apiVersion", problems, "monitoring.coreos.com/v1")
            require(doc, "metadata.name", problems)
            groups = require(doc, "spec.groups", problems) or []
            source = yaml.safe_load((ALERTS / "loupe-rules.yaml").read_text())
            if doc.get("spec") != source:
                problems.append("spec differs from Deploy/alerts/loupe-rules.yaml; run bash scripts/gen-configmap.sh")
            for g in groups:
                if not g.get("name") or not g.get("rules"):
                    problems.append(f"group {g.get('name')} has no name or no rules")
        elif kind == "ServingRuntime":
            require(doc, "apiVersion", problems, "serving.kserve.io/v1alpha1")
            require(doc, "metadata.name", problems)
            formats = require(doc, "spec.supportedModelFormats", problems) or []
            if not any(f.get("name") == "loupe" for f in formats):
                problems.append("supportedModelFormats has no 'loupe'")
            if "v2" not in (doc.get("spec", {}).get("protocolVersions") or []):
                problems.append("protocolVersions does not include v2")
            containers = require(doc, "spec.containers", problems) or []
            if not any(c.get("name") == "kserve-container" for c in containers):
                problems.append("no container named kserve-container (KServe injects the model there)")
            for c in containers:
                if not c.get("image"):
                    problems.append(f"container {c.get('name')} has no image")
        elif kind == "InferenceService":
            require(doc, "apiVersion", problems, "serving.kserve.io/v1beta1")
            require(doc, "metadata.name", problems)
            require(doc, "spec.predictor.model.modelFormat.name", problems, "loupe")
            require(doc, "spec.predictor.model.protocolVersion", problems, "v2")
            require(doc, "spec.predictor.model.storageUri", problems)
        else:
            continue
        seen.add(kind)
        check(f"custom resource fields: {rel(path)} {kind}/{doc.get('metadata', {}).get('name')}", problems)
    missing = {"ServiceMonitor", "PrometheusRule", "ServingRuntime", "InferenceService"} - seen
    check("custom resources present (ServiceMonitor, PrometheusRule, ServingRuntime, InferenceService)",
          [f"no {k}" for k in sorted(missing)])

    # The InferenceService must name a runtime that exists and supports its format.
    runtimes = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == "ServingRuntime"}
    for path, doc in docs:
        if doc.get("kind") != "InferenceService":
            continue
        model = doc["spec"]["predictor"]["model"]
        rt = runtimes.get(model.get("runtime"))
        problems = []
        if model.get("runtime") and rt is None:
            problems.append(f"runtime {model.get('runtime')!r} is not defined in Deploy/kserve")
        check(f"InferenceService {doc['metadata']['name']} names a defined runtime", problems)


def containers_of(doc):
    spec = doc.get("spec", {})
    if doc.get("kind") == "Deployment":
        return spec["template"]["spec"]["containers"]
    if doc.get("kind") == "ServingRuntime":
        return spec.get("containers", [])
    return []


def check_consistency(docs):
    by_kind: dict[str, list[dict]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    deployments = [d for d in by_kind.get("Deployment", [])]
    check("one Deployment", None if len(deployments) == 1 else f"found {len(deployments)}")
    if not deployments:
        return
    dep = deployments[0]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", []) if "value" in e}

    def selects(selector: dict) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    # Labels and names line up.
    problems = []
    if not selects(dep["spec"]["selector"]["matchLabels"]):
        problems.append("Deployment selector does not match its pod template labels")
    for svc in by_kind.get("Service", []):
        if not selects(svc["spec"]["selector"]):
            problems.append(f"Service {svc['metadata']['name']} selector matches no Deployment pod")
        port_names = {p.get("name") for p in container.get("ports", [])}
        for p in svc["spec"]["ports"]:
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in port_names:
                problems.append(f"Service targetPort {p['targetPort']} is not a container port name")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not selects(pdb["spec"]["selector"]["matchLabels"]):
            problems.append("PodDisruptionBudget selector matches no Deployment pod")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or ref.get("name") != dep["metadata"]["name"]:
            problems.append(f"HPA {hpa['metadata']['name']} does not target Deployment {dep['metadata']['name']}")
        if hpa["spec"].get("minReplicas", 1) < 2:
            problems.append("HPA minReplicas < 2: the PodDisruptionBudget would block node drains")
    for sm in by_kind.get("ServiceMonitor", []):
        svcs = [s for s in by_kind.get("Service", [])
                if all(s["metadata"].get("labels", {}).get(k) == v
                       for k, v in sm["spec"]["selector"]["matchLabels"].items())]
        if not svcs:
            problems.append("ServiceMonitor selects no Service by its labels")
        for ep in sm["spec"]["endpoints"]:
            if svcs and ep.get("port") not in {p.get("name") for s in svcs for p in s["spec"]["ports"]}:
                problems.append(f"ServiceMonitor port {ep.get('port')} is not a Service port name")
    cm_names = {c["metadata"]["name"] for c in by_kind.get("ConfigMap", [])}
    for vol in pod.get("volumes", []):
        if "configMap" in vol and vol["configMap"]["name"] not in cm_names:
            problems.append(f"volume {vol['name']} names ConfigMap {vol['configMap']['name']} that is not defined")
    mounts = {m["name"] for m in container.get("volumeMounts", [])}
    for vol in pod.get("volumes", []):
        if vol["name"] not in mounts:
            problems.append(f"volume {vol['name']} is not mounted")
    check("Kubernetes objects reference each other consistently", problems)

    # Restricted Pod Security Standard + read-only root with a writable /tmp.
    problems = []
    psc = pod.get("securityContext", {})
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation must be false")
        if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
            problems.append(f"{c['name']}: capabilities.drop must include ALL")
        if sc.get("capabilities", {}).get("add"):
            problems.append(f"{c['name']}: adds capabilities")
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            problems.append(f"{c['name']}: runAsNonRoot not set")
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if not isinstance(uid, int) or uid == 0:
            problems.append(f"{c['name']}: runAsUser must be a non-zero number")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{c['name']}: seccompProfile must be RuntimeDefault or Localhost")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{c['name']}: readOnlyRootFilesystem must be true")
        tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        if not tmp:
            problems.append(f"{c['name']}: no writable /tmp mount")
        for res in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in c.get("resources", {}).get(res, {}):
                    problems.append(f"{c['name']}: resources.{res}.{r} missing")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append("host namespaces used")
    check("Deployment meets the restricted Pod Security Standard, read-only root, /tmp writable", problems)

    # Probes point at the service's health routes on the serving port.
    problems = []
    port = int(env.get("LOUPE_SERVER_PORT", CONFIG.get("server.port", 8080)))
    port_by_name = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if port not in port_by_name.values():
        problems.append(f"container ports {sorted(port_by_name.values())} do not include LOUPE_SERVER_PORT {port}")
    expected = {"livenessProbe": "/health/live", "readinessProbe": "/health/ready", "startupProbe": "/health/"}
    for probe, path in expected.items():
        p = container.get(probe)
        if not p:
            problems.append(f"no {probe}")
            continue
        got = p.get("httpGet", {}).get("path", "")
        if not got.startswith(path):
            problems.append(f"{probe} path {got!r}, expected {path}…")
        pport = p.get("httpGet", {}).get("port")
        if port_by_name.get(pport, pport) != port:
            problems.append(f"{probe} port {pport!r} is not the serving port {port}")
    check("probes: liveness /health/live, readiness /health/ready, startup, on the serving port", problems)

    # terminationGracePeriodSeconds covers drain delay + deadline, with a margin.
    delay = ms_setting("shutdown.drain_delay_ms", env, 5000)
    deadline = ms_setting("shutdown.deadline_ms", env, 4000)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    margin_ms = 2000
    problems = []
    if grace * 1000 < delay + deadline + margin_ms:
        problems.append(f"terminationGracePeriodSeconds {grace}s < drain_delay {delay} ms + deadline {deadline} ms "
                        f"+ {margin_ms} ms margin: Kubernetes would SIGKILL mid-drain")
    if grace * 1000 > 4 * (delay + deadline + margin_ms):
        problems.append(f"terminationGracePeriodSeconds {grace}s is far above what the drain needs "
                        f"({(delay + deadline) / 1000:.0f}s): a hung pod would linger")
    for _, doc in docs:
        if doc.get("kind") == "InferenceService":
            g = doc["spec"]["predictor"].get("terminationGracePeriodSeconds", 30)
            if g * 1000 < delay + deadline + margin_ms:
                problems.append(f"InferenceService {doc['metadata']['name']}: terminationGracePeriodSeconds {g}s too short")
    check(f"grace period {grace}s covers drain delay {delay} ms + deadline {deadline} ms", problems)


def check_env_names(docs):
    """Every LOUPE_* variable set anywhere in Deploy/ or the Dockerfile is one the service reads."""
    if not CONFIG:
        check("LOUPE_* variables are configuration keys", "Config/loupe.yaml not found")
        return
    problems = []
    for path, doc in docs:
        for c in containers_of(doc):
            for e in c.get("env", []):
                if e["name"].startswith("LOUPE_") and not valid_env(e["name"]):
                    problems.append(f"{rel(path)}: {e['name']} is not a configuration key")
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    for name, svc in compose.get("services", {}).items():
        for var in (svc.get("environment") or {}):
            if var.startswith("LOUPE_") and not valid_env(var):
                problems.append(f"compose service {name}: {var} is not a configuration key")
    dockerfile = (ROOT / "Dockerfile").read_text()
    for var in re.findall(r"\b(LOUPE_[A-Z0-9_]+)=", dockerfile):
        if not valid_env(var):
            problems.append(f"Dockerfile: ENV {var} is not a configuration key")
    check("every LOUPE_* variable set in Deploy/ and the Dockerfile is a configuration key", problems)


def check_configmap():
    path = K8S / "configmap.yaml"
    problems = []
    if not path.exists():
        check("ConfigMap generated from Config/loupe.yaml", f"{rel(path)} missing; run bash scripts/gen-configmap.sh")
        return
    doc = load_all(path)[0]
    text = doc.get("data", {}).get("loupe.yaml")
    src = (ROOT / "Config" / "loupe.yaml").read_text()
    if text != src:
        problems.append("data['loupe.yaml'] differs from Config/loupe.yaml; run bash scripts/gen-configmap.sh")
    check("ConfigMap data equals Config/loupe.yaml", problems)


def check_kustomization():
    path = K8S / "kustomization.yaml"
    if not path.exists():
        return
    doc = yaml.safe_load(path.read_text())
    problems = [f"resource {r} does not exist" for r in doc.get("resources", []) if not (K8S / r).exists()]
    if doc.get("kind") != "Kustomization":
        problems.append("kind is not Kustomization")
    check("kustomization resources exist", problems)


# --------------------------------------------------------------------------------------------
# Dockerfile settings that the rest depends on (hadolint checks the style separately).

def check_dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    problems = []
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if len(stages) < 2:
        problems.append("not multi-stage")
    if "--static-swift-stdlib" not in text:
        problems.append("release build without --static-swift-stdlib")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        problems.append(f"final USER {users[-1] if users else None} is not a numeric non-root uid")
    expose = re.findall(r"^EXPOSE\s+(\d+)", text, re.M)
    port = re.search(r"LOUPE_SERVER_PORT=(\d+)", text)
    if not expose or not port or expose[-1] != port.group(1):
        problems.append(f"EXPOSE {expose} does not match LOUPE_SERVER_PORT {port.group(1) if port else None}")
    if not re.search(r"^STOPSIGNAL\s+SIGTERM", text, re.M):
        problems.append("no STOPSIGNAL SIGTERM")
    if not re.search(r"^HEALTHCHECK\b.*\n?.*healthcheck", text, re.M):
        problems.append("no HEALTHCHECK through `loupe healthcheck`")
    if not re.search(r"^VOLUME\s+\[?\"?/models", text, re.M):
        problems.append("no /models volume")
    for src in re.findall(r"^COPY\s+(?!--from)(\S+)\s+/", text, re.M):
        if not (ROOT / src).exists():
            problems.append(f"COPY source {src} does not exist in the repository")
    if not list((ROOT / "models").glob("*/*/model.loupe")):
        problems.append("no default model models/<name>/<version>/model.loupe to bake in")
    check("Dockerfile: multi-stage, static stdlib, numeric USER, EXPOSE = port, STOPSIGNAL, HEALTHCHECK, /models", problems)
    ignore = (ROOT / ".dockerignore").read_text().split()
    problems = [f".dockerignore lacks {p}" for p in (".build", ".git") if p not in ignore]
    check(".dockerignore keeps .build and .git out of the context", problems)


# --------------------------------------------------------------------------------------------
# Compose, Prometheus config, Grafana dashboard.

def check_compose():
    path = COMPOSE / "compose.yaml"
    doc = yaml.safe_load(path.read_text())
    problems = []
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        check("compose.yaml structure", "no services")
        return
    allowed = {"build", "image", "ports", "environment", "user", "read_only", "tmpfs", "cap_drop",
               "security_opt", "stop_grace_period", "volumes", "restart", "command", "depends_on",
               "healthcheck", "entrypoint", "networks", "expose", "labels", "deploy", "stop_signal",
               "env_file", "mem_limit", "cpus", "ulimits", "logging"}
    for name, svc in services.items():
        unknown = set(svc) - allowed
        if unknown:
            problems.append(f"{name}: unknown keys {sorted(unknown)}")
        if "image" not in svc and "build" not in svc:
            problems.append(f"{name}: neither image nor build")
        if "build" in svc:
            ctx = COMPOSE / svc["build"].get("context", ".")
            if not (ctx / svc["build"].get("dockerfile", "Dockerfile")).exists():
                problems.append(f"{name}: build context {svc['build']} has no Dockerfile")
        for p in svc.get("ports", []):
            if not re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+(/tcp|/udp)?", str(p)):
                problems.append(f"{name}: port {p!r} is not HOST:CONTAINER")
        for v in svc.get("volumes", []):
            host = str(v).split(":")[0]
            if host.startswith(".") and not (COMPOSE / host).exists():
                problems.append(f"{name}: volume source {host} does not exist")
        deps = svc.get("depends_on", [])
        for dep in (deps if isinstance(deps, list) else deps.keys()):
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
        if isinstance(svc.get("image"), str) and svc["image"].endswith(":latest"):
            problems.append(f"{name}: image tag :latest")
    loupe = services.get("loupe", {})
    if loupe.get("read_only") is not True or "ALL" not in loupe.get("cap_drop", []):
        problems.append("loupe: should run read_only with cap_drop ALL like the Deployment")
    env = loupe.get("environment") or {}
    grace = str(loupe.get("stop_grace_period", "10s"))
    m = re.fullmatch(r"(\d+)s", grace)
    delay = ms_setting("shutdown.drain_delay_ms", env, 5000)
    deadline = ms_setting("shutdown.deadline_ms", env, 4000)
    if not m or int(m.group(1)) * 1000 < delay + deadline + 2000:
        problems.append(f"loupe: stop_grace_period {grace} shorter than the drain ({delay + deadline} ms + margin)")
    check("compose.yaml structure (services, ports, volumes, depends_on, grace period)", problems)


def grafana_exprs(dashboard: dict):
    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(dashboard.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield p.get("title", "?"), t["expr"]
    for a in dashboard.get("annotations", {}).get("list", []):
        if a.get("expr"):
            yield "annotation " + a.get("name", "?"), a["expr"]


def grafana_variable_queries(dashboard: dict):
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            yield "variable " + v.get("name", "?"), q


def substitute_grafana_variables(expr: str) -> str:
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?", ".*", expr)


def check_dashboard(known: set[str], scraped: set[str], exprs_out: Path | None):
    problems = []
    paths = sorted(DASHBOARDS.glob("*.json"))
    if not paths:
        check("Grafana dashboards", "none in Deploy/dashboards")
        return
    rules = []
    for path in paths:
        try:
            dash = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            check(f"{rel(path)} parses", str(e))
            continue
        exprs = list(grafana_exprs(dash))
        if not exprs:
            problems.append(f"{rel(path)}: no PromQL targets")
        for title, expr in exprs + list(grafana_variable_queries(dash)):
            for metric in sorted(promql_metrics(expr)):
                if not metric_known(metric, known):
                    problems.append(f"{rel(path)} panel {title!r}: {metric} is not exported by the service sources")
                elif scraped and not metric_known(metric, scraped):
                    problems.append(f"{rel(path)} panel {title!r}: {metric} is not in the live /metrics scrape")
            if not title.startswith("variable "):
                rules.append({"record": f"dashboard:expr{len(rules)}", "expr": substitute_grafana_variables(expr)})
        ids = [p.get("id") for p in dash.get("panels", [])]
        if len(ids) != len(set(ids)):
            problems.append(f"{rel(path)}: duplicate panel ids")
        # Layout: inside the 24-column grid, no two panels on the same cells.
        cells = {}
        for p in dash.get("panels", []):
            g = p.get("gridPos", {})
            x, y, w, h = g.get("x", 0), g.get("y", 0), g.get("w", 0), g.get("h", 0)
            if w <= 0 or h <= 0 or x < 0 or x + w > 24:
                problems.append(f"{rel(path)} panel {p.get('title')!r}: gridPos {g} outside the 24-column grid")
            for cx in range(x, x + w):
                for cy in range(y, y + h):
                    if (cx, cy) in cells:
                        problems.append(f"{rel(path)} panels {cells[(cx, cy)]!r} and {p.get('title')!r} overlap")
                        break
                    cells[(cx, cy)] = p.get("title")
                else:
                    continue
                break
    check("Grafana dashboards parse and use only metrics the service exports", problems)
    if exprs_out:
        # Written as recording rules so that promtool checks the PromQL syntax of every panel.
        exprs_out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))


def check_alert_metrics(known: set[str], scraped: set[str]):
    problems = []
    paths = sorted(p for p in ALERTS.glob("*.yaml") if not p.name.endswith(".test.yaml"))
    names = set()
    for path in paths:
        doc = yaml.safe_load(path.read_text())
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    names.add(rule["alert"])
                    for key in ("summary", "description"):
                        if key not in rule.get("annotations", {}):
                            problems.append(f"{rule['alert']}: no {key} annotation")
                    if "severity" not in rule.get("labels", {}):
                        problems.append(f"{rule['alert']}: no severity label")
                for metric in sorted(promql_metrics(rule["expr"])):
                    if metric.startswith("loupe:"):
                        continue
                    if not metric_known(metric, known):
                        problems.append(f"{rel(path)} {rule.get('alert') or rule.get('record')}: "
                                        f"{metric} is not exported by the service sources")
                    elif scraped and not metric_known(metric, scraped):
                        problems.append(f"{rel(path)} {rule.get('alert') or rule.get('record')}: "
                                        f"{metric} is not in the live /metrics scrape")
    check(f"alert rules ({len(names)} alerts) use only exported metrics and carry severity/summary/description", problems)


def docker_context_files() -> list[str]:
    """The tracked files `docker build .` would send, after .dockerignore (Docker's rules: patterns
    match from the context root, a match on a folder covers everything in it, later lines win, `!`
    re-includes)."""
    import fnmatch
    import subprocess
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file but build output
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not any(part.startswith(".build") for part in p.relative_to(ROOT).parts)]
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]

    def matches(pattern: str, path: str) -> bool:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/") and any(fnmatch.fnmatchcase("/".join(parts[j:i]), pattern[3:])
                                                 for j in range(i)):
                return True
        return False

    kept = []
    for f in filter(None, files):
        excluded = False
        for p in patterns:
            negated = p.startswith("!")
            if matches(p.lstrip("!"), f):
                excluded = not negated
        if not excluded and (ROOT / f).exists():
            kept.append(f)
    return kept


def main() -> int:
    scraped_path = os.environ.get("LOUPE_METRICS_SCRAPE")
    args = sys.argv[1:]
    if args[:1] == ["--docker-context"] and len(args) == 2:
        # Copies the Docker build context into args[1] (scripts/validate-deploy.sh then checks
        # that the package loads there and that the Dockerfile's COPY sources are in it).
        import shutil
        dest = Path(args[1])
        for f in docker_context_files():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
        return 0
    if "--metrics-only" in args:
        # Only the metric-name checks, against the sources and the scrape in LOUPE_METRICS_SCRAPE
        # (scripts/runtime-contract.sh saves one from the running server).
        if not scraped_path:
            print("--metrics-only needs LOUPE_METRICS_SCRAPE=<file with a /metrics scrape>")
            return 2
        known, scraped = source_metric_names(), exposition_metric_names(scraped_path)
        check("the /metrics scrape has loupe_* metrics", None if any(n.startswith("loupe_") for n in scraped)
              else "no loupe_* family in the scrape")
        check_dashboard(known, scraped, None)
        check_alert_metrics(known, scraped)
        print(f"validate_deploy.py: {passes} passed, {len(failures)} failed")
        return 1 if failures else 0
    exprs_out = Path(args[0]) if args else None
    docs = k8s_documents()
    check_core_schemas(docs)
    check_custom_resources(docs)
    check_consistency([(p, d) for p, d in docs if p.parent == K8S or p.parent == KSERVE])
    check_env_names(docs)
    check_configmap()
    check_kustomization()
    check_dockerfile()
    check_compose()
    known = source_metric_names()
    scraped = exposition_metric_names(scraped_path)
    check("the service sources export loupe_* metrics", None if known else "no \"loupe_…\" literal in Sources/")
    check_dashboard(known, scraped, exprs_out)
    check_alert_metrics(known, scraped)
    print(f"validate_deploy.py: {passes} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
