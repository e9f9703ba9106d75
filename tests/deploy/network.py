"""Kubernetes NetworkPolicy semantics, enough to say who may reach whom in a rendering.

A pod is isolated in a direction as soon as one policy of that type selects it; traffic then
needs a rule of a selecting policy that matches the peer and the port, at both ends (egress
at the source, ingress at the destination). Peers outside the release's namespace are not
governed by its policies. ipBlock peers are taken to match pods too (some network plugins
apply them to pod addresses), which can only make the tests stricter.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from tests.deploy.chart import NAMESPACE, Manifests, Obj, Pod


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod of the release, a pod elsewhere, or an address."""

    labels: dict[str, str] = field(default_factory=dict)
    namespace: str = NAMESPACE
    pod: Pod | None = None
    address: str | None = None

    @classmethod
    def of(cls, pod: Pod) -> Endpoint:
        return cls(labels=pod.labels, pod=pod)

    @property
    def governed(self) -> bool:
        """Whether the release's policies apply to this end."""
        return self.pod is not None and self.namespace == NAMESPACE


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    if selector.get("matchExpressions"):
        raise NotImplementedError("matchExpressions are not evaluated by these tests")
    wanted: dict[str, str] = selector.get("matchLabels") or {}
    return wanted.items() <= labels.items()


def peer_matches(peer: Obj, end: Endpoint) -> bool:
    if "ipBlock" in peer:
        if end.address is None:
            return True
        block = peer["ipBlock"]
        address = ipaddress.ip_address(end.address)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
    if end.address is not None:
        return False
    namespace_labels = {"kubernetes.io/metadata.name": end.namespace}
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif end.namespace != NAMESPACE:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], end.labels)


def port_matches(ports: list[Obj] | None, target: Endpoint, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for allowed in ports:
        if allowed.get("protocol", "TCP") != protocol:
            continue
        number: Any = allowed.get("port")
        if number is None:
            return True
        if isinstance(number, str):
            number = target.pod.port_number(number) if target.pod else None
        if number == port:
            return True
    return False


class NetworkPolicies:
    def __init__(self, manifests: Manifests) -> None:
        self.policies = manifests.of_kind("NetworkPolicy")

    def selecting(self, end: Endpoint, direction: str) -> list[Obj]:
        if not end.governed:
            return []
        return [
            policy
            for policy in self.policies
            if direction in policy["spec"]["policyTypes"]
            and selector_matches(policy["spec"]["podSelector"], end.labels)
        ]

    def _allows(
        self,
        governed: Endpoint,
        peer: Endpoint,
        direction: str,
        target: Endpoint,
        port: int,
        protocol: str,
    ) -> bool:
        policies = self.selecting(governed, direction)
        if not policies:
            return True  # not isolated in this direction
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(peer_matches(p, peer) for p in peers):
                    continue
                if port_matches(rule.get("ports"), target, port, protocol):
                    return True
        return False

    def allows(self, source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Whether `source` may open a connection to `target` on `port`."""
        egress = self._allows(source, target, "Egress", target, port, protocol)
        ingress = self._allows(target, source, "Ingress", target, port, protocol)
        return egress and ingress
