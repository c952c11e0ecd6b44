"""Reading and editing the catalogue of subjects and languages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.catalog.models import GRADES, Language, Subject


def catalog(s: Session, locale: str) -> dict[str, Any]:
    subjects = s.scalars(select(Subject).where(Subject.active).order_by(Subject.name_da))
    languages = s.scalars(select(Language).where(Language.active).order_by(Language.code))
    return {
        "subjects": [{"id": x.id, "key": x.key, "name": x.name(locale)} for x in subjects],
        "grades": list(GRADES),
        "languages": [{"code": x.code, "name": x.name(locale)} for x in languages],
    }
