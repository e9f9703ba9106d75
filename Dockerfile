# syntax=docker/dockerfile:1
# One image for every WEE5 process. The command picks the service:
#   python -m wee5_gateway | wee5_xp | wee5_rewards | wee5_benchmarks | wee5_resources | wee5_billing
#   python -m wee5_<service> migrate        python -m wee5_xp.tasks <job>
# Build: docker build -t wee5:dev .   (the Helm chart in deploy/k8s/wee5 runs it)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: the virtual environment, exactly as uv.lock pins it --------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install "uv==${UV_VERSION}"
# The rank cards are drawn with the DejaVu fonts (Debian's fonts-dejavu-core); the runtime
# copies the font files from here, so it never runs a package installer.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Third-party dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
COPY libs/kit/pyproject.toml libs/kit/
COPY libs/protos/pyproject.toml libs/protos/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/xp/pyproject.toml services/xp/
COPY services/rewards/pyproject.toml services/rewards/
COPY services/benchmarks/pyproject.toml services/benchmarks/
COPY services/resources/pyproject.toml services/resources/
COPY services/billing/pyproject.toml services/billing/
COPY services/discord/pyproject.toml services/discord/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace

# Then our own packages, installed as wheels (not editable), so the source tree stays behind.
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable \
 && /app/.venv/bin/python -c "import wee5_gateway.app, wee5_xp.server, wee5_rewards.server, wee5_benchmarks.server, wee5_resources.server, wee5_billing.server, wee5_discord.bot"

# ---- runtime: Python and the virtual environment, nothing to build or install with ------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="wee5" \
      org.opencontainers.image.description="WEE5 engagement engine: gateway, xp, rewards, benchmarks, resources, billing"
# No package installers at run time; a numeric non-root user the pods can check (runAsNonRoot).
RUN python -m pip uninstall --yes --quiet pip setuptools wheel 2>/dev/null || true \
 && groupadd --system --gid 10001 wee5 \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin wee5 \
 && mkdir -p /var/lib/wee5/storage \
 && chown wee5:wee5 /var/lib/wee5/storage
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /usr/share/fonts/truetype/dejavu /usr/share/fonts/truetype/dejavu
ENV PATH="/app/.venv/bin:${PATH}" \
    VIRTUAL_ENV=/app/.venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    WEE5_STORAGE_DIR=/var/lib/wee5/storage
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8010 50051 50052 50053 50054 50055
CMD ["python", "-m", "wee5_gateway"]
