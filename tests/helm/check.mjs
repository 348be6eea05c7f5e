// check.mjs: checks the objects `helm template` rendered from deploy/helm/confidoc
// (tests/integration/test_helm.sh). Every object is validated against the
// Kubernetes schemas (kubernetes-models: the kind from its apiVersion and kind,
// then .validate()); a kind it does not know must have a schema of our own
// below, or it fails. Then the security properties of the chart are checked on
// the objects themselves. One line per check: "ok - [PROFILE] NAME" or
// "not ok - [PROFILE] NAME (details)"; exit 1 when any check failed.
//
//   node check.mjs --profile default|galera|cc|cas-only|csi FILE
//   node check.mjs --values-doc values.yaml values.schema.json README.md
//   node check.mjs --values-table values.yaml values.schema.json   (README.md's table)
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import yaml from "js-yaml";

let failed = 0;
let profile = "";
function report(name, problems) {
  if (problems.length === 0) {
    console.log(`ok - [${profile}] ${name}`);
  } else {
    failed++;
    const shown = problems.slice(0, 8).join("; ");
    const more = problems.length > 8 ? `; and ${problems.length - 8} more` : "";
    console.log(`not ok - [${profile}] ${name} (${shown}${more})`);
  }
}

// ---------------------------------------------------------------- schemas

// Kinds that kubernetes-models does not know, with a small schema of our own:
// the fields the chart uses, each with its type, and nothing else.
const OWN_SCHEMAS = {
  "monitoring.coreos.com/v1/ServiceMonitor": (o) => {
    const p = [];
    const s = o.spec;
    if (!s || typeof s !== "object") return ["spec: missing"];
    const allowed = ["selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels"];
    for (const k of Object.keys(s)) if (!allowed.includes(k)) p.push(`spec.${k}: unknown field`);
    if (!s.selector || typeof s.selector !== "object") p.push("spec.selector: required object");
    if (!Array.isArray(s.endpoints) || s.endpoints.length === 0) p.push("spec.endpoints: required non-empty list");
    for (const [i, e] of (s.endpoints || []).entries()) {
      const ek = ["port", "targetPort", "path", "scheme", "interval", "scrapeTimeout", "tlsConfig", "honorLabels", "relabelings", "metricRelabelings"];
      for (const k of Object.keys(e)) if (!ek.includes(k)) p.push(`spec.endpoints[${i}].${k}: unknown field`);
      if (typeof e.port !== "string") p.push(`spec.endpoints[${i}].port: must be a port name`);
      if (e.path !== undefined && !/^\//.test(e.path)) p.push(`spec.endpoints[${i}].path: must start with /`);
      if (e.scheme !== undefined && !["http", "https"].includes(e.scheme)) p.push(`spec.endpoints[${i}].scheme: http or https`);
      if (e.interval !== undefined && !/^[0-9]+(ms|s|m|h)$/.test(e.interval)) p.push(`spec.endpoints[${i}].interval: a duration`);
      const t = e.tlsConfig;
      if (t !== undefined) {
        const tk = ["serverName", "ca", "cert", "keySecret", "insecureSkipVerify"];
        for (const k of Object.keys(t)) if (!tk.includes(k)) p.push(`spec.endpoints[${i}].tlsConfig.${k}: unknown field`);
        const ref = (r) => r && typeof r.name === "string" && typeof r.key === "string";
        for (const k of ["ca", "cert"]) {
          const v = t[k];
          if (v !== undefined && !(ref(v.secret) || ref(v.configMap))) p.push(`spec.endpoints[${i}].tlsConfig.${k}: a secret or configMap {name, key}`);
        }
        if (t.keySecret !== undefined && !ref(t.keySecret)) p.push(`spec.endpoints[${i}].tlsConfig.keySecret: {name, key}`);
      }
    }
    const ns = s.namespaceSelector;
    if (ns !== undefined && !(Array.isArray(ns.matchNames) || ns.any === true)) p.push("spec.namespaceSelector: matchNames or any");
    return p;
  },
};

function groupPath(apiVersion) {
  // "v1" -> "v1"; "apps/v1" -> "apps/v1"
  return apiVersion;
}

async function validate(o) {
  const key = `${o.apiVersion}/${o.kind}`;
  if (OWN_SCHEMAS[key]) return OWN_SCHEMAS[key](o).map((m) => `${o.kind}/${o.metadata?.name}: ${m}`);
  let mod;
  try {
    mod = await import(`kubernetes-models/${groupPath(o.apiVersion)}/${o.kind}`);
  } catch {
    return [`${key} ${o.metadata?.name}: a kind with no schema (kubernetes-models has none, and check.mjs none of its own)`];
  }
  const Kind = mod[o.kind] || mod.default;
  try {
    new Kind(o).validate();
    return [];
  } catch (e) {
    const details = e.errors ? e.errors.map((x) => `${x.instancePath || x.dataPath || ""} ${x.message}`).join(", ") : e.message;
    return [`${o.kind}/${o.metadata?.name}: ${details}`];
  }
}

// ---------------------------------------------------------------- helpers

const WORKLOADS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "ReplicaSet"];
function podOf(o) {
  if (o.kind === "Pod") return { meta: o.metadata, spec: o.spec };
  if (WORKLOADS.includes(o.kind)) return { meta: o.spec?.template?.metadata || {}, spec: o.spec?.template?.spec };
  return null;
}
const component = (labels) => (labels || {})["app.kubernetes.io/component"];
const containersOf = (spec) => [...(spec.initContainers || []), ...(spec.containers || [])];
const id = (o) => `${o.kind}/${o.metadata?.name}`;

