"""Ferry's refusals and failures as Horizon messages: the panel's text, then Ferry's own."""
import sys

from horizon import exceptions

from ferryclient import exceptions as ferry_exc


def handle(request, what, redirect=None):
    """Call inside an `except` block: show `what`, followed by Ferry's message when the error
    came from Ferry's client, through Horizon's exception handling (never a server error for
    Ferry's errors: the enabled file registers them as recoverable)."""
    exc = sys.exc_info()[1]
    message = '%s %s' % (what, exc) if isinstance(exc, ferry_exc.ClientException) else what
    exceptions.handle(request, message, redirect=redirect)
