"""Who is calling: pluggable authenticators, and the signed bearer tokens of the default one.

An :class:`Authenticator` turns a request into a user id or raises
:class:`AuthenticationError` (HTTP 401). Two ship:

* :class:`TokenAuthenticator` (the default): ``Authorization: Bearer <token>``
  where the token is an HMAC-SHA256 signature over the user id and an expiry,
  made with a secret only the server (and whoever issues tokens) knows.
  ``tradebook token USER`` prints one; :func:`issue_token` makes one in code.
* :class:`TrustedHeaderAuthenticator`: the user id as a request header
  (``X-User-ID``), for deployments behind a gateway that has already
  authenticated the caller and strips the header from outside requests. Never
  expose a server in this mode directly.

A token reads ``tb1.<user id, base64url>.<expiry, unix seconds>.<signature, base64url>``:

>>> secret = "Jd8v2q-LrX0aT7mZ4wQk1yBn9sHc6eUf5gPo3iRl"
>>> token = issue_token("alice", secret, ttl=60, now=1_700_000_000)
>>> token.split(".")[:3]
['tb1', 'YWxpY2U', '1700000060']
>>> verify_token(token, secret, now=1_700_000_030)
'alice'

A secret must be at least 32 characters and must not be guessable at a
glance (:func:`check_secret`): 32 spaces, one character repeated, or a short
pattern repeated are refused. A verifier refuses tokens that live longer than
its maximum lifetime (``max_lifetime``, 30 days unless told otherwise), since
a token can only be revoked by changing the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from starlette.requests import Request

from ..errors import TradebookError
from .settings import DEFAULT_SECRET_ENV, ConfigError

__all__ = [
    "DEFAULT_MAX_TOKEN_LIFETIME",
    "MIN_SECRET_BITS",
    "MIN_SECRET_LENGTH",
    "TOKEN_VERSION",
    "AuthenticationError",
    "Authenticator",
    "TokenAuthenticator",
    "TrustedHeaderAuthenticator",
    "check_secret",
    "check_user_id",
    "issue_token",
    "load_secret",
    "verify_token",
]

#: The first field of every token; a new format would get a new one.
TOKEN_VERSION = "tb1"
#: Secrets shorter than this are refused (a short HMAC key can be guessed offline).
MIN_SECRET_LENGTH = 32
#: Secrets whose characters carry less than this (estimated from their frequencies) are refused as guessable.
MIN_SECRET_BITS = 80
#: The longest lifetime a verifier accepts by default (30 days): a token is valid until it expires.
DEFAULT_MAX_TOKEN_LIFETIME = 30 * 86_400
#: Clock difference allowed between the machine that issued a token and the one that checks its lifetime.
_CLOCK_SKEW = 60
_MAX_TOKEN_LENGTH = 1024
_CACHE_SIZE = 10_000
_MAX_USER_LENGTH = 128


class AuthenticationError(TradebookError):
    """The request carries no valid credentials (HTTP 401)."""

    code = "unauthenticated"


@runtime_checkable
class Authenticator(Protocol):
    """Anything that names the user behind a request.

    ``authenticate`` returns the user id (1 to 128 printable characters) or
    raises :class:`AuthenticationError`. It runs on every API request, so keep
    it fast; it may await (say, to ask an identity service).
    """

    async def authenticate(self, request: Request) -> str:
        """The caller's user id, or :class:`AuthenticationError`."""
        ...


