"""Errors the Ferry client raises: each one prints as a single clear line."""
from ferryclient.safetext import printable


class ClientException(Exception):
    """Base class: str() is a one-line message fit for the user."""


class EndpointNotFound(ClientException):
    pass


class ConnectionError(ClientException):  # noqa: A001 (shadowing the builtin on purpose)
    pass


class UnsupportedVersion(ClientException):
    """The API microversion asked for is one this client or the server cannot give."""


class HttpError(ClientException):
    """An error answer from the Ferry API (`{"error": {"code", "title", "message"}}`)."""

    def __init__(self, status, title, message, request_id=None, ferry_code=None,
                 method=None, url=None):
        self.status = status
        self.title = title
        self.message = message
        self.request_id = request_id
        self.ferry_code = ferry_code
        self.method = method
        self.url = url
        super().__init__(self._line())

    def _line(self):
        msg = ' '.join(str(self.message or self.title or 'Error').split())
        msg = msg[:1].upper() + msg[1:]
        if not msg.endswith(('.', '!', '?')):
            msg += '.'
        extra = 'HTTP %s' % self.status
        if self.request_id:
            extra += ', request %s' % self.request_id
        return '%s (%s)' % (msg, extra)


class NotFound(HttpError):
    pass


class Forbidden(HttpError):
    pass


class Conflict(HttpError):
    pass


_BY_STATUS = {403: Forbidden, 404: NotFound, 409: Conflict}


def from_response(resp, method=None, url=None):
    """Build the matching HttpError from a requests-like response."""
    status = resp.status_code
    title = getattr(resp, 'reason', None) or 'Error'
    message = None
    ferry_code = None
    try:
        body = resp.json()
    except Exception:  # not JSON: a proxy page, an HTML error, nothing
        body = None
    if isinstance(body, dict):
        err = body.get('error')
        if isinstance(err, dict):
            message = err.get('message')
            title = err.get('title') or title
            ferry_code = err.get('ferry_code')
        elif isinstance(err, str):
            message = err
        elif isinstance(body.get('message'), str):
            message = body['message']
    if not message:
        text = (getattr(resp, 'text', '') or '').strip()
        message = '%s %s' % (title, text[:200]) if text and len(text) < 200 else title
    request_id = resp.headers.get('x-openstack-request-id') if resp.headers else None
    cls = _BY_STATUS.get(status, HttpError)
    # Messages quote names tenants chose: shown on a terminal, so no escapes in them.
    title, message = printable(str(title)), printable(str(message))
    request_id = printable(request_id) if isinstance(request_id, str) else request_id
    ferry_code = printable(ferry_code) if isinstance(ferry_code, str) else ferry_code
    return cls(status, title, message, request_id=request_id, ferry_code=ferry_code,
               method=method, url=url)
