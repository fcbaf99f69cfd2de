"""`manage.py seed_demo`: demo data so that a newcomer can try every job at once (idempotent).

A few reports to build as PDF, a documentation source on the project's own docs/ folder, a few
documents to embed and search, and an (inactive) LLM API record. `runstack` runs it on start-up;
set GREENROOM_SEED_DEMO=false to skip that.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from workers.documents import demo as documents_demo
from workers.llm import demo as llm_demo
from workers.pdf import demo as pdf_demo
from workers.sources import demo as sources_demo


class Command(BaseCommand):
    help = "Create demo reports, a docs/ source, documents and an LLM API record if they do not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        owner = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            raise CommandError("no superuser to own the demo reports: run `manage.py runstack` or createsuperuser")
        pdf_demo.seed(owner)
        sources_demo.seed()
        documents_demo.seed()
        llm_demo.seed()
        self.stdout.write("Demo data ready: reports, a docs/ source, documents, an LLM API (inactive).")
