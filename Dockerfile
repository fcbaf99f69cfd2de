# Greenroom image: the same code runs web, workers, scheduler and migrations; compose/k8s pick the command.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GREENROOM_VAR_DIR=/app/var
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN GREENROOM_BROKER_URL=redis://unused:6379/0 python manage.py collectstatic --noinput \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin greenroom \
 && mkdir -p /app/var /app/media && chown -R greenroom /app/var /app/media
USER 10001
EXPOSE 8000
CMD ["gunicorn", "project.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "24", "--no-control-socket"]
