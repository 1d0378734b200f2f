# syntax=docker/dockerfile:1
# The headrace image: one image, every service (`headrace run <service>`).
#
#   docker build -t headrace:dev .
#   docker run --rm headrace:dev run validator      # settings from HEADRACE_* variables
#
# Two stages. The builder installs the pinned dependencies (constraints.txt) into a venv, the
# DuckDB extensions among them: they come from their PyPI packages (duckdb-extension-*), so the
# image never downloads one at run time. Then it installs the project itself, without
# dependencies, as a wheel that carries schemas/ and the warehouse migrations as package data
# (headrace/runtime/paths.py): a change to the code rebuilds that layer only. The runtime stage is
# the same slim base with that venv and a non-root user; its last step loads every extension
# once, so a broken or missing binary fails the build, not the first batch.
#
# tests/deploy checks that every COPY source exists and is not in .dockerignore.

# Pinned: a patch release of CPython 3.11 on Debian 12 (bookworm), the platform the project is
# built and tested on. Bump it deliberately, together with the CI image.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
# The runtime dependencies as pyproject.toml lists them, under the pins: a layer that changes
# only when they do.
RUN python -c "import tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(project['dependencies']))" > requirements.txt \
    && pip install -c constraints.txt -r requirements.txt
COPY headrace ./headrace
COPY services ./services
COPY schemas ./schemas
COPY infra ./infra
RUN pip install --no-deps /src

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="headrace" \
      org.opencontainers.image.description="Kafka-native streaming warehouse: Kafka -> bucket -> DuckLake" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEADRACE_HTTP_HOST=0.0.0.0
RUN groupadd --gid 10001 headrace \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/headrace \
       --shell /usr/sbin/nologin headrace \
    && mkdir -p /var/lib/headrace \
    && chown headrace:headrace /var/lib/headrace
COPY --from=builder /opt/venv /opt/venv
# The runtime user's folder: settings left at their relative defaults (.headrace/...) write here.
WORKDIR /var/lib/headrace
USER 10001:10001
# Every DuckDB extension the warehouse uses loads from its package (and is installed in ~/.duckdb
# for this user); `headrace --help` imports the command line.
RUN python -c "import duckdb; from headrace.lake.warehouse import load_extension; \
con = duckdb.connect(); [load_extension(con, n) for n in ('ducklake', 'sqlite', 'postgres', 'httpfs')]" \
    && headrace --help > /dev/null
# The services' HTTP ports (/healthz, /readyz, /metrics): producer 8081 ... summarizer 8085.
EXPOSE 8081 8082 8083 8084 8085
ENTRYPOINT ["headrace"]
CMD ["--help"]
