"""Reading and editing the catalogue of subjects and languages (the admin pages edit it)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.catalog.models import GRADES, Language, Subject
from hub.errors import Conflict, NotFound


def catalog(s: Session, locale: str) -> dict[str, Any]:
    subjects = s.scalars(select(Subject).where(Subject.active).order_by(Subject.name_da))
    languages = s.scalars(select(Language).where(Language.active).order_by(Language.code))
    return {
        "subjects": [{"id": x.id, "key": x.key, "name": x.name(locale)} for x in subjects],
        "grades": list(GRADES),
        "languages": [{"code": x.code, "name": x.name(locale)} for x in languages],
    }


def subjects(s: Session) -> list[Subject]:
    return list(s.scalars(select(Subject).order_by(Subject.active.desc(), Subject.name_da)))


def languages(s: Session) -> list[Language]:
    return list(s.scalars(select(Language).order_by(Language.active.desc(), Language.code)))


def add_subject(s: Session, *, key: str, name_da: str, name_en: str) -> Subject:
    key = key.strip().lower()
    if s.scalar(select(Subject.id).where(Subject.key == key)) is not None:
        raise Conflict(_("A subject with that key already exists."), fields={"key": "taken"})
    subject = Subject(key=key, name_da=name_da, name_en=name_en, active=True)
    s.add(subject)
    s.flush()
    return subject


def rename_subject(s: Session, subject_id: int, *, name_da: str, name_en: str) -> Subject:
    subject = _subject(s, subject_id)
    subject.name_da, subject.name_en = name_da, name_en
    return subject


def set_subject_active(s: Session, subject_id: int, active: bool) -> Subject:
    subject = _subject(s, subject_id)
    subject.active = active
    return subject


def add_language(s: Session, *, code: str, name_da: str, name_en: str) -> Language:
    code = code.strip().lower()
    if s.get(Language, code) is not None:
        raise Conflict(_("A language with that code already exists."), fields={"code": "taken"})
    language = Language(code=code, name_da=name_da, name_en=name_en, active=True)
    s.add(language)
    s.flush()
    return language


def set_language_active(s: Session, code: str, active: bool) -> Language:
    language = s.get(Language, code)
    if language is None:
        raise NotFound(_("There is no such language."))
    language.active = active
    return language


def _subject(s: Session, subject_id: int) -> Subject:
    subject = s.get(Subject, subject_id)
    if subject is None:
        raise NotFound(_("There is no such subject."))
    return subject
