# syntax=docker/dockerfile:1
# The headrace image: one image, every service (`headrace run <service>`).
#
#   docker build -t headrace:dev .
#   docker run --rm headrace:dev run producer
#
# The package finds its schemas beside itself (headrace/paths.py: <package>/../schemas), so the
# source tree lives in /app with schemas/ next to headrace/ and services/, and PYTHONPATH=/app makes
# Python import from there. The venv in /opt/venv holds the pinned dependencies (and the `headrace`
# console script); its own copy of the package is shadowed by /app.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY headrace ./headrace
COPY services ./services
COPY schemas ./schemas
COPY infra ./infra
RUN pip install /src

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --gid 10001 headrace \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/headrace \
       --shell /usr/sbin/nologin headrace \
    && mkdir -p /var/lib/headrace \
    && chown headrace:headrace /var/lib/headrace
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY headrace ./headrace
COPY services ./services
COPY schemas ./schemas
USER headrace
ENTRYPOINT ["headrace"]
CMD ["--help"]
