"""manage.py create_token USER [--name N] [--expires-in 30d] [--read-only]

Prints a new API token for USER, for scripts: the token alone on stdout (so
``TOKEN=$(manage.py create_token ci)`` works), what it is on stderr.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiToken, parse_lifetime
from workspaces import audit


class Command(BaseCommand):
    help = "Make an API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("user", help="The username the token acts as")
        parser.add_argument("--name", default="command line", help="What the token is for")
        parser.add_argument(
            "--expires-in", default="", help="Lifetime such as 30d, 12h or 90m (default: never)"
        )
        parser.add_argument(
            "--read-only", action="store_true", help="The token may read, and change nothing"
        )

    def handle(self, *args, user: str, name: str, expires_in: str, read_only: bool, **options):
        if "\x00" in user + name:
            raise CommandError("A user name or token name cannot hold a NUL character.")
        account = get_user_model().objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"There is no user named {user!r}.")
        if not account.is_active:
            raise CommandError(f"User {user!r} is inactive; a token of theirs would not work.")
        if not name.strip():
            raise CommandError("Give the token a name (--name).")
        try:
            lifetime = parse_lifetime(expires_in) if expires_in else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        token, secret = ApiToken.issue(account, name, lifetime=lifetime, read_only=read_only)
        audit.record(None, "created", token, user=account.username, read_only=read_only)
        expiry = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
            if token.expires_at
            else "never expires"
        )
        access = "read-only" if read_only else "read and write"
        self.stderr.write(f"Token {token.name!r} for {account.username}: {access}, {expiry}.")
        self.stdout.write(secret)
