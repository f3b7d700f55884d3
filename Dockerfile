# syntax=docker/dockerfile:1
# personabot images. Two targets:
#
#   bot      serving only (Discord + OpenAI/vLLM backends), no torch:
#              docker build --target bot -t personabot:bot .
#            WITH_LOCAL=1 adds the in-process backend (transformers + CPU torch):
#              docker build --target bot --build-arg WITH_LOCAL=1 -t personabot:bot-local .
#   trainer  the [train] extra plus torch. CPU torch==2.13.0 by default; a CUDA build by naming
#            the PyTorch wheel index variant:
#              docker build --target trainer --build-arg TORCH_VARIANT=cu128 -t personabot:trainer .
#
# Everything is installed into /opt/venv in a build stage and only that folder is copied into the
# runtime stage. Nothing secret is ever copied in (.dockerignore keeps .env and data/ out): tokens
# and keys arrive at run time through the environment (compose's env_file).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A fixed uid/gid, so files in the shared data volume have the same owner in every container.
RUN groupadd --system --gid 10001 personabot \
 && useradd --system --uid 10001 --gid personabot --home-dir /app --no-create-home --shell /usr/sbin/nologin personabot
WORKDIR /app

# --- build stages: a virtualenv with the project and its extras ----------------------------------
FROM base AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only what the package build needs: a change to tests or benchmarks does not rebuild the layers.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY trainer ./trainer

FROM build AS build-bot
# 1: add the local backend (transformers + peft + CPU torch) to the bot image.
ARG WITH_LOCAL=0
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
# pip's cache lives in a BuildKit cache mount: rebuilds after a code change reuse the downloaded
# wheels, and no cache ends up in a layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ "$WITH_LOCAL" = "1" ]; then \
      pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" "torch==${TORCH_VERSION}" \
      && pip install ".[local]"; \
    else \
      pip install .; \
    fi \
 && cd / && python -c "import bot.cli.main"

FROM build AS build-trainer
# torch first, from the PyTorch index of the chosen variant (cpu, cu126, cu128, ...), so the
# project's own `torch>=2.4` is already satisfied and pip never swaps in another build.
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" "torch==${TORCH_VERSION}" \
 && pip install ".[train]" \
 && cd / && python -c "import torch, trl, peft, bot.cli.main; print('torch', torch.__version__)"

# --- runtime stages ------------------------------------------------------------------------------
FROM base AS runtime
# Caches (Hugging Face, torch, ...) go to the data volume: the non-root user cannot write to /app.
ENV PATH=/opt/venv/bin:$PATH \
    PERSONABOT_DATA_DIR=/app/data \
    PERSONABOT_PERSONAS_DIR=/app/personas \
    XDG_CACHE_HOME=/app/data/.cache \
    HF_HOME=/app/data/.cache/huggingface
COPY personas ./personas
# The data volume is seeded from this folder on first mount, owner included, so the non-root user
# can write to it; adapters/ must exist before vLLM mounts it read-only.
RUN mkdir -p /app/data/adapters /app/data/locks && chown -R personabot:personabot /app/data
USER personabot
ENTRYPOINT ["personabot"]

FROM runtime AS trainer
COPY --from=build-trainer /opt/venv /opt/venv
CMD ["trainer"]

# Last, so a plain `docker build .` gives the small serving image.
FROM runtime AS bot
COPY --from=build-bot /opt/venv /opt/venv
EXPOSE 9100
CMD ["run"]
