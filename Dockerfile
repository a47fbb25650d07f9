# One image for every urbanwatch process; the compose file picks the subcommand.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY urbanwatch ./urbanwatch
COPY ingest ./ingest
COPY api ./api
COPY alerts ./alerts
COPY simulators ./simulators
COPY dashboards ./dashboards
RUN pip install --no-cache-dir . && useradd --system urbanwatch
USER urbanwatch
ENTRYPOINT ["urbanwatch"]
CMD ["--help"]
