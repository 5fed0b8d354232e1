"""Keeping secrets out of manifests: environment variables, command lines and URLs.

A manifest is stored forever, signed into the ledger and handed to auditors, so anything
that may be a secret is replaced by :data:`REDACTED` before it is recorded. Redaction
errs on the side of hiding: a harmless variable whose name contains ``KEY`` loses its
value; a credential must never survive.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

REDACTED = "[REDACTED]"

#: Substrings of variable names (and ``--option`` names) whose values are secrets.
SECRET_NAME_PARTS = (
    "KEY",
    "SECRET",
    "TOKEN",
    "PASS",  # PASSWORD, PASSWD, PASSPHRASE, RABBITMQ_DEFAULT_PASS…
    "CREDENTIAL",
    "PRIVATE",
    "AUTH",
    "COOKIE",
    "SESSION",
    "SIGNATURE",
)

#: Values that are secrets whatever their variable is called (well-known token formats).
_SECRET_VALUE = re.compile(
    r"""(
        \b(?:AKIA|ASIA)[0-9A-Z]{16}\b          # AWS access key id
      | \bgh[pousr]_[A-Za-z0-9]{20,}           # GitHub tokens
      | \bgithub_pat_[A-Za-z0-9_]{20,}
      | \bglpat-[A-Za-z0-9_-]{20,}             # GitLab
      | \bxox[abposr]-[A-Za-z0-9-]{10,}        # Slack
      | \bsk-[A-Za-z0-9_-]{20,}                # OpenAI-style API keys
      | \bhf_[A-Za-z0-9]{20,}                  # Hugging Face
      | \beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}  # JWT
      | -----BEGIN[ A-Z]*PRIVATE\ KEY-----
    )""",
    re.VERBOSE,
)

#: ``scheme://userinfo@`` — the userinfo part of a URL (RFC 3986 §3.2.1), up to the *last*
#: ``@`` of the authority: an unencoded ``@`` in a password is invalid but works with most
#: clients (``urllib``, pip), so it must not end the match early and leak the rest.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]*)@")
#: Names that end in PWD are passwords (MYSQL_PWD), except the shell's working directories.
_NOT_SECRET_PWD = frozenset({"PWD", "OLDPWD"})


def is_secret_name(name: str) -> bool:
    """Whether a variable or option named ``name`` holds a secret by its name."""
    upper = name.upper()
    if upper.endswith("PWD") and upper not in _NOT_SECRET_PWD:
        return True
    return any(part in upper for part in SECRET_NAME_PARTS)


def strip_url_credentials(text: str, replacement: str | None = REDACTED) -> str:
    """``text`` with the userinfo of every URL in it replaced (or removed if ``None``).

    ``https://user:token@host/x`` becomes ``https://[REDACTED]@host/x``; the user name
    goes too, since tokens are often passed in its place (``https://<token>@github.com``).
    """

    def _sub(match: re.Match[str]) -> str:
        if replacement is None:
            return match.group("scheme")
        return f"{match.group('scheme')}{replacement}@"

    return _URL_USERINFO.sub(_sub, text)


def redact_value(value: str) -> str:
    """A value with embedded URL credentials and well-known token formats redacted."""
    if _SECRET_VALUE.search(value):
        return REDACTED
    return strip_url_credentials(value)


def redact_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """All variables, sorted by name, with secret-looking values replaced by :data:`REDACTED`."""
    return {
        name: (REDACTED if is_secret_name(name) else redact_value(value))
        for name, value in sorted(environ.items())
    }


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A command line with the values of secret-looking options redacted.

    Handles ``--token=abc``, ``--token abc``, ``-p`` style is left alone (too ambiguous),
    and credentials inside URLs and known token formats anywhere.
    """
    result: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            result.append(REDACTED)
            hide_next = False
            continue
        if arg.startswith("-") and not arg.startswith("---"):
            name, sep, _ = arg.lstrip("-").partition("=")
            if is_secret_name(name.replace("-", "_")):
                if sep:
                    result.append(arg.split("=", 1)[0] + "=" + REDACTED)
                else:
                    result.append(arg)
                    hide_next = True
                continue
        result.append(redact_value(arg))
    return result
