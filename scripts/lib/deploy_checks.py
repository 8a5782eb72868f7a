"""The Python half of scripts/lib/deploy_checks.sh: offline checks of what operators deploy.

Run by deploy_checks.sh with the virtualenv it installs (PyYAML, jsonschema,
kubernetes-validate). Each subcommand prints what is wrong, one line per problem, to stderr,
a one-line summary to stdout, and exits 1 if anything is wrong:

    alerts       deploy/prometheus/alerts.yml: for, severity, summary, description, a
                 runbook_url whose anchor exists in docs/operations.md, known metrics only
    dashboard    deploy/grafana/intake.json: valid, schemaVersion >= 36, a prometheus
                 `datasource` variable, every panel and target on it, known metrics only
    compose      compose.yaml: every Intake service builds its image; the monitoring
                 profile's files exist
    k8s-validate FILE...  every core Kubernetes object against kubernetes-validate's
                 schemas (strict); a kind it has no schema for is an error, not a warning
    scaledobject every KEDA ScaledObject against deploy/k8s/schemas/keda-scaledobject.json
    k8s-policy   probes, grace periods, security contexts, resources, image placeholder,
                 the ScaledObject's Redis keys and targets
    kustomize-files  every file a kustomization names exists and parses (used when no
                 kubectl or kustomize is installed to build the base)
    dockerfile   pinned base images, apt-get hygiene, a numeric non-root USER, no ADD of
                 URLs, every binary copied from the build stage is a workspace binary, and
                 the build stage installs every tool the native crates' build scripts run
"""

import json
import os
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"

# The metrics Intake's processes export (docs/contract.md §6), and `up`, which Prometheus
# adds per target. Dashboards and alerts may use nothing else.
COUNTERS_AND_GAUGES = {
    "http_requests_total",
    "intake_submissions_total",
    "intake_queue_depth",
    "intake_queue_oldest_waiting_seconds",
    "intake_queue_in_flight",
    "intake_workers_alive",
    "intake_failed_registrations",
    "intake_worker_jobs_total",
    "intake_worker_job_retries_total",
    "intake_worker_jobs_in_flight",
    "intake_build_info",
    "intake_email_outcomes_total",
    "intake_upload_breaker_open",
    "intake_webhook_deliveries_total",
    "intake_webhook_oldest_undelivered_seconds",
    "intake_webhook_deliveries_pending",
    "intake_webhook_endpoints_disabled",
}
HISTOGRAMS = {"http_request_duration_seconds", "intake_worker_step_duration_seconds"}
KNOWN_METRICS = (
    COUNTERS_AND_GAUGES
    | HISTOGRAMS
    | {h + suffix for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)
PROMETHEUS_SYNTHETIC = {"up"}
PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
}

problems = []


def problem(message):
    problems.append(message)
    print(message, file=sys.stderr)


def finish(summary):
    if problems:
        print(f"{len(problems)} problem(s)")
        sys.exit(1)
    print(summary)


def load_yaml_documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def metric_names(expr):
    """Metric names in a PromQL expression: what is left once strings, label matchers,
    ranges and grouping labels are gone, minus function names and keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        name = match.group(0)
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def github_anchors(markdown):
    """The anchors GitHub gives a Markdown file's headings."""
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        title = re.sub(r"`", "", m.group(1)).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        anchors.add(slug)
    return anchors


# ------------------------------------------------------------------------------- alerts
def cmd_alerts():
    rules_path = ROOT / "deploy/prometheus/alerts.yml"
    doc = ROOT / "docs/operations.md"
    anchors = github_anchors(doc.read_text(encoding="utf-8"))
    rules = yaml.safe_load(rules_path.read_text(encoding="utf-8"))
    count = 0
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" not in rule:
                continue
            count += 1
            name = rule["alert"]
            where = f"{rules_path.relative_to(ROOT)}: {name}"
            if not rule.get("for"):
                problem(f"{where}: no `for:`")
            labels = rule.get("labels") or {}
            if labels.get("severity") not in ("page", "ticket"):
                problem(f"{where}: labels.severity must be page or ticket, not {labels.get('severity')!r}")
            notes = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not notes.get(key):
                    problem(f"{where}: no annotations.{key}")
            url = notes.get("runbook_url", "")
            m = re.fullmatch(r"docs/operations\.md#([\w-]+)", url)
            if not m:
                problem(f"{where}: runbook_url {url!r} is not docs/operations.md#<anchor>")
            elif m.group(1) not in anchors:
                problem(f"{where}: runbook_url anchor #{m.group(1)} is not a heading of docs/operations.md")
            unknown = metric_names(rule["expr"]) - KNOWN_METRICS - PROMETHEUS_SYNTHETIC
            for metric in sorted(unknown):
                problem(f"{where}: unknown metric {metric!r} in expr")
    if count == 0:
        problem(f"{rules_path}: no alerts")
    finish(f"{count} alerts with for, severity, summary, description and a runbook in docs/operations.md")


