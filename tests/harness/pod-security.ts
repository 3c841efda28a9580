/**
 * The Pod Security Standard "restricted" profile (which includes "baseline"), as the checks the
 * mesh's pods must pass, plus the project's own read-only root filesystem.
 */
import { PodSpec } from "./kubernetes-schema";

/** Violations of the Pod Security Standard "restricted" profile (which includes "baseline"). */
export function restrictedViolations(pod: PodSpec): string[] {
  const v: string[] = [];
  const podSc = pod.securityContext ?? {};
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) v.push("host namespaces");
  const allowedVolumes = [
    "configMap",
    "secret",
    "emptyDir",
    "projected",
    "downwardAPI",
    "csi",
    "persistentVolumeClaim",
    "ephemeral",
  ];
  for (const vol of pod.volumes ?? []) {
    const kinds = Object.keys(vol).filter((k) => k !== "name");
    if (!kinds.every((k) => allowedVolumes.includes(k))) v.push(`volume type ${kinds.join(",")}`);
  }
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged === true) v.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false)
      v.push(`${c.name}: allowPrivilegeEscalation must be false`);
    if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true)
      v.push(`${c.name}: runAsNonRoot must be true`);
    if ((sc.runAsUser ?? podSc.runAsUser) === 0) v.push(`${c.name}: runAsUser 0`);
    const seccomp = (sc.seccompProfile ?? podSc.seccompProfile) as { type?: string } | undefined;
    if (seccomp?.type !== "RuntimeDefault" && seccomp?.type !== "Localhost")
      v.push(`${c.name}: seccomp`);
    const caps = (sc.capabilities ?? {}) as { drop?: string[]; add?: string[] };
    if (!(caps.drop ?? []).includes("ALL")) v.push(`${c.name}: capabilities must drop ALL`);
    if ((caps.add ?? []).some((cap) => cap !== "NET_BIND_SERVICE"))
      v.push(`${c.name}: capabilities add`);
    if ((c.ports ?? []).some((p) => p.hostPort)) v.push(`${c.name}: hostPort`);
    if (sc.readOnlyRootFilesystem !== true) v.push(`${c.name}: root filesystem is writable`);
  }
  return v;
}
