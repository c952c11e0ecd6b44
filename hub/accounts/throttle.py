"""Slowing down password guessing without locking out the real user.

Three counts of wrong passwords, each a row of `login_throttles`:

- **one address and one account** (the "pair"): after `login_free_failures`, each further try
  from that address for that account waits `login_first_wait_s` (2 s) after the last failure,
  twice as long after each further one, at most `login_max_wait_s`. Someone guessing from one
  address is slowed; the same account from an address that has not been failing logs in at once.
- **one address, any accounts**: `login_address_failures` within an hour, and that address may
  not try again until the hour is over (someone trying many accounts).
- **one account, any addresses**: `login_account_failures` within an hour (far more than a
  person types), and the account is open only to known devices until the hour is over or a
  coordinator or admin unlocks it.

A **known device** is a browser holding the signed cookie a successful login of that account set
(`device_cookie`). It counts as an address of its own, is exempt from the address and account
limits, and its successful login lifts the account's limits (no CAPTCHA, no e-mail).

Keys are keyed hashes (HMAC with the hub's secret key): the table and the logs hold neither
usernames nor addresses. An unknown username is counted like a known one, so the answers do not
tell which usernames exist."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from hub.accounts.models import LoginThrottle
from hub.config import HubConfig
from hub.errors import RateLimited

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)  # of the address and account limits
DEVICE_COOKIE = "lektiecafe_device"
DEVICE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
DEVICE_ACCOUNTS = 8  # accounts one browser is remembered for (a family's shared computer)
_DEVICE_SALT = "lektiecafe.known-device"

PAIR, ADDRESS, ACCOUNT = "pair", "address", "account"


def _keyed(secret: str, *parts: str) -> str:
    message = "\0".join(parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def account_key(secret: str, username: str) -> str:
    return _keyed(secret, ACCOUNT, username)


@dataclass(frozen=True)
class KnownDevice:
    """What a browser's known-device cookie says: its id and the accounts that logged in on it."""

    device_id: str
    accounts: tuple[str, ...] = ()


def read_device_cookie(secret: str, value: str | None) -> KnownDevice | None:
    if not value:
        return None
    serializer = URLSafeTimedSerializer(secret, salt=_DEVICE_SALT)
    try:
        data: Any = serializer.loads(value, max_age=DEVICE_COOKIE_MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("d"), str):
        return None
    accounts = data.get("a")
    if not isinstance(accounts, list):
        return None
    return KnownDevice(data["d"], tuple(str(a) for a in accounts[:DEVICE_ACCOUNTS]))


def device_cookie(secret: str, device: KnownDevice | None, username: str) -> str:
    """The cookie's new value after `username` logged in on this browser: the most recent
    accounts first, signed (so nobody can claim a device they have not logged in on)."""
    key = account_key(secret, username)
    device_id = device.device_id if device else secrets.token_urlsafe(12)
    earlier = [a for a in (device.accounts if device else ()) if a != key]
    accounts = [key, *earlier][:DEVICE_ACCOUNTS]
    return str(
        URLSafeTimedSerializer(secret, salt=_DEVICE_SALT).dumps({"d": device_id, "a": accounts})
    )


@dataclass(frozen=True)
class Attempt:
    """One login try: whose account, from where, and whether from a known device of it."""

    account: str
    pair: str
    address: str | None  # None for a known device: exempt from the address limit
    known_device: bool

    @classmethod
    def of(cls, secret: str, username: str, address: str, device: KnownDevice | None) -> Attempt:
        account = account_key(secret, username)
        if device is not None and account in device.accounts:
            return cls(account, _keyed(secret, "device", device.device_id, username), None, True)
        return cls(
            account,
            _keyed(secret, PAIR, address, username),
            _keyed(secret, ADDRESS, address),
            False,
        )


def check(s: Session, attempt: Attempt, now: datetime, config: HubConfig) -> None:
    """Refuse (RateLimited, with the seconds to wait) a try that must wait; before the password is
    checked, so a refused try tells nothing about it."""
    rows = {
        row.key: row
        for row in s.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(_keys(attempt))))
    }
    waits: list[tuple[float, str]] = []
    pair = rows.get(attempt.pair)
    if pair is not None:
        waits.append((_pair_wait(pair, now, config), "slowed"))
    if attempt.address is not None and (address := rows.get(attempt.address)) is not None:
        waits.append((_window_wait(address, now, config.login_address_failures), "address"))
    if not attempt.known_device and (account := rows.get(attempt.account)) is not None:
        waits.append((_window_wait(account, now, config.login_account_failures), "account"))
    wait, why = max(waits, default=(0.0, ""))
    if wait <= 0:
        return
    seconds = max(1, int(wait + 0.999))
    if why == "slowed":
        message = _("Too many wrong passwords. Try again in %(seconds)d seconds.", seconds=seconds)
    elif why == "address":
        message = _(
            "Too many wrong passwords from this network. Try again in %(minutes)d minutes, or "
            "log in on a device you have used before.",
            minutes=_minutes(seconds),
        )
    else:
        message = _(
            "This account has had too many wrong passwords. Try again in %(minutes)d minutes, "
            "log in on a device you have used before, or ask your coordinator to unlock it.",
            minutes=_minutes(seconds),
        )
    raise RateLimited(message, retry_after_s=seconds, limit=why)