# ---------------------------------------------------------------------------- dashboard
def cmd_dashboard():
    path = ROOT / "deploy/grafana/intake.json"
    try:
        dash = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        problem(f"{path}: not valid JSON: {err}")
        finish("")
        return
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        problem(f"{path}: schemaVersion {dash.get('schemaVersion')!r} < 36")
    if not dash.get("uid") or not dash.get("title"):
        problem(f"{path}: no uid or title")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds_var = variables.get("datasource")
    if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        problem(f"{path}: no template variable `datasource` of type datasource, query prometheus")

    def on_variable(ds):
        return isinstance(ds, dict) and ds.get("type") == "prometheus" and ds.get("uid") == "${datasource}"

    panels = []

    def walk(items):
        for p in items:
            panels.append(p)
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problem(f"{path}: panel ids are not unique")
    targets = 0
    for p in panels:
        title = p.get("title", "?")
        if p.get("type") == "row":
            continue
        if not on_variable(p.get("datasource")):
            problem(f"{path}: panel {title!r}: datasource is not the $datasource variable")
        if "gridPos" not in p:
            problem(f"{path}: panel {title!r}: no gridPos")
        if not p.get("targets"):
            problem(f"{path}: panel {title!r}: no targets")
        for t in p.get("targets", []):
            targets += 1
            if not on_variable(t.get("datasource")):
                problem(f"{path}: panel {title!r} target {t.get('refId')}: datasource is not $datasource")
            expr = t.get("expr", "")
            if not expr:
                problem(f"{path}: panel {title!r} target {t.get('refId')}: no expr")
            for metric in sorted(metric_names(expr) - KNOWN_METRICS):
                problem(f"{path}: panel {title!r}: unknown metric {metric!r} in {expr!r}")
    finish(f"{len(panels)} panels, {targets} queries, all on $datasource and known metrics")


# ------------------------------------------------------------------------------ compose
def cmd_compose():
    path = ROOT / "compose.yaml"
    compose = yaml.safe_load(path.read_text(encoding="utf-8"))
    services = compose.get("services", {})
    built = 0
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        if image.startswith("intake:") or name in ("api", "worker", "admin"):
            if "build" not in svc:
                problem(f"{path.name}: service {name} uses {image or 'no image'} but does not build it")
            else:
                built += 1
    for name in ("prometheus", "grafana"):
        svc = services.get(name)
        if not svc:
            problem(f"{path.name}: no {name} service")
            continue
        if "monitoring" not in svc.get("profiles", []):
            problem(f"{path.name}: service {name} is not in the monitoring profile")
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./") and not (ROOT / source).exists():
                problem(f"{path.name}: service {name} mounts {source}, which does not exist")
    finish(f"{built} Intake services build their image; monitoring profile files present")


# --------------------------------------------------------------------------- kubernetes
CRD_GROUPS = ("keda.sh/",)


def is_crd_kind(obj):
    return str(obj.get("apiVersion", "")).startswith(CRD_GROUPS)


def is_kustomize_file(obj):
    return str(obj.get("apiVersion", "")).startswith("kustomize.config.k8s.io/")


def is_patch(obj):
    return "$patch" in obj


def cmd_k8s_validate(versions, files):
    import kubernetes_validate

    checked = 0
    for file in files:
        for obj in load_yaml_documents(file):
            if is_kustomize_file(obj) or is_patch(obj) or is_crd_kind(obj):
                continue
            ident = f"{file}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            for version in versions:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as err:
                    problem(f"{ident}: invalid for Kubernetes {version}: {err.message} at {'/'.join(map(str, err.path))}")
                except kubernetes_validate.SchemaNotFoundError:
                    problem(f"{ident}: no Kubernetes {version} schema for {obj.get('apiVersion')} {obj.get('kind')}")
                except Exception as err:  # an unsupported version, an unreadable schema
                    problem(f"{ident}: cannot validate for Kubernetes {version}: {type(err).__name__} {err}")
            checked += 1
    finish(f"{checked} objects valid (strict) for Kubernetes {', '.join(versions)}")


