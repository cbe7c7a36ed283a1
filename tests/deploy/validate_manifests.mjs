// Validates every manifest under deploy/kubernetes/ without a cluster, in three layers:
//  1. values: each object against the Kubernetes (kubernetes-models) or prometheus-operator
//     (@kubernetes-models/prometheus-operator) OpenAPI schema, with ajv: types, enums,
//     required fields, formats;
//  2. field names: the OpenAPI schemas allow unknown fields, and so does kubectl apply (it
//     only warns), so a misspelt `readinessProbes` would silently drop the probe. Every
//     object is written out as a typed TypeScript literal and checked with tsc, whose
//     excess-property check refuses any field the API does not have, at any depth;
//  3. what tern needs: probes on /healthz and /readyz, a preStop `tern drain` with the
//     admin token file the pod mounts from a Secret and its tern.conf names,
//     terminationGracePeriodSeconds above the drain-timeout of the tern.conf the pod
//     mounts, a locked-down securityContext, Services and the ServiceMonitor that select
//     existing pods and ports, ConfigMaps and Secrets that exist, and a NetworkPolicy for
//     every pod not on the host network that admits only selected sources to the metrics
//     port.
// Before the real files, three broken copies (a misspelt field, a wrong type, a grace
// period below the drain) must each be refused, so no layer can go blind unnoticed.
//   node validate_manifests.mjs DEPLOY_KUBERNETES_DIR
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as policy from "kubernetes-models/policy/v1";
import * as networking from "kubernetes-models/networking.k8s.io/v1";
import * as monitoring from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const here = dirname(fileURLToPath(import.meta.url));

