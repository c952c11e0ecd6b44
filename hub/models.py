"""Every table of the hub, imported in one place for Alembic and for creating a database."""

from hub.accounts import models as accounts
from hub.attachments import models as attachments
from hub.audit import models as audit
from hub.breakroom import models as breakroom
from hub.catalog import models as catalog
from hub.db import Base
from hub.devices import models as devices
from hub.helpdesk import models as helpdesk
from hub.matching import models as matching
from hub.realtime import models as realtime
from hub.rooms import models as rooms
from hub.schedule import models as schedule
from hub.shifts import models as shifts
from hub.stats import models as stats

metadata = Base.metadata
__all__ = [
    "accounts",
    "attachments",
    "audit",
    "breakroom",
    "catalog",
    "devices",
    "helpdesk",
    "matching",
    "metadata",
    "realtime",
    "rooms",
    "schedule",
    "shifts",
    "stats",
]