function selects(sel, labels) {
  labels = labels || {};
  for (const [k, v] of Object.entries(sel.matchLabels || {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions || []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    if (e.operator === "In" && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

const PEM_PRIVATE = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
const HEX64 = /(^|[^0-9a-fA-F])[0-9a-fA-F]{64}([^0-9a-fA-F]|$)/;

// ---------------------------------------------------------------- checks

// Pod Security "restricted" as the chart promises it, for one application pod.
function restricted(o, pod, allowSocketHostPath, socketDir) {
  const p = [];
  const s = pod.spec;
  const psc = s.securityContext || {};
  const where = id(o);
  if (s.automountServiceAccountToken !== false) p.push(`${where}: automountServiceAccountToken is not false`);
  for (const f of ["hostNetwork", "hostPID", "hostIPC"]) if (s[f]) p.push(`${where}: ${f}`);
  const allowedVolumes = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
  for (const v of s.volumes || []) {
    const type = Object.keys(v).find((k) => k !== "name");
    if (type === "hostPath" && allowSocketHostPath && v.name === "agent-socket" && v.hostPath.path === socketDir) continue;
    if (!allowedVolumes.includes(type)) p.push(`${where}: volume ${v.name} is ${type}`);
  }
  for (const c of containersOf(s)) {
    const sc = c.securityContext || {};
    const w = `${where} container ${c.name}`;
    const nonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
    const uid = sc.runAsUser ?? psc.runAsUser;
    const seccomp = (sc.seccompProfile ?? psc.seccompProfile)?.type;
    if (nonRoot !== true) p.push(`${w}: runAsNonRoot is not true`);
    if (uid === undefined || uid === 0) p.push(`${w}: runAsUser is ${uid === 0 ? "0" : "not set"}`);
    if (sc.allowPrivilegeEscalation !== false) p.push(`${w}: allowPrivilegeEscalation is not false`);
    if (sc.privileged) p.push(`${w}: privileged`);
    if (!(sc.capabilities?.drop || []).includes("ALL")) p.push(`${w}: capabilities do not drop ALL`);
    if ((sc.capabilities?.add || []).length) p.push(`${w}: adds capabilities ${sc.capabilities.add}`);
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") p.push(`${w}: seccompProfile is ${seccomp}`);
    if (sc.readOnlyRootFilesystem !== true) p.push(`${w}: readOnlyRootFilesystem is not true`);
    for (const m of c.volumeMounts || []) {
      const v = (s.volumes || []).find((x) => x.name === m.name);
      if (v?.hostPath && m.readOnly !== true) p.push(`${w}: host directory ${m.mountPath} is writable`);
    }
  }
  return p;
}

// The node agent: exactly the privileges its template documents.
function nodeAgent(o, pod, socketDir) {
  const p = [];
  const s = pod.spec;
  const w = id(o);
  if (o.kind !== "DaemonSet") p.push(`${w}: not a DaemonSet`);
  if (s.hostPID !== true) p.push(`${w}: hostPID is not true (it reads /proc/PID/exe of other pods)`);
  if (s.hostNetwork || s.hostIPC) p.push(`${w}: hostNetwork or hostIPC`);
  if (s.automountServiceAccountToken !== false) p.push(`${w}: automountServiceAccountToken is not false`);
  // The socket directory, and the node's identity (nodeAgent.identity.hostPath) read-only.
  const hostPaths = (s.volumes || []).filter((v) => v.hostPath && v.name !== "node-identity");
  if (hostPaths.length !== 1 || hostPaths[0].hostPath.path !== socketDir) p.push(`${w}: host paths ${hostPaths.map((v) => v.hostPath.path)} (only ${socketDir} and the node identity)`);
  for (const c of containersOf(s))
    for (const m of c.volumeMounts || [])
      if (m.name === "node-identity" && m.readOnly !== true) p.push(`${w}: the node identity is mounted writable`);
  for (const c of containersOf(s)) {
    const sc = c.securityContext || {};
    if (sc.privileged) p.push(`${w}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) p.push(`${w}: allowPrivilegeEscalation is not false`);
    if (sc.readOnlyRootFilesystem !== true) p.push(`${w}: readOnlyRootFilesystem is not true`);
    if (!(sc.capabilities?.drop || []).includes("ALL")) p.push(`${w}: capabilities do not drop ALL`);
    const add = sc.capabilities?.add || [];
    if (add.length !== 1 || add[0] !== "SYS_PTRACE") p.push(`${w}: adds [${add}] (only SYS_PTRACE)`);
    const seccomp = (sc.seccompProfile ?? s.securityContext?.seccompProfile)?.type;
    if (seccomp !== "RuntimeDefault") p.push(`${w}: seccompProfile is ${seccomp}`);
  }
  return p;
}

function resources(o, pod) {
  const p = [];
  for (const c of containersOf(pod.spec)) {
    const r = c.resources || {};
    if (!r.requests?.cpu || !r.requests?.memory) p.push(`${id(o)} container ${c.name}: no cpu and memory requests`);
    if (!r.limits?.memory) p.push(`${id(o)} container ${c.name}: no memory limit`);
  }
  return p;
}

function keyMaterial(objs) {
  const p = [];
  let bootstrap = 0;
  for (const o of objs.filter((x) => x.kind === "Secret" || x.kind === "ConfigMap")) {
    const values = [];
    for (const [k, v] of Object.entries(o.data || {})) values.push([k, o.kind === "Secret" ? Buffer.from(v, "base64").toString("latin1") : String(v)]);
    for (const [k, v] of Object.entries(o.stringData || {})) values.push([k, String(v)]);
    for (const [k, v] of Object.entries(o.binaryData || {})) values.push([k, Buffer.from(v, "base64").toString("latin1")]);
    const labels = o.metadata?.labels || {};
    // The one documented exception: the CAS's sealing key, alone in its Secret.
    const isBootstrap =
      o.kind === "Secret" && labels["confidoc.io/bootstrap-material"] === "true" && component(labels) === "cas" &&
      /-cas-bootstrap$/.test(o.metadata.name) && values.length === 1 && values[0][0] === "sealing.key";
    if (isBootstrap) {
      bootstrap++;
      if (!/^[0-9a-f]{64}$/.test(values[0][1])) p.push(`${id(o)}: sealing.key is not 64 hex digits`);
      continue;
    }
    for (const [k, v] of values) {
      if (PEM_PRIVATE.test(v)) p.push(`${id(o)} ${k}: a PEM private key`);
      if (HEX64.test(v)) p.push(`${id(o)} ${k}: a 64-hex-digit key`);
    }
  }
  if (bootstrap > 1) p.push(`${bootstrap} bootstrap Secrets (at most one)`);
  return p;
}

function networkPolicies(objs, pods) {
  const p = [];
  const nps = objs.filter((o) => o.kind === "NetworkPolicy");
  for (const { o, pod } of pods) {
    const labels = pod.meta?.labels || {};
    const ns = o.metadata?.namespace;
    const mine = nps.filter((n) => n.metadata?.namespace === ns && selects(n.spec.podSelector || {}, labels));
    const types = new Set(mine.flatMap((n) => n.spec.policyTypes || ["Ingress"]));
    if (!types.has("Ingress") || !types.has("Egress")) p.push(`${id(o)}: no NetworkPolicy selects its pods for ${["Ingress", "Egress"].filter((t) => !types.has(t)).join(" and ")}`);
    // Default deny: one that selects it with both types and no rules at all.
    if (!mine.some((n) => (n.spec.policyTypes || []).includes("Ingress") && (n.spec.policyTypes || []).includes("Egress") && !(n.spec.ingress || []).length && !(n.spec.egress || []).length))
      p.push(`${id(o)}: no default-deny NetworkPolicy selects its pods`);
  }
  return p;
}

function sha256(s) {
  return createHash("sha256").update(s).digest("hex");
}

// Each measured configuration file: the SHA-256 in the CAS's --var is the
// file the ConfigMap mounts, byte for byte.
function configHashes(objs) {
  const p = [];
  const cas = objs.find((o) => o.kind === "StatefulSet" && component(o.metadata?.labels) === "cas");
  if (!cas) return ["no CAS StatefulSet"];
  const args = cas.spec.template.spec.containers[0].command;
  const vars = {};
  args.forEach((a, i) => {
    if (args[i - 1] === "--var") vars[a.split("=")[0]] = a.slice(a.indexOf("=") + 1);
  });
  const cm = (c) => objs.find((o) => o.kind === "ConfigMap" && component(o.metadata?.labels) === c);
  const want = [
    ["API_CONF_SHA256", "api", "api.conf"],
    ["MIGRATE_CONF_SHA256", "api", "migrate.conf"],
    ["NGINX_CONF_SHA256", "nginx", "nginx.conf"],
    ["MY_CNF_SHA256", "mariadb", "my.cnf"],
  ];
  for (const [v, c, key] of want) {
    const m = cm(c);
    if (!m) {
      if (c !== "mariadb") p.push(`no ConfigMap of ${c}`);
      continue;
    }
    const got = sha256(m.data[key] || "");
    if (vars[v] !== got) p.push(`${v} is ${vars[v]}, ${c} ${key} hashes to ${got}`);
  }
  return p;
}

// Each launched container (`confidoc-cas run --session S ... -- PROGRAM`):
// S is one of the CAS's sessions, and every configuration file the session
// measures is mounted in that container as a file of its own (subPath: the
// launcher opens it with O_NOFOLLOW, and a ConfigMap volume's entries are
// links), at the path the session names once its ${VAR}s are substituted.
function sessions(objs) {
  const p = [];
  const cas = objs.find((o) => o.kind === "StatefulSet" && component(o.metadata?.labels) === "cas");
  const cm = objs.find((o) => o.kind === "ConfigMap" && component(o.metadata?.labels) === "cas");
  if (!cas || !cm) return ["no CAS StatefulSet or sessions ConfigMap"];
  const args = cas.spec.template.spec.containers[0].command;
  const vars = {};
  args.forEach((a, i) => {
    if (args[i - 1] === "--var") vars[a.slice(0, a.indexOf("="))] = a.slice(a.indexOf("=") + 1);
  });
  const measured = {};
  for (const [k, text] of Object.entries(cm.data || {})) {
    if (!k.endsWith(".yaml")) continue;
    const t = text.replace(/\$\{([A-Z_0-9]+)\}/g, (_, v) => {
      if (!(v in vars)) p.push(`session ${k}: \${${v}} is not a --var of the CAS`);
      return vars[v] ?? "";
    });
    let doc;
    try {
      doc = yaml.load(t);
    } catch (e) {
      p.push(`session ${k}: not YAML once substituted (${e.message.split("\n")[0]})`);
      continue;
    }
    measured[doc.name] = (doc.measurements?.config || []).map((c) => c.path);
  }
  let launched = 0;
  for (const o of objs) {
    const pod = podOf(o);
    if (!pod?.spec) continue;
    for (const c of containersOf(pod.spec)) {
      const cmd = c.command || [];
      if (cmd[1] !== "run" || !/confidoc-cas$/.test(cmd[0] || "")) continue;
      launched++;
      const s = cmd[cmd.indexOf("--session") + 1];
      if (!(s in measured)) {
        p.push(`${id(o)} container ${c.name}: session ${s} is not one of the CAS's`);
        continue;
      }
      for (const path of measured[s]) {
        const m = (c.volumeMounts || []).find((x) => x.mountPath === path);
        if (!m || !m.subPath) p.push(`${id(o)} container ${c.name}: ${path} (session ${s}) is not mounted as a file`);
      }
    }
  }
  if (launched === 0) p.push("no launched container");
  return p;
}

function placeholders(objs) {
  const p = [];
  for (const o of objs.filter((x) => x.kind === "ConfigMap"))
    for (const [k, v] of Object.entries(o.data || {})) {
      const m = String(v).match(/@[A-Z_]+@/);
      if (m) p.push(`${id(o)} ${k}: ${m[0]} left unfilled`);
    }
  return p;
}

function helmTest(objs) {
  const t = objs.filter((o) => o.kind === "Pod" && o.metadata?.annotations?.["helm.sh/hook"] === "test");
  if (t.length === 0) return ["no Pod with the annotation helm.sh/hook: test"];
  const p = [];
  for (const o of t) {
    const cmd = (o.spec.containers || []).flatMap((c) => c.command || []).join(" ");
    if (!/test\.sh/.test(cmd)) p.push(`${id(o)}: does not run test.sh`);
  }
  const cm = objs.find((o) => o.kind === "ConfigMap" && o.data?.["test.sh"]);
  const script = cm?.data["test.sh"] || "";
  for (const step of ["confidoc-cas attest", "secret=SERVER_CA", "/users/create_account", "/documents/create_document", "/documents/31"])
    if (!script.includes(step)) p.push(`test.sh lacks ${step}`);
  return p;
}

function galera(objs) {
  const p = [];
  const sts = objs.find((o) => o.kind === "StatefulSet" && component(o.metadata?.labels) === "mariadb");
  if (!sts) return ["no MariaDB StatefulSet"];
  if (sts.spec.replicas !== 3) p.push(`replicas ${sts.spec.replicas}, expected 3`);
  if (sts.spec.podManagementPolicy !== "Parallel") p.push(`podManagementPolicy ${sts.spec.podManagementPolicy}`);
  const cnf = objs.find((o) => o.kind === "ConfigMap" && component(o.metadata?.labels) === "mariadb")?.data?.["my.cnf"] || "";
  for (const re of [/^wsrep_on=ON$/m, /^wsrep_provider=\S+$/m, /^binlog_format=ROW$/m, /socket\.ssl=yes/, /^wsrep_sst_method=mariabackup$/m])
    if (!re.test(cnf)) p.push(`my.cnf lacks ${re}`);
  if (/^init_file=/m.test(cnf)) p.push("my.cnf has init_file (DDL outside a primary component is refused)");
  const addr = cnf.match(/^wsrep_cluster_address=gcomm:\/\/(\S+)$/m);
  if (!addr || addr[1].split(",").length !== 3) p.push(`wsrep_cluster_address does not list 3 peers (${addr ? addr[1] : "none"})`);
  const hl = objs.find((o) => o.kind === "Service" && o.metadata.name === `${sts.spec.serviceName}`);
  if (!hl || hl.spec.clusterIP !== "None" || hl.spec.publishNotReadyAddresses !== true) p.push("no headless Service publishing not-ready peers");
  if (!objs.some((o) => o.kind === "PodDisruptionBudget" && component(o.metadata?.labels) === "mariadb")) p.push("no PodDisruptionBudget for MariaDB");
  const np = objs.find((o) => o.kind === "NetworkPolicy" && component(o.metadata?.labels) === "mariadb");
  const ports = (np?.spec.ingress || []).flatMap((r) => (r.ports || []).map((x) => x.port));
  for (const port of [4567, 4568, 4444]) if (!ports.includes(port)) p.push(`NetworkPolicy does not let the peers reach ${port}`);
  return p;
}

function standalone(objs) {
  const p = [];
  const sts = objs.find((o) => o.kind === "StatefulSet" && component(o.metadata?.labels) === "mariadb");
  if (!sts) return ["no MariaDB StatefulSet"];
  if (sts.spec.replicas !== 1) p.push(`replicas ${sts.spec.replicas}, expected 1`);
  const cnf = objs.find((o) => o.kind === "ConfigMap" && component(o.metadata?.labels) === "mariadb")?.data?.["my.cnf"] || "";
  if (/wsrep/.test(cnf)) p.push("my.cnf has wsrep settings");
  if (!/^init_file=\S+\/init\.sql$/m.test(cnf)) p.push("my.cnf does not create the accounts (init_file)");
  return p;
}

// ---------------------------------------------------------------- main

// /metrics (monitoring.metrics and serviceMonitor enabled): a ServiceMonitor
// for the API and one for the CAS, each https with the scraper's certificate
// and key and the server's CA, on a Service port named metrics whose target
// the program listens on: api.conf's metrics_port (with metrics_listen_addr
// and metrics_tls_ca, the CA file mounted), the CAS's --metrics-listen (with
// a --metrics-client).
function metrics(objs) {
  const p = [];
  const mons = objs.filter((o) => o.kind === "ServiceMonitor");
  for (const c of ["api", "cas"]) {
    const mon = mons.find((m) => m.spec.selector?.matchLabels?.["app.kubernetes.io/component"] === c);
    const svc = objs.find((o) => o.kind === "Service" && component(o.metadata?.labels) === c && o.spec.ports?.some((x) => x.name === "metrics"));
    if (!mon) { p.push(`${c}: no ServiceMonitor`); continue; }
    if (!svc) { p.push(`${c}: no Service with a port named metrics`); continue; }
    const port = svc.spec.ports.find((x) => x.name === "metrics").port;
    for (const e of mon.spec.endpoints) {
      if (e.port !== "metrics") p.push(`${id(mon)}: port ${e.port}`);
      if (e.scheme !== "https") p.push(`${id(mon)}: scheme ${e.scheme} (the endpoints speak mutual TLS only)`);
      const t = e.tlsConfig || {};
      if (!t.cert || !t.keySecret || !t.ca || !t.serverName) p.push(`${id(mon)}: tlsConfig needs ca, cert, keySecret and serverName`);
      if (t.insecureSkipVerify) p.push(`${id(mon)}: insecureSkipVerify`);
    }
    const pod = objs.map(podOf).find((x) => x && component(x.meta?.labels) === c && x.spec);
    const ctr = pod && containersOf(pod.spec).find((k) => (k.ports || []).some((x) => x.name === "metrics"));
    if (!ctr) { p.push(`${c}: no container with a port named metrics`); continue; }
    if (ctr.ports.find((x) => x.name === "metrics").containerPort !== port) p.push(`${c}: containerPort differs from the Service's metrics port ${port}`);
    if (c === "api") {
      const cm = objs.find((o) => o.kind === "ConfigMap" && component(o.metadata?.labels) === "api" && o.data?.["api.conf"]);
      const conf = cm?.data["api.conf"] || "";
      if (!new RegExp(`^metrics_port = ${port}$`, "m").test(conf)) p.push(`api.conf: metrics_port is not ${port}`);
      if (!/^metrics_listen_addr = \S+$/m.test(conf)) p.push("api.conf: no metrics_listen_addr");
      const ca = /^metrics_tls_ca = (\S+)$/m.exec(conf);
      if (!ca) p.push("api.conf: no metrics_tls_ca");
      else if (!(ctr.volumeMounts || []).some((v) => v.mountPath === ca[1])) p.push(`api: ${ca[1]} not mounted`);
      if (!/BEGIN CERTIFICATE/.test(cm?.data["metrics-client-ca.crt"] || "")) p.push("api ConfigMap: no metrics-client-ca.crt");
    } else {
      const args = [...(ctr.command || []), ...(ctr.args || [])].map(String);
      const i = args.indexOf("--metrics-listen");
      if (i < 0 || !args[i + 1].endsWith(`:${port}`)) p.push(`cas: no --metrics-listen on ${port}`);
      if (!args.includes("--metrics-client")) p.push("cas: no --metrics-client");
    }
  }
  return p;
}

async function checkRender(file) {
  const objs = yaml.loadAll(readFileSync(file, "utf8")).filter((o) => o && typeof o === "object");
  const nodeAgentSocket = (() => {
    const ds = objs.find((o) => o.kind === "DaemonSet" && component(o.metadata?.labels) === "node-agent");
    return ds?.spec.template.spec.volumes.find((v) => v.hostPath)?.hostPath.path;
  })();
  const socketDir = nodeAgentSocket || "/run/confidoc";

  const schema = [];
  for (const o of objs) schema.push(...(await validate(o)));
  report(`schema: every object validates (${objs.length} objects)`, schema);

  const pods = objs.map((o) => ({ o, pod: podOf(o) })).filter((x) => x.pod && x.pod.spec);
  const app = pods.filter((x) => component(x.pod.meta?.labels) !== "node-agent");
  const agent = pods.filter((x) => component(x.pod.meta?.labels) === "node-agent");
  const noPods = pods.filter((x) => !component(x.pod.meta?.labels));
  if (noPods.length) report("every pod has a component label", noPods.map((x) => id(x.o)));

  report(
    `restricted: every application pod (${app.length} pod templates)`,
    app.flatMap(({ o, pod }) => restricted(o, pod, profile !== "csi", socketDir)),
  );
  if (profile === "cas-only") {
    report("cas-only: no node agent, and only the CAS's objects", [
      ...agent.map((x) => `${id(x.o)} rendered`),
      ...objs.filter((o) => !["cas", "default-deny", "dns"].includes(component(o.metadata?.labels))).map(id),
    ]);
  } else {
    report(
      "node agent: hostPID, SYS_PTRACE only, the socket directory only",
      agent.length === 1 ? nodeAgent(agent[0].o, agent[0].pod, socketDir) : [`${agent.length} node agents`],
    );
  }
  // hostPath in application pods: only the agent's socket directory, read-only
  // (the one deviation from Pod Security "restricted"; socketVolume.type=csi has none).
  const hostPathApps = app.filter(({ pod }) => (pod.spec.volumes || []).some((v) => v.hostPath));
  if (profile === "csi") report("csi: no application pod mounts a host directory", hostPathApps.map((x) => id(x.o)));
  report(`resources: every container (${pods.reduce((n, x) => n + containersOf(x.pod.spec).length, 0)} containers)`, pods.flatMap(({ o, pod }) => resources(o, pod)));
  report("key material: no private key and no 64-hex key in a Secret or ConfigMap but the CAS bootstrap Secret", keyMaterial(objs));
  report(`network policy: every pod selected, default deny (${pods.length} pod templates)`, networkPolicies(objs, pods));
  report("placeholders: every @NAME@ of the templates filled in", placeholders(objs));
  if (profile !== "cas-only") {
    report("config hashes: each session's configuration SHA-256 is the mounted file's", configHashes(objs));
    report("sessions: each launched container has its session's measured files, mounted as files", sessions(objs));
    report("helm test: a test pod with the hook annotation runs the queries", helmTest(objs));
  }
  if (profile === "cc") {
    const p = [];
    for (const { o, pod } of pods) {
      const rc = pod.spec.runtimeClassName;
      if (component(pod.meta?.labels) === "node-agent") {
        if (rc) p.push(`${id(o)}: the node agent runs in ${rc} (it must measure host processes)`);
      } else if (rc !== "kata-qemu-snp") p.push(`${id(o)}: runtimeClassName ${rc}`);
    }
    report("cc: every application pod has runtimeClassName kata-qemu-snp", p);
  }
  if (profile === "galera") report("galera: 3 nodes, wsrep configuration, peers' Service, PDB, NetworkPolicy", galera(objs));
  if (profile === "galera") report("metrics: each ServiceMonitor scrapes a metrics port the program serves, over mutual TLS", metrics(objs));
  if (profile === "default" || profile === "cc" || profile === "csi") report("standalone: one MariaDB pod, no wsrep", standalone(objs));
}

// Every value of values.yaml has a typed, described entry in values.schema.json
// and a row in README.md. A value is a leaf of values.yaml, or an object
// whose schema is open (no closed set of properties: a securityContext, a
// selector, resources), which is documented as a whole.
function checkValuesDoc(valuesFile, schemaFile, readmeFile) {
  profile = "values";
  const values = yaml.load(readFileSync(valuesFile, "utf8"));
  const schema = JSON.parse(readFileSync(schemaFile, "utf8"));
  const readme = readFileSync(readmeFile, "utf8");
  const resolve = (node) => {
    while (node && node.$ref) node = node.$ref.replace(/^#\//, "").split("/").reduce((n, k) => n[k], schema);
    return node;
  };
  const noSchema = [];
  const noDoc = [];
  let count = 0;
  const walk = (v, node, path) => {
    node = resolve(node);
    const closed = node && node.properties && node.additionalProperties === false;
    if (path.length && !closed) {
      count++;
      const name = path.join(".");
      if (!node) noSchema.push(`${name} (not in the schema)`);
      else if (!node.type || !(typeof node.description === "string" && node.description.length))
        noSchema.push(`${name} (no ${!node.type ? "type" : "description"})`);
      if (!readme.includes("`" + name + "`")) noDoc.push(name);
      return;
    }
    if (path.length && !(typeof node.description === "string" && node.description.length)) noSchema.push(`${path.join(".")} (no description)`);
    if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(x, node.properties[k], [...path, k]);
  };
  walk(values, schema, []);
  report(`values.schema.json: every value typed and described (${count} values)`, noSchema);
  report(`README.md: every value in the table (${count} values)`, noDoc);
  const m = readme.match(/<!-- values-table:start -->\n([\s\S]*?)<!-- values-table:end -->/);
  const want = valuesTable(values, schema);
  report("README.md: the values table is the one values.yaml and values.schema.json give (node check.mjs --values-table)",
    !m ? ["no values-table markers"] : m[1] === want ? [] : ["it differs: regenerate it"]);
}

// The README's table: one row per value (as checkValuesDoc counts them),
// with its description and default.
function valuesTable(values, schema) {
  const resolve = (node) => {
    while (node && node.$ref) node = node.$ref.replace(/^#\//, "").split("/").reduce((n, k) => n[k], schema);
    return node;
  };
  const esc = (t) => String(t).replace(/\|/g, "\\|");
  const rows = ["| value | description | default |", "|---|---|---|"];
  const walk = (v, node, path) => {
    node = resolve(node);
    const closed = node && node.properties && node.additionalProperties === false;
    if (path.length && !closed) {
      rows.push(`| \`${path.join(".")}\` | ${esc(node?.description || "")} | \`${esc(JSON.stringify(v))}\` |`);
      return;
    }
    for (const [k, x] of Object.entries(v || {})) walk(x, node?.properties?.[k], [...path, k]);
  };
  walk(values, schema, []);
  return rows.join("\n") + "\n";
}

const argv = process.argv.slice(2);
if (argv[0] === "--values-table") {
  process.stdout.write(valuesTable(yaml.load(readFileSync(argv[1], "utf8")), JSON.parse(readFileSync(argv[2], "utf8"))));
} else if (argv[0] === "--values-doc") {
  checkValuesDoc(argv[1], argv[2], argv[3]);
} else if (argv[0] === "--profile" && argv.length === 3) {
  profile = argv[1];
  await checkRender(argv[2]);
} else {
  console.error("usage: node check.mjs --profile PROFILE FILE | --values-doc VALUES SCHEMA README");
  process.exit(2);
}
process.exit(failed ? 1 : 0);
