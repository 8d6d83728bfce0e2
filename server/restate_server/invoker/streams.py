"""The seam between an attempt and the HTTP clients that carry it (h2c bidi, HTTP/1.1).

Both clients push what the deployment sends into a `StreamListener` (the attempt) and hand back a
`Stream` the attempt can reset. Unit tests put byte-replaying fakes on either side of this seam.
"""

from __future__ import annotations

from typing import Protocol


class StreamListener(Protocol):
    """Receives one response, in order: headers, then body chunks, then the end or an error."""

    def on_headers(self, status: int, headers: dict[str, str]) -> None: ...
    def on_data(self, data: bytes) -> None: ...
    def on_end(self) -> None: ...
    def on_error(self, error: Exception) -> None: ...


class Stream(Protocol):
    """One exchange with a deployment, as the attempt that owns it sees it."""

    @property
    def closed(self) -> bool:
        """True once the exchange ended, failed or was reset; the listener hears nothing more."""
        ...

    def reset(self) -> None:
        """Abandon the exchange now: stop reading and release the connection."""
        ...


class BidiStream(Stream, Protocol):
    """A stream whose request body stays open for notifications (h2c)."""

    def send(self, data: bytes) -> None:
        """Queue request-body bytes; never blocks."""
        ...

    def end(self) -> None:
        """Close the request body (the SDK then ends or suspends)."""
        ...