// apiVersion/kind -> [model class, TypeScript module, TypeScript interface].
const kinds = {
  "v1/Namespace": [core.Namespace, "kubernetes-models/v1", "INamespace"],
  "v1/ConfigMap": [core.ConfigMap, "kubernetes-models/v1", "IConfigMap"],
  "v1/Secret": [core.Secret, "kubernetes-models/v1", "ISecret"],
  "v1/Service": [core.Service, "kubernetes-models/v1", "IService"],
  "apps/v1/DaemonSet": [apps.DaemonSet, "kubernetes-models/apps/v1", "IDaemonSet"],
  "apps/v1/Deployment": [apps.Deployment, "kubernetes-models/apps/v1", "IDeployment"],
  "policy/v1/PodDisruptionBudget": [policy.PodDisruptionBudget, "kubernetes-models/policy/v1", "IPodDisruptionBudget"],
  "networking.k8s.io/v1/NetworkPolicy": [
    networking.NetworkPolicy, "kubernetes-models/networking.k8s.io/v1", "INetworkPolicy"],
  "monitoring.coreos.com/v1/ServiceMonitor": [
    monitoring.ServiceMonitor, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1", "IServiceMonitor"],
};

function yamlFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

// Kubernetes reads YAML 1.1 (sigs.k8s.io/yaml), so this does too.
function load(dir) {
  const objects = [];
  const problems = [];
  for (const file of yamlFiles(dir).sort()) {
    for (const doc of parseAllDocuments(readFileSync(file, "utf8"), { version: "1.1" })) {
      if (doc.errors.length) problems.push(`${relative(dir, file)}: ${doc.errors[0].message}`);
      const obj = doc.toJS();
      if (obj) objects.push({ file: relative(dir, file), obj });
    }
  }
  return { objects, problems };
}

const label = ({ file, obj }) => `${file}: ${obj.kind} ${obj.metadata?.name}`;

// Layer 1.
function schemaProblems(objects) {
  const problems = [];
  for (const o of objects) {
    const entry = kinds[`${o.obj.apiVersion}/${o.obj.kind}`];
    if (!entry) {
      problems.push(`${label(o)}: no schema for ${o.obj.apiVersion} ${o.obj.kind}`);
      continue;
    }
    try {
      new entry[0](o.obj).validate();
    } catch (e) {
      problems.push(`${label(o)}: ${e.message}`);
    }
  }
  return problems;
}

// Layer 2.
function fieldNameProblems(objects) {
  const dir = mkdtempSync(join(tmpdir(), "tern-manifests-"));
  try {
    const imports = new Map();
    const lines = [];
    objects.forEach((o, i) => {
      const entry = kinds[`${o.obj.apiVersion}/${o.obj.kind}`];
      if (!entry) return;
      const [, module, type] = entry;
      if (!imports.has(module)) imports.set(module, new Set());
      imports.get(module).add(type);
      lines.push(`// ${label(o)}`, `export const m${i}: ${type} = ${JSON.stringify(o.obj, null, 2)};`);
    });
    const header = [...imports].map(([m, types]) => `import type { ${[...types].join(", ")} } from "${m}";`);
    writeFileSync(join(dir, "manifests.ts"), [...header, ...lines].join("\n") + "\n");
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, skipLibCheck: true, target: "es2022",
        module: "nodenext", moduleResolution: "nodenext", typeRoots: [],
        // The packages live beside this script, not beside the generated file.
        baseUrl: ".", paths: { "*": [join(here, "node_modules", "*")] },
      },
      files: ["manifests.ts"],
    }));
    try {
      execFileSync(process.execPath, [join(here, "node_modules/typescript/bin/tsc"), "-p", dir], { encoding: "utf8" });
      return [];
    } catch (e) {
      const source = readFileSync(join(dir, "manifests.ts"), "utf8").split("\n");
      // Name the manifest each error is in: the nearest "// file: Kind name" line above it.
      return (e.stdout || e.message).split("\n").filter((l) => l.includes("error TS")).map((l) => {
        const at = Number((l.match(/\((\d+),\d+\)/) || [])[1] || 0);
        let owner = "";
        for (let i = at - 1; i >= 0 && !owner; i--) if (source[i]?.startsWith("// ")) owner = source[i].slice(3);
        return `${owner}: ${l.replace(/^.*error /, "")}`;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Layer 3.
function ternProblems(objects) {
  const problems = [];
  const byKind = (kind) => objects.filter((o) => o.obj.kind === kind);
  const configMaps = new Map(byKind("ConfigMap").map((o) => [o.obj.metadata.name, o.obj]));
  const secrets = new Set(byKind("Secret").map((o) => o.obj.metadata.name));
  const workloads = [...byKind("DaemonSet"), ...byKind("Deployment")];
  if (workloads.length === 0) problems.push("no DaemonSet or Deployment at all");
  for (const o of workloads) {
    const name = label(o);
    const pod = o.obj.spec.template.spec;
    const podLabels = o.obj.spec.template.metadata?.labels || {};
    for (const [k, v] of Object.entries(o.obj.spec.selector.matchLabels || {})) {
      if (podLabels[k] !== v) problems.push(`${name}: selector ${k}=${v} does not match the pod template`);
    }
    if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${name}: pod securityContext.runAsNonRoot must be true`);
    if (pod.securityContext?.seccompProfile?.type !== "RuntimeDefault") problems.push(`${name}: seccompProfile RuntimeDefault`);
    let drainTimeout = null;
    let adminTokenFile = null;
    let handOverSocket = null;
    for (const v of pod.volumes || []) {
      if (v.configMap && !configMaps.has(v.configMap.name)) problems.push(`${name}: ConfigMap ${v.configMap.name} is not in the manifests`);
      if (v.secret && !secrets.has(v.secret.secretName)) problems.push(`${name}: Secret ${v.secret.secretName} is not in the manifests`);
      const conf = v.configMap && configMaps.get(v.configMap.name)?.data?.["tern.conf"];
      const m = conf && conf.match(/^drain-timeout\s*=\s*"?(\d+)"?/m);
      if (conf) drainTimeout = m ? Number(m[1]) : 600;  // tern's default
      const t = conf && conf.match(/^admin-token-file\s*=\s*"([^"]+)"/m);
      if (t) adminTokenFile = t[1];
      const h = conf && conf.match(/^hand-over-socket\s*=\s*"([^"]+)"/m);
      if (h) handOverSocket = h[1];
    }
    // A pod that a new one takes over from on its node: the surge pod's preStop-free start.
    const handsOver = handOverSocket !== null;
    if (handsOver) problems.push(...handOverProblems(o, handOverSocket));
    if (adminTokenFile === null) problems.push(`${name}: its tern.conf sets no admin-token-file (POST /drain refuses all)`);
    if (drainTimeout === null) problems.push(`${name}: mounts no ConfigMap with a tern.conf`);
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    if (drainTimeout !== null && grace < drainTimeout + 30) {
      problems.push(`${name}: terminationGracePeriodSeconds ${grace} must be at least drain-timeout ` +
        `${drainTimeout} + 30, or kubelet SIGKILLs the calls the drain protects`);
    }
    for (const c of pod.containers) {
      const where = `${name} container ${c.name}`;
      const ports = new Set((c.ports || []).map((p) => p.name));
      for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
        const get = c[probe]?.httpGet;
        if (!get || get.path !== path) problems.push(`${where}: ${probe} must GET ${path}`);
        else if (typeof get.port === "string" && !ports.has(get.port)) problems.push(`${where}: ${probe} port ${get.port} is not a container port`);
      }
      const preStop = (c.lifecycle?.preStop?.exec?.command || []).join(" ");
      if (handsOver) {
        // The node's loopback port is the new pod's once it has taken over: a preStop drain
        // of the old pod would drain the new one. SIGTERM drains the pod's own process.
        if (/\btern drain\b/.test(preStop)) problems.push(`${where}: with a hand-over socket, preStop must not run tern drain (it would drain the new pod)`);
      } else if (!/\btern drain\b.*--metrics 127\.0\.0\.1:/.test(preStop)) {
        problems.push(`${where}: preStop must run tern drain against loopback (POST /drain answers loopback only)`);
      }
      // The hook must send the token tern reads: the same file, mounted from a Secret.
      const hookToken = (preStop.match(/--admin-token-file (\S+)/) || [])[1];
      if (handsOver) {
        // No hook, no token to check.
      } else if (!hookToken || hookToken !== adminTokenFile) {
        problems.push(`${where}: preStop tern drain must pass --admin-token-file ${adminTokenFile}`);
      } else {
        const secretVolumes = new Set((pod.volumes || []).filter((v) => v.secret).map((v) => v.name));
        const mounted = (c.volumeMounts || []).some((m) => secretVolumes.has(m.name) && hookToken.startsWith(m.mountPath + "/"));
        if (!mounted) problems.push(`${where}: ${hookToken} is not in a mounted Secret`);
      }
      const sc = c.securityContext || {};
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem must be true`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation must be false`);
      if (!(sc.capabilities?.drop || []).includes("ALL")) problems.push(`${where}: capabilities must drop ALL`);
      for (const cap of sc.capabilities?.add || []) {
        if (cap !== "NET_BIND_SERVICE") problems.push(`${where}: adds capability ${cap}; only NET_BIND_SERVICE is ever needed`);
      }
      if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory || !c.resources?.limits?.memory) {
        problems.push(`${where}: needs cpu and memory requests and a memory limit`);
      }
    }
  }
  // Services select pods that exist and name ports those pods have.
  const pods = workloads.map((o) => ({
    labels: o.obj.spec.template.metadata?.labels || {},
    ports: new Set(o.obj.spec.template.spec.containers.flatMap((c) => (c.ports || []).map((p) => p.name))),
  }));
  const matches = (selector, labels) => Object.entries(selector || {}).every(([k, v]) => labels[k] === v);
  for (const o of byKind("Service")) {
    const selected = pods.filter((p) => matches(o.obj.spec.selector, p.labels));
    if (selected.length === 0) problems.push(`${label(o)}: selects no pod`);
    for (const port of o.obj.spec.ports || []) {
      if (typeof port.targetPort === "string" && !selected.every((p) => p.ports.has(port.targetPort))) {
        problems.push(`${label(o)}: targetPort ${port.targetPort} is missing from a selected pod`);
      }
    }
  }
  for (const o of byKind("ServiceMonitor")) {
    const services = byKind("Service").filter((s) => matches(o.obj.spec.selector.matchLabels, s.obj.metadata.labels || {}));
    if (services.length === 0) problems.push(`${label(o)}: selects no Service`);
    for (const e of o.obj.spec.endpoints || []) {
      if (!services.some((s) => (s.obj.spec.ports || []).some((p) => p.name === e.port))) {
        problems.push(`${label(o)}: endpoint port ${e.port} is on no selected Service`);
      }
    }
  }
  problems.push(...networkPolicyProblems(workloads, byKind("NetworkPolicy")));
  return problems;
}

// A DaemonSet whose pods hand over through --hand-over-socket (docs/upgrade.md "In a
// container"): the new pod starts beside the old one (maxSurge 1, maxUnavailable 0), which
// hostPorts would forbid (on the host network every containerPort is one); both mount the
// socket's directory from the node and run as one uid (the socket admits only its own).
function handOverProblems(o, socket) {
  const problems = [];
  const name = label(o);
  const pod = o.obj.spec.template.spec;
  const rolling = o.obj.spec.updateStrategy?.rollingUpdate || {};
  if (o.obj.kind !== "DaemonSet" || !pod.hostNetwork) problems.push(`${name}: hand-over-socket is for the hostNetwork DaemonSet`);
  if (o.obj.spec.updateStrategy?.type !== "RollingUpdate" || rolling.maxSurge !== 1 || rolling.maxUnavailable !== 0) {
    problems.push(`${name}: a hand-over needs updateStrategy RollingUpdate with maxSurge 1 and maxUnavailable 0`);
  }
  if (!(o.obj.spec.minReadySeconds > 0)) problems.push(`${name}: minReadySeconds must give the take-over time before the old pod goes`);
  if (!Number.isInteger(pod.securityContext?.runAsUser)) problems.push(`${name}: pods must run as one fixed uid (runAsUser)`);
  const directory = socket.slice(0, socket.lastIndexOf("/"));
  const hostPaths = new Set((pod.volumes || []).filter((v) => v.hostPath?.type === "DirectoryOrCreate").map((v) => v.name));
  for (const c of pod.containers) {
    if ((c.ports || []).length > 0) problems.push(`${name} container ${c.name}: ports are hostPorts here and keep the new pod off the node`);
    if (!(c.volumeMounts || []).some((m) => hostPaths.has(m.name) && m.mountPath === directory)) {
      problems.push(`${name} container ${c.name}: ${directory} must be a hostPath DirectoryOrCreate volume`);
    }
  }
  return problems;
}

// A pod on its own network gets a NetworkPolicy, and its metrics port admits only chosen
// sources. hostNetwork pods are out of NetworkPolicy's reach (docs/operations.md).
function networkPolicyProblems(workloads, policies) {
  const problems = [];
  const matches = (selector, labels) => Object.entries(selector || {}).every(([k, v]) => labels[k] === v);
  for (const o of workloads) {
    if (o.obj.spec.template.spec.hostNetwork) continue;
    const labels = o.obj.spec.template.metadata?.labels || {};
    const metricsPorts = new Set(["metrics", 9641]);
    const selecting = policies.filter((p) => matches(p.obj.spec.podSelector?.matchLabels, labels) &&
      (p.obj.spec.policyTypes || ["Ingress"]).includes("Ingress"));
    if (selecting.length === 0) problems.push(`${label(o)}: no NetworkPolicy selects its pods`);
    for (const p of selecting) {
      for (const rule of p.obj.spec.ingress || []) {
        const coversMetrics = !rule.ports || rule.ports.some((port) => metricsPorts.has(port.port) || port.port === undefined);
        if (coversMetrics && !(rule.from || []).length) {
          problems.push(`${label(p)}: an ingress rule opens the metrics port to every source`);
        }
      }
    }
  }
  return problems;
}

function allProblems(objects) {
  return [...schemaProblems(objects), ...fieldNameProblems(objects), ...ternProblems(objects)];
}

// The lock file may only point at registry tarballs with integrity hashes: no git, file or
// plain-http sources that `npm ci` would fetch from elsewhere.
function lockProblems() {
  const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
  const problems = [];
  for (const [name, p] of Object.entries(lock.packages || {})) {
    if (!name) continue;
    if (!p.integrity) problems.push(`package-lock.json: ${name} has no integrity hash`);
    if (p.resolved && !/^https:\/\/[^/]+\/.+\/-\/[^/]+\.tgz$/.test(p.resolved)) {
      problems.push(`package-lock.json: ${name} resolves outside the registry: ${p.resolved}`);
    }
  }
  return problems;
}

function selfCheck(objects) {
  const workload = objects.findIndex((o) => o.obj.kind === "DaemonSet" || o.obj.kind === "Deployment");
  // The hostNetwork DaemonSet declares no ports: break one of a workload that has some.
  const withPorts = objects.findIndex((o) => (o.obj.spec?.template?.spec?.containers?.[0]?.ports || []).length > 0);
  const withPreStop = objects.findIndex((o) => o.obj.spec?.template?.spec?.containers?.[0]?.lifecycle?.preStop);
  const broken = (mutate, at = workload) => {
    const copy = structuredClone(objects);
    mutate(copy[at].obj.spec.template.spec);
    return copy;
  };
  const cases = [
    ["a misspelt field", broken((pod) => {
      pod.containers[0].readinessProbes = pod.containers[0].readinessProbe;
      delete pod.containers[0].readinessProbe;
    }), fieldNameProblems],
    ["a port that is not a number", broken((pod) => { pod.containers[0].ports[0].containerPort = "turn"; }, withPorts), schemaProblems],
    ["a grace period shorter than the drain", broken((pod) => { pod.terminationGracePeriodSeconds = 60; }), ternProblems],
    ["a preStop drain without the admin token", broken((pod) => {
      pod.containers[0].lifecycle.preStop.exec.command = ["/usr/local/bin/tern", "drain", "--metrics", "127.0.0.1:9641"];
    }, withPreStop), ternProblems],
  ];
  const handing = objects.findIndex((o) => o.obj.kind === "DaemonSet" && o.obj.spec.updateStrategy?.rollingUpdate?.maxSurge);
  if (handing >= 0) {
    const noSurge = structuredClone(objects);
    noSurge[handing].obj.spec.updateStrategy.rollingUpdate = {maxUnavailable: 1};
    cases.push(["a hand-over DaemonSet without maxSurge", noSurge, ternProblems]);
    const hostPorts = structuredClone(objects);
    hostPorts[handing].obj.spec.template.spec.containers[0].ports = [{name: "metrics", containerPort: 9641}];
    cases.push(["a hand-over DaemonSet with hostPorts", hostPorts, ternProblems]);
    const drains = structuredClone(objects);
    drains[handing].obj.spec.template.spec.containers[0].lifecycle = {preStop: {exec: {command: ["/usr/local/bin/tern", "drain", "--metrics", "127.0.0.1:9641"]}}};
    cases.push(["a hand-over DaemonSet whose preStop drains the node's port", drains, ternProblems]);
  }
  const policyAt = objects.findIndex((o) => o.obj.kind === "NetworkPolicy");
  if (policyAt >= 0) {
    const open = structuredClone(objects);
    for (const rule of open[policyAt].obj.spec.ingress || []) delete rule.from;
    cases.push(["a NetworkPolicy that opens the metrics port to all", open, ternProblems]);
  }
  return cases.filter(([, copy, check]) => check(copy).length === 0).map(([what]) => `self-check: ${what} went unnoticed`);
}

const dir = process.argv[2];
const { objects, problems } = load(dir);
problems.push(...lockProblems());
if (objects.length > 0) problems.push(...selfCheck(objects), ...allProblems(objects));
else problems.push(`no manifests under ${dir}`);
for (const p of problems) console.log(`FAIL: ${p}`);
if (problems.length > 0) process.exit(1);
for (const o of objects) console.log(`ok: ${label(o)}`);
console.log(`ok: ${objects.length} objects valid against the Kubernetes ${"and prometheus-operator "}schemas, field names included`);
