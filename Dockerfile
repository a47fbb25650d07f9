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
# What runs is the installed wheel, which carries the SQL migrations and the scenarios
# (tests/test_packaging.py). The urbanwatch user gets a home: files such as the simulator's
# ground truth go to ~/.local/state/urbanwatch unless URBANWATCH_STATE_DIR says otherwise.
RUN pip install --no-cache-dir . && useradd --system --create-home urbanwatch
USER urbanwatch
# Out of /app, so that nothing imports the copied sources instead of the installed package.
WORKDIR /home/urbanwatch
ENTRYPOINT ["urbanwatch"]
CMD ["--help"]
