"""Moved to :mod:`tradebook.cli.db`; this name stays so existing imports keep working."""

from ..cli.db import POSTGRES_EXTRA_HINT as POSTGRES_EXTRA_HINT
from ..cli.db import DatabaseTarget, parse_database_url, run_db_command
from ..cli.db import add_command as add_db_command

__all__ = ["DatabaseTarget", "add_db_command", "parse_database_url", "run_db_command"]
