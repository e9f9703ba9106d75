#!/usr/bin/env bash
# Regenerates the committed Python code for proto/ into libs/protos/src/wee5 (OUT overrides the
# target, which `make proto-check` uses to compare a fresh generation with what is committed).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${OUT:-libs/protos/src/wee5}"
venv_bin="$(pwd)/.venv/bin"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mapfile -t protos < <(find proto -name '*.proto' | sort)
"$venv_bin/python" -m grpc_tools.protoc -Iproto \
  --plugin=protoc-gen-mypy="$venv_bin/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$venv_bin/protoc-gen-mypy_grpc" \
  --python_out="$tmp" --mypy_out="$tmp" \
  --grpc_python_out="$tmp" --mypy_grpc_out="$tmp" \
  "${protos[@]}"

# Every generated folder is a regular package, so `import wee5.xp.v1` works everywhere.
find "$tmp/wee5" -type d -exec sh -c 'printf "" > "$1/__init__.py"' _ {} \;
printf '"""Generated from proto/ by scripts/gen-protos.sh. Do not edit."""\n' > "$tmp/wee5/__init__.py"
touch "$tmp/wee5/py.typed"

rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$tmp/wee5" "$out"