def cmd_scaledobject(files):
    import jsonschema

    schema_path = K8S / "schemas/keda-scaledobject.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    checked = 0
    for file in files:
        for obj in load_yaml_documents(file):
            if obj.get("kind") != "ScaledObject" or is_patch(obj):
                continue
            checked += 1
            for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
                problem(f"{file}: ScaledObject/{obj.get('metadata', {}).get('name')}: {err.message} at /{'/'.join(map(str, err.path))}")
    if checked == 0:
        problem("no ScaledObject found")
    finish(f"{checked} ScaledObject(s) valid against {schema_path.relative_to(ROOT)}")


def kustomization_files(directory, seen=None):
    """Every file a kustomization (and the kustomizations it names) refers to."""
    seen = set() if seen is None else seen
    directory = Path(directory)
    kfile = directory / "kustomization.yaml"
    if kfile in seen:
        return []
    seen.add(kfile)
    k = yaml.safe_load(kfile.read_text(encoding="utf-8"))
    out = []
    for key in ("resources", "components"):
        for entry in k.get(key, []) or []:
            target = (directory / entry).resolve()
            if target.is_dir():
                if (target / "kustomization.yaml").exists():
                    out.extend(kustomization_files(target, seen))
                else:
                    problem(f"{kfile}: {key} entry {entry} is a directory without kustomization.yaml")
            else:
                out.append(target)
    for patch in k.get("patches", []) or []:
        if isinstance(patch, dict) and "path" in patch:
            out.append((directory / patch["path"]).resolve())
    return out


def cmd_kustomize_files(directories):
    files = []
    for d in directories:
        files.extend(kustomization_files(d))
    for f in files:
        if not f.exists():
            problem(f"{f}: named in a kustomization but missing")
            continue
        try:
            load_yaml_documents(f)
        except yaml.YAMLError as err:
            problem(f"{f}: does not parse: {err}")
    finish(f"{len(files)} files named by the kustomizations exist and parse")


