# portal behind gunicorn. Data (SQLite catalog, store, previews, secret key) lives in /data;
# set PORTAL_DATABASE_URL to a PostgreSQL URL to use a server database instead.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORTAL_DATA_DIR=/data

RUN useradd --create-home --uid 1000 portal && mkdir /data && chown portal /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY migrations ./migrations
COPY assets ./assets
# Editable install keeps migrations/ and assets/ beside the package, where portal finds them.
RUN pip install --no-cache-dir -e ".[postgres]"

USER portal
EXPOSE 8050
VOLUME ["/data"]
# Upgrade the schema, then replace the shell with gunicorn (signals reach it directly).
CMD ["sh", "-c", "portal db upgrade && exec gunicorn --bind 0.0.0.0:8050 --workers 2 --threads 4 --worker-class gthread --timeout 120 'portal.app:create_app()'"]
