"""The owner dashboard's logins and sessions, held in memory only: they end when the daemon
stops (a restart signs the owner out).

* A **login code** is minted through an owner route (bearer token, after the CLI has proved
  the daemon's identity) and put in a link the owner opens. It works once and only for
  :data:`LOGIN_CODE_SECONDS`; exchanging it spends it whether or not the browser keeps the
  cookie it gets.
* A **session** is a random id in an ``HttpOnly; SameSite=Strict`` cookie, with a CSRF
  token of its own that every form carries. It lasts :data:`SESSION_SECONDS` after its last
  use.

Secrets are looked up by their SHA-256, never by the secret itself, so a dictionary lookup's
timing says nothing about a guessed value; the CSRF token is compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256

LOGIN_CODE_SECONDS = 120
SESSION_SECONDS = 12 * 3600
COOKIE_NAME = "vault_session"
#: Bounds on what an owner (or a buggy script holding the token) can pile up in memory.
MAX_PENDING_CODES = 32
MAX_SESSIONS = 64


def _digest(secret: str) -> bytes:
    return sha256(secret.encode()).digest()


@dataclass
class Session:
    """One signed-in browser. ``csrf`` goes into every form; its repr hides both secrets."""

    csrf: str
    expires_at: float

    def __repr__(self) -> str:
        return f"Session(expires_at={self.expires_at:.0f})"

    def csrf_matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), presented.encode())


class Sessions:
    """Login codes and sessions of one daemon start. Thread-safe (sync routes run on a
    thread pool)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._codes: dict[bytes, float] = {}
        self._sessions: dict[bytes, Session] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Sessions(codes={len(self._codes)}, sessions={len(self._sessions)})"

    def _prune(self, now: float) -> None:
        self._codes = {k: t for k, t in self._codes.items() if t > now}
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires_at > now}

    def new_login_code(self) -> tuple[str, float]:
        """A fresh one-time code and when it expires."""
        code = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._prune(now)
            if len(self._codes) >= MAX_PENDING_CODES:
                del self._codes[min(self._codes, key=self._codes.__getitem__)]
            expires_at = now + LOGIN_CODE_SECONDS
            self._codes[_digest(code)] = expires_at
        return code, expires_at

    def exchange(self, code: str) -> tuple[str, Session] | None:
        """Spend ``code``: a new session id and its session, or ``None`` when the code is
        unknown, already used or expired."""
        with self._lock:
            now = self._clock()
            expires_at = self._codes.pop(_digest(code), None)
            if expires_at is None or expires_at <= now:
                return None
            self._prune(now)
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].expires_at)
                del self._sessions[oldest]
            session_id = secrets.token_urlsafe(32)
            session = Session(csrf=secrets.token_urlsafe(32), expires_at=now + SESSION_SECONDS)
            self._sessions[_digest(session_id)] = session
            return session_id, session

    def find(self, session_id: str) -> Session | None:
        """The live session with this id (its lifetime renewed), else ``None``."""
        with self._lock:
            now = self._clock()
            session = self._sessions.get(_digest(session_id))
            if session is None or session.expires_at <= now:
                return None
            session.expires_at = now + SESSION_SECONDS
            return session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(_digest(session_id), None)