def cmd_k8s_policy():
    docs = []
    for f in sorted(K8S.rglob("*.yaml")):
        for obj in load_yaml_documents(f):
            docs.append((f.relative_to(ROOT), obj))
    config = next(o for _, o in docs if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == "intake-config")
    deadline = int(config["data"].get("INTAKE_SHUTDOWN_DEADLINE_SECS", "30"))
    prefix = config["data"].get("INTAKE_REDIS_PREFIX", "intake")
    deployments = {o["metadata"]["name"]: (f, o) for f, o in docs if o.get("kind") == "Deployment"}
    for name in ("intake-api", "intake-worker", "intake-admin"):
        if name not in deployments:
            problem(f"deploy/k8s: no Deployment {name}")
    for name, (f, d) in deployments.items():
        where = f"{f}: Deployment/{name}"
        pod = d["spec"]["template"]["spec"]
        grace = pod.get("terminationGracePeriodSeconds", 30)
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot"):
            problem(f"{where}: pod securityContext.runAsNonRoot is not true")
        for c in pod["containers"]:
            cw = f"{where} container {c['name']}"
            pre_stop = 0
            cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            if len(cmd) == 2 and cmd[0] == "sleep":
                pre_stop = int(cmd[1])
            if grace <= deadline + pre_stop:
                problem(f"{cw}: terminationGracePeriodSeconds {grace} is not above the drain deadline {deadline} s + preStop {pre_stop} s")
            if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/health/live":
                problem(f"{cw}: livenessProbe is not GET /health/live")
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/health/ready":
                problem(f"{cw}: readinessProbe is not GET /health/ready")
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(f"{cw}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problem(f"{cw}: readOnlyRootFilesystem is not true")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problem(f"{cw}: capabilities do not drop ALL")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        problem(f"{cw}: no resources.{kind}.{r}")
            if c.get("image") != "intake":
                problem(f"{cw}: image {c.get('image')!r} is not the placeholder `intake` that kustomization.yaml's images: sets")
    pdb_targets = {o["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name") for _, o in docs if o.get("kind") == "PodDisruptionBudget"}
    for name in ("intake-api", "intake-worker"):
        if name not in pdb_targets:
            problem(f"deploy/k8s: no PodDisruptionBudget for {name}")
    services = {o["metadata"]["name"]: o for _, o in docs if o.get("kind") == "Service"}
    admin = services.get("intake-admin")
    if not admin or admin["spec"].get("type", "ClusterIP") != "ClusterIP":
        problem("deploy/k8s: the admin Service must be ClusterIP")
    for f, o in docs:
        if o.get("kind") in ("ScaledObject", "HorizontalPodAutoscaler") and not is_patch(o):
            target = o["spec"]["scaleTargetRef"]["name"]
            if target not in deployments:
                problem(f"{f}: {o['kind']} scales {target}, which is no Deployment here")
        if o.get("kind") == "ScaledObject" and not is_patch(o):
            keys = {t["metadata"].get("listName") for t in o["spec"]["triggers"] if t["type"] == "redis"}
            expected = {f"{prefix}:registrations:active", f"{prefix}:registrations:scheduled"}
            if keys != expected:
                problem(f"{f}: redis triggers read {sorted(keys)}, the queue's keys are {sorted(expected)} (INTAKE_REDIS_PREFIX={prefix})")
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    if not any(i.get("name") == "intake" for i in k.get("images", [])):
        problem("deploy/k8s/kustomization.yaml: no images: entry for `intake`")
    finish(f"{len(deployments)} Deployments: probes, grace periods above the {deadline} s drain, security contexts, resources; PDBs, ScaledObject keys")


# --------------------------------------------------------------------------- dockerfile
# Every crate in Cargo.lock that is a -sys crate or runs a native build (depends on cc,
# cmake, pkg-config or bindgen), with the tools its build script needs in the build stage,
# or why it is not built for the image (linux/amd64, the workspace's features). A crate that
# is new to Cargo.lock fails the check until someone decides which.
NATIVE_CRATES = {
    "ring": ({"gcc", "libc6-dev"}, None),  # C and pregenerated assembly through cc
    "blake3": ({"gcc", "libc6-dev"}, None),  # its SIMD kernels, assembly and C through cc
    "tikv-jemalloc-sys": ({"gcc", "libc6-dev", "make"}, None),  # sh configure, then make
    "libsqlite3-sys": (None, "only sqlx's SQLite driver uses it, and no workspace crate enables sqlx's `sqlite` feature"),
    "generator": (None, "only through loom, under cfg(loom)"),
    "iana-time-zone-haiku": (None, "Haiku only"),
    "linux-raw-sys": (None, "no build script that runs tools (Rust only)"),
    "windows-sys": (None, "Windows only"),
    "core-foundation-sys": (None, "macOS and iOS only"),
    "security-framework-sys": (None, "macOS and iOS only"),
    "jni-sys": (None, "Android only"),
    "js-sys": (None, "wasm32 only"),
    "web-sys": (None, "wasm32 only"),
}
NATIVE_BUILD_DEPS = {"cc", "cmake", "pkg-config", "bindgen"}


def dockerfile_instructions(text):
    """(stage, instruction, arguments) per instruction, continuation lines joined."""
    out, stage, current = [], None, ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if stripped.endswith("\\"):
            continue
        instr, _, args = current.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            stage = {"image": m.group(1), "name": (m.group(2) or "").lower()}
        out.append((stage, instr, args.strip()))
        current = ""
    return out


def workspace_binaries():
    ws = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
    bins = set()
    for member in ws["workspace"]["members"]:
        manifest = tomllib.loads((ROOT / member / "Cargo.toml").read_text(encoding="utf-8"))
        explicit = manifest.get("bin", [])
        bins.update(b["name"] for b in explicit)
        if not explicit and (ROOT / member / "src/main.rs").exists():
            bins.add(manifest["package"]["name"])
    return bins


def cmd_dockerfile():
    path = ROOT / "Dockerfile"
    instructions = dockerfile_instructions(path.read_text(encoding="utf-8"))
    stages = {}
    for stage, instr, args in instructions:
        if instr == "FROM":
            name = stage["name"] or f"stage{len(stages)}"
            stages[name] = {"image": stage["image"], "parent": None, "apt": set(), "run": []}
            base = stage["image"].lower()
            if base in stages:
                stages[name]["parent"] = base
                continue
            image, _, tag = stage["image"].partition("@")[0].partition(":")
            if not tag or tag == "latest":
                problem(f"Dockerfile: FROM {stage['image']}: pin a tag (not latest, not none)")
            continue
        name = stage["name"] or f"stage{len(stages) - 1}"
        if instr == "ADD" and re.search(r"https?://", args):
            problem(f"Dockerfile: ADD {args}: fetch with a pinned checksum in RUN instead of ADD of a URL")
        if instr == "RUN":
            stages[name]["run"].append(args)
            for cmd in re.split(r"&&|;", args):
                words = cmd.split()
                if "apt-get" in words and "install" in words:
                    if "--no-install-recommends" not in words:
                        problem(f"Dockerfile: `{cmd.strip()}`: add --no-install-recommends")
                    stages[name]["apt"].update(w for w in words[words.index("install") + 1:] if not w.startswith("-"))
            if "apt-get" in args and "install" in args and "rm -rf /var/lib/apt/lists" not in args:
                problem(f"Dockerfile: RUN {args[:60]}…: remove /var/lib/apt/lists/* in the same RUN")
            if "apt-get install" in args and "apt-get update" not in args:
                problem(f"Dockerfile: RUN {args[:60]}…: apt-get update in the same RUN as install")
    final = list(stages)[-1]
    users = [args for stage, instr, args in instructions if instr == "USER" and (stage["name"] or "") == final]
    if not users:
        problem(f"Dockerfile: final stage {final} has no USER (it would run as root)")
    else:
        user = users[-1].split(":")[0]
        if not user.isdigit() or user == "0":
            problem(f"Dockerfile: final stage USER {users[-1]}: use a numeric non-root user (runAsNonRoot can check it)")

    def apt_with_parents(name):
        pkgs = set()
        while name:
            pkgs |= stages[name]["apt"]
            name = stages[name]["parent"]
        return pkgs

    # Binaries copied from the build stage are workspace binaries that the stage builds.
    bins = workspace_binaries()
    builder_stages = set()
    copied = set()
    for stage, instr, args in instructions:
        m = re.match(r"--from=(\S+)\s+(.*)", args) if instr == "COPY" else None
        if not m:
            continue
        sources = m.group(2).split()[:-1]
        for src in sources:
            if "/target/release/" in src:
                builder_stages.add(m.group(1).lower())
                copied.add(src.rsplit("/", 1)[1])
    for binary in sorted(copied):
        if binary not in bins:
            problem(f"Dockerfile: copies {binary}, which is no [[bin]] of the workspace ({', '.join(sorted(bins))})")
    for stage in builder_stages:
        built = " ".join(stages[stage]["run"])
        for binary in sorted(copied):
            if binary not in built and f"-p {binary}" not in built:
                problem(f"Dockerfile: stage {stage} does not build {binary} (cargo build --bin {binary})")
    # Tools the native crates' build scripts run are installed in the build stage.
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text(encoding="utf-8"))
    needed = set()
    for pkg in lock["package"]:
        deps = {d.split()[0] for d in pkg.get("dependencies", [])}
        if not (pkg["name"].endswith("-sys") or deps & NATIVE_BUILD_DEPS):
            continue
        if pkg["name"] not in NATIVE_CRATES:
            problem(f"Cargo.lock: {pkg['name']} has a native build nobody has reviewed: add it to NATIVE_CRATES in {Path(__file__).relative_to(ROOT)} with the tools it needs")
            continue
        tools, why_not = NATIVE_CRATES[pkg["name"]]
        if tools:
            needed |= tools
    if "libsqlite3-sys" in {p["name"] for p in lock["package"]}:
        for member in ["."] + tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]:
            text = (ROOT / member / "Cargo.toml").read_text(encoding="utf-8")
            if re.search(r'sqlx[^\n]*"sqlite', text):
                problem(f"{member}/Cargo.toml enables sqlx's sqlite: libsqlite3-sys would be built; review its needs")
    for stage in builder_stages:
        missing = needed - apt_with_parents(stage)
        if missing:
            problem(f"Dockerfile: build stage {stage} does not install {', '.join(sorted(missing))} (needed by the native crates' build scripts)")
    finish(f"{len(stages)} stages: pinned bases, apt hygiene, non-root USER {users[-1] if users else '?'}, copies {len(copied)} workspace binaries, build stage has {', '.join(sorted(needed))}")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, args = argv[1], argv[2:]
    if cmd == "alerts":
        cmd_alerts()
    elif cmd == "dashboard":
        cmd_dashboard()
    elif cmd == "compose":
        cmd_compose()
    elif cmd == "k8s-validate":
        versions = os.environ.get("DEPLOY_K8S_VERSIONS", "1.30.0").split()
        cmd_k8s_validate(versions, args)
    elif cmd == "scaledobject":
        cmd_scaledobject(args)
    elif cmd == "k8s-policy":
        cmd_k8s_policy()
    elif cmd == "kustomize-files":
        cmd_kustomize_files(args)
    elif cmd == "dockerfile":
        cmd_dockerfile()
    else:
        print(f"unknown check {cmd!r}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
