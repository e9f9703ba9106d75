"""Rendering the chart with the real helm binary and reading what it rendered."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "k8s" / "wee5"
PRODUCTION_VALUES = ROOT / "deploy" / "k8s" / "values-production.yaml"
MONITORING_VALUES = ROOT / "deploy" / "k8s" / "values-monitoring.yaml"
RELEASE = "wee5"
NAMESPACE = "wee5"
GRPC_SERVICES = ("xp", "rewards", "benchmarks", "resources", "billing")
SERVICES = ("gateway", *GRPC_SERVICES)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    """The pod template of a workload, with what the policies and rules look at."""

    owner_kind: str
    owner_name: str
    labels: dict[str, str]
    spec: Obj

    @property
    def component(self) -> str:
        return self.labels["app.kubernetes.io/component"]

    @property
    def containers(self) -> list[Obj]:
        return list(self.spec.get("initContainers", [])) + list(self.spec["containers"])

    def port_number(self, port: int | str) -> int | None:
        """A NetworkPolicy port (a number or a container port's name) on this pod."""
        if isinstance(port, int):
            return port
        for container in self.spec["containers"]:
            for declared in container.get("ports", []):
                if declared.get("name") == port:
                    return int(declared["containerPort"])
        return None

    @property
    def listening_ports(self) -> set[int]:
        return {
            int(declared["containerPort"])
            for container in self.spec["containers"]
            for declared in container.get("ports", [])
        }


@dataclass(frozen=True)
class Manifests:
    """Every object of one rendering."""

    name: str
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        matches = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    def deployment(self, service: str) -> Obj:
        return self.get("Deployment", f"{RELEASE}-{service}")

    def pods(self) -> list[Pod]:
        """Pod templates of every Deployment, CronJob and Job, and bare Pods (helm test)."""
        pods = []
        for obj in self.objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            if kind == "Pod":
                template = obj
            elif kind == "Deployment" or kind == "Job":
                template = obj["spec"]["template"]
            elif kind == "CronJob":
                template = obj["spec"]["jobTemplate"]["spec"]["template"]
            else:
                continue
            pods.append(Pod(kind, name, dict(template["metadata"]["labels"]), template["spec"]))
        return pods


class Helm:
    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, check=False, timeout=60
        )

    def template_args(self, values: tuple[Path, ...], sets: tuple[str, ...]) -> list[str]:
        args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        for path in values:
            args += ["--values", str(path)]
        for assignment in sets:
            args += ["--set", assignment]
        return args

    def render(self, *sets: str, values: tuple[Path, ...] = (), name: str = "custom") -> Manifests:
        result = self.run(*self.template_args(values, sets))
        assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
        objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return Manifests(name, objects)

    def render_error(self, *sets: str, values: tuple[Path, ...] = ()) -> str:
        """helm template's error output; fails the test if rendering succeeded."""
        result = self.run(*self.template_args(values, sets))
        assert result.returncode != 0, f"helm template accepted {sets}"
        return result.stderr
