"""The Pod Security Standards' "restricted" level (which includes "baseline"), as a checker.

Written from the published rules (kubernetes.io, "Pod Security Standards"), control by control,
so the manifests are checked for what admission would refuse in a namespace labelled
``pod-security.kubernetes.io/enforce: restricted``. Returns the violations, empty when none.
"""

from __future__ import annotations

from typing import Any

# Restricted: "Volume Types" - only these.
ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# Baseline: "Sysctls" - only the safe set.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec a workload resource runs (Pod, a template, a CronJob's job template)."""
    kind, spec = resource.get("kind"), resource.get("spec", {})
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}:
        return spec["template"]["spec"]  # type: ignore[no-any-return]
    return None


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """Every way ``spec`` (a pod spec) breaks the restricted level."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext", {})
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problems.append(f"pod: {host}")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']}: type {sorted(kinds - ALLOWED_VOLUME_TYPES)}")
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl['name']}")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod: runAsUser 0")
    problems += _selinux_and_apparmor("pod", pod_sc)
    containers = [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]
    for container in containers:
        problems += [f"container {container['name']}: {p}" for p in _container_violations(container, pod_sc)]
    if not containers:
        problems.append("pod: no containers")
    return problems


def _container_violations(container: dict[str, Any], pod_sc: dict[str, Any]) -> list[str]:
    problems = []
    sc = container.get("securityContext", {})
    if sc.get("privileged"):
        problems.append("privileged")
    caps = sc.get("capabilities", {})
    if "ALL" not in caps.get("drop", []):
        problems.append("capabilities must drop ALL")
    if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
        problems.append(f"capabilities added: {caps['add']}")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
        problems.append("runAsNonRoot must be true")
    if sc.get("runAsUser") == 0:
        problems.append("runAsUser 0")
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
    if seccomp not in SECCOMP_ALLOWED:
        problems.append(f"seccompProfile {seccomp!r}: RuntimeDefault or Localhost")
    if sc.get("procMount", "Default") != "Default":
        problems.append("procMount")
    for port in container.get("ports", []):
        if port.get("hostPort", 0) != 0:
            problems.append(f"hostPort {port['hostPort']}")
    problems += _selinux_and_apparmor("", sc)
    return problems


def _selinux_and_apparmor(where: str, sc: dict[str, Any]) -> list[str]:
    problems = []
    selinux = sc.get("seLinuxOptions", {})
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        problems.append(f"{where} seLinuxOptions".strip())
    if sc.get("appArmorProfile", {}).get("type") == "Unconfined":
        problems.append(f"{where} appArmorProfile Unconfined".strip())
    return problems