def _minutes(seconds: int) -> int:
    return max(1, (seconds + 59) // 60)


def _pair_wait(row: LoginThrottle, now: datetime, config: HubConfig) -> float:
    if row.failures < config.login_free_failures:
        return 0.0
    delay = _delay(row.failures, config)
    return (row.last_at + timedelta(seconds=delay) - now).total_seconds()


def _delay(failures: int, config: HubConfig) -> float:
    """The wait after the pair's `failures`-th wrong password (at least login_free_failures)."""
    beyond = failures - config.login_free_failures
    return min(config.login_first_wait_s * 2.0**beyond, config.login_max_wait_s)


def _window_wait(row: LoginThrottle, now: datetime, limit: int) -> float:
    if row.failures < limit:
        return 0.0
    return (row.since + WINDOW - now).total_seconds()


def _keys(attempt: Attempt) -> list[str]:
    return [k for k in (attempt.pair, attempt.address, attempt.account) if k is not None]


def failed(s: Session, attempt: Attempt, now: datetime, config: HubConfig) -> None:
    """Count a wrong password (or an unknown or closed account) in each of the attempt's counts;
    log when one of them reaches its limit."""
    counts = [(attempt.pair, PAIR), (attempt.account, ACCOUNT)]
    if attempt.address is not None:
        counts.append((attempt.address, ADDRESS))
    for key, kind in counts:
        row = s.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(
                key=key, kind=kind, account=None, failures=0, since=now, last_at=now
            )
            s.add(row)
        elif kind != PAIR and now - row.since >= WINDOW:
            row.failures, row.since = 0, now  # a new hour
        row.account = attempt.account if kind != ADDRESS else None
        row.failures += 1
        row.last_at = now
        limit = {
            PAIR: config.login_free_failures,
            ADDRESS: config.login_address_failures,
            ACCOUNT: config.login_account_failures,
        }[kind]
        if row.failures == limit or (kind == PAIR and row.failures > limit):
            _log_limit(kind, row, config)


def _log_limit(kind: str, row: LoginThrottle, config: HubConfig) -> None:
    if kind == PAIR:
        delay = _delay(row.failures, config)
        log.warning(
            "login slowed: %d wrong passwords from one address for one account, next try in %d s",
            row.failures,
            delay,
            extra={"event": "login_slowed"},
        )
    elif kind == ADDRESS:
        log.warning(
            "login limited: %d wrong passwords from one address within an hour",
            row.failures,
            extra={"event": "login_address_limited"},
        )
    else:
        log.warning(
            "login limited: %d wrong passwords for one account within an hour; open to its "
            "known devices only",
            row.failures,
            extra={"event": "login_account_limited"},
        )


def succeeded(s: Session, attempt: Attempt) -> None:
    """The right password: this pair starts again; on a known device the account's limits go
    (whoever was failing elsewhere)."""
    if attempt.known_device:
        if _unlock(s, attempt.account):
            log.info("login limits lifted by a known device", extra={"event": "login_unlocked"})
    else:
        s.execute(delete(LoginThrottle).where(LoginThrottle.key == attempt.pair))


def unlock(s: Session, secret: str, username: str) -> bool:
    """A coordinator or admin unlocks an account: its limit and every address's delay for it."""
    return _unlock(s, account_key(secret, username))


def _unlock(s: Session, account: str) -> bool:
    query = delete(LoginThrottle).where(
        or_(LoginThrottle.key == account, LoginThrottle.account == account)
    )
    return bool(s.execute(query).rowcount)  # type: ignore[attr-defined]


def limited(
    s: Session, secret: str, usernames: list[str], now: datetime, config: HubConfig
) -> set[str]:
    """Which of these usernames cannot log in from somewhere now (their account limit, or an
    address waiting for them), for the unlock button on the staff pages."""
    by_key = {account_key(secret, name): name for name in usernames}
    query = select(LoginThrottle).where(LoginThrottle.account.in_(by_key))
    found: set[str] = set()
    for row in s.scalars(query):
        wait = (
            _pair_wait(row, now, config)
            if row.kind == PAIR
            else _window_wait(row, now, config.login_account_failures)
        )
        if wait > 0 and row.account is not None:
            found.add(by_key[row.account])
    return found


def delete_before(s: Session, cutoff: datetime) -> None:
    """Forget failures older than `cutoff` (housekeeping; longer than any wait)."""
    s.execute(delete(LoginThrottle).where(LoginThrottle.last_at < cutoff))