def check_user_id(user_id: object) -> str:
    """``user_id`` if it is 1 to 128 printable characters, else :class:`ValueError`."""
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= _MAX_USER_LENGTH or not user_id.isprintable():
        raise ValueError(f"a user id is 1 to {_MAX_USER_LENGTH} printable characters, not {user_id!r}")
    return user_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _weakness(key: bytes) -> str | None:
    """Why ``key`` is too weak to sign tokens with, or ``None``."""
    if len(key) < MIN_SECRET_LENGTH:
        return f"it needs at least {MIN_SECRET_LENGTH} characters"
    for period in range(1, len(key) // 2 + 1):
        if len(key) % period == 0 and key == key[:period] * (len(key) // period):
            return f"it is {key[:period]!r} repeated"
    # Shannon's estimate from the characters' frequencies: about 5.4 bits a character for
    # secrets.token_urlsafe(32), about 3.7 for a hex string, nothing for one character repeated.
    counts = Counter(key).values()
    bits = -sum(n * math.log2(n / len(key)) for n in counts)
    if bits < MIN_SECRET_BITS:
        return f"its characters vary too little (about {bits:.0f} bits; at least {MIN_SECRET_BITS} are needed)"
    return None


def check_secret(secret: str | bytes) -> bytes:
    """``secret`` as bytes if it is fit to sign tokens with; :class:`ValueError` saying why not otherwise.

    At least :data:`MIN_SECRET_LENGTH` characters, not a short pattern
    repeated, and about :data:`MIN_SECRET_BITS` bits or more by the
    frequencies of its characters: ``secrets.token_urlsafe(32)`` passes, 32
    spaces do not.
    """
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    why = _weakness(key)
    if why is not None:
        raise ValueError(f"the token secret is too weak to sign with: {why}; {_MAKE_ONE}")
    return key


_MAKE_ONE = "make a random one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _key(secret: str | bytes) -> bytes:
    return check_secret(secret)


def _check_lifetime(max_lifetime: float | None) -> float | None:
    if max_lifetime is not None and (
        isinstance(max_lifetime, bool) or not isinstance(max_lifetime, (int, float)) or not max_lifetime > 0
    ):
        raise ValueError(f"max_lifetime must be a positive number of seconds or None, not {max_lifetime!r}")
    return max_lifetime


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def issue_token(user_id: str, secret: str | bytes, *, ttl: float = 86_400, now: float | None = None) -> str:
    """A bearer token for ``user_id`` valid for ``ttl`` seconds from ``now`` (default: the current time)."""
    check_user_id(user_id)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= 10 * 365 * 86_400:
        raise ValueError(f"ttl must be a positive number of seconds (at most ten years), not {ttl!r}")
    issued = time.time() if now is None else now
    payload = f"{TOKEN_VERSION}.{_b64(user_id.encode('utf-8'))}.{int(issued + ttl)}"
    return f"{payload}.{_sign(_key(secret), payload)}"


def verify_token(
    token: str, secret: str | bytes, *, now: float | None = None, max_lifetime: float | None = None
) -> str:
    """The user id a valid, unexpired token names; :class:`AuthenticationError` otherwise.

    With ``max_lifetime`` (seconds), a token that expires later than that from
    ``now`` is refused too, as one issued for longer than allowed.
    """
    now = time.time() if now is None else now
    return _verify(token, _key(secret), now, _check_lifetime(max_lifetime))[0]


def _verify(token: str, key: bytes, now: float, max_lifetime: float | None = None) -> tuple[str, int]:
    """The user id and expiry of a valid, unexpired token that lives at most ``max_lifetime`` from now."""
    if len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 3:
        raise AuthenticationError("the bearer token is malformed")
    version, user_part, expiry_part, signature = token.split(".")
    payload = f"{version}.{user_part}.{expiry_part}"
    if version != TOKEN_VERSION or not payload.isascii():
        raise AuthenticationError("the bearer token is malformed")
    if not hmac.compare_digest(signature, _sign(key, payload)):
        raise AuthenticationError("the bearer token's signature is not valid")
    # Signed by us from here on, so the fields are well formed; check anyway, cheaply.
    try:
        user_id = check_user_id(_unb64(user_part).decode("utf-8"))
        expiry = int(expiry_part)
    except (ValueError, binascii.Error):
        raise AuthenticationError("the bearer token is malformed") from None
    if expiry <= now:
        raise AuthenticationError("the bearer token has expired")
    # The token carries its expiry only, so "issued for too long" shows as "expires too far from now".
    if max_lifetime is not None and expiry - now > max_lifetime + _CLOCK_SKEW:
        raise AuthenticationError(
            f"the bearer token lives longer than this server accepts ({max_lifetime:g} seconds): issue a shorter one"
        )
    return user_id, expiry


def load_secret(env_var: str = DEFAULT_SECRET_ENV) -> bytes:
    """The token secret from the environment variable ``env_var``; :class:`ConfigError` if unset or short."""
    value = os.environ.get(env_var, "")
    if not value:
        raise ConfigError(
            f"set {env_var} to the token secret (at least {MIN_SECRET_LENGTH} characters), for example: "
            f"export {env_var}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    key = value.encode("utf-8")
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{env_var} is too short: a token secret needs at least {MIN_SECRET_LENGTH} characters")
    why = _weakness(key)
    if why is not None:
        raise ConfigError(f"{env_var} is too weak to sign tokens with: {why}; {_MAKE_ONE}")
    return key


class TokenAuthenticator:
    """``Authorization: Bearer <token>`` with tokens from :func:`issue_token` and the same secret.

    Tokens that expire more than ``max_lifetime`` seconds from now (30 days by
    default; ``None`` for no limit) are refused, as issued for too long.
    ``clock`` returns unix seconds (injectable for tests).
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        clock: Callable[[], float] = time.time,
        max_lifetime: float | None = DEFAULT_MAX_TOKEN_LIFETIME,
    ) -> None:
        self._key = _key(secret)
        self._clock = clock
        self.max_lifetime = _check_lifetime(max_lifetime)
        # Tokens already verified -> (user id, expiry): a client sends the same token on every request.
        self._verified: dict[str, tuple[str, int]] = {}

    @classmethod
    def from_env(
        cls, env_var: str = DEFAULT_SECRET_ENV, *, max_lifetime: float | None = DEFAULT_MAX_TOKEN_LIFETIME
    ) -> TokenAuthenticator:
        """An authenticator whose secret is the environment variable ``env_var``."""
        return cls(load_secret(env_var), max_lifetime=max_lifetime)

    def issue(self, user_id: str, ttl: float = 86_400) -> str:
        """A token for ``user_id`` that this authenticator accepts for ``ttl`` seconds (at most ``max_lifetime``)."""
        if self.max_lifetime is not None and ttl > self.max_lifetime:
            raise ValueError(f"ttl {ttl!r} exceeds this authenticator's max_lifetime of {self.max_lifetime:g} seconds")
        return issue_token(user_id, self._key, ttl=ttl, now=self._clock())

    async def authenticate(self, request: Request) -> str:
        """The user id of the request's bearer token."""
        header = request.headers.get("authorization")
        if header is None:
            raise AuthenticationError("authentication required: send Authorization: Bearer <token>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("the Authorization header must be: Bearer <token>")
        token = token.strip()
        now = self._clock()
        known = self._verified.get(token)
        if known is not None and known[1] > now:
            return known[0]
        user_id, expiry = _verify(token, self._key, now, self.max_lifetime)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()  # bounded; live clients' tokens come straight back
        self._verified[token] = (user_id, expiry)
        return user_id


class TrustedHeaderAuthenticator:
    """The user id as the gateway put it in ``header`` (default ``X-User-ID``); no other check.

    Only for a server that nothing but an authenticating gateway can reach.
    """

    def __init__(self, header: str = "X-User-ID") -> None:
        if not header or not header.isascii() or not header.isprintable() or " " in header:
            raise ValueError(f"not a header name: {header!r}")
        self.header = header

    async def authenticate(self, request: Request) -> str:
        """The user id in the trusted header."""
        value = request.headers.get(self.header)
        if value is None:
            raise AuthenticationError(f"authentication required: the {self.header} header is missing")
        try:
            return check_user_id(value)
        except ValueError:
            raise AuthenticationError(f"the {self.header} header does not hold a valid user id") from None
