"""One module per thing a user or the clock does; `ROUTES` is the table Chat's dispatch is given."""

from __future__ import annotations

from bot.chat.dispatch import Routes
from bot.chat.events import Kind
from handlers import added, help, overview, refresh, removed, score, settings

ROUTES: Routes = {
    (Kind.COMMAND, "score"): score.handle,
    (Kind.COMMAND, "*"): help.handle,
    (Kind.MESSAGE, "score"): score.handle,
    (Kind.MESSAGE, "*"): help.handle,
    (Kind.CLICK, "refresh"): refresh.handle,
    (Kind.CLICK, "overview"): overview.handle_page,
    (Kind.CLICK, "overview-team"): overview.handle_team,
    (Kind.CLICK, "settings"): settings.open_dialog,
    (Kind.CLICK, "settings-check"): settings.check,
    (Kind.CLICK, "settings-save"): settings.save,
    (Kind.CLICK, "settings-cancel"): settings.cancel,
    (Kind.CLICK, "dialog-closed"): settings.cancel,
    (Kind.ADDED, "*"): added.handle,
    (Kind.REMOVED, "*"): removed.handle,
}
