"""HTTP/1.1 request/response attempts: the replayed journal goes out as the body, the answer comes back.

aiohttp carries the bytes; this module only reports the response to the attempt (`StreamListener`),
chunk by chunk as it arrives, and stops reading the moment the attempt resets the exchange, so a
deployment that keeps sending after the attempt failed costs nothing more. Redirects are never
followed: a 3xx would otherwise make the client re-POST the journal, with the request-identity token
and the deployment's additional headers, to wherever the `location` header points.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

from restate_server.invoker.streams import StreamListener
from restate_server.web import tls


class Http1Exchange:
    """One POST to a deployment; `run` reports its response to the listener."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        listener: StreamListener,
        timeout: float,
    ) -> None:
        self._session = session
        self._url = url
        self._headers = headers
        self._body = body
        self._listener = listener
        self._timeout = timeout
        self._response: aiohttp.ClientResponse | None = None
        self.closed = False

    async def run(self) -> None:
        """Send the request and feed the listener until the response ends, fails or is reset."""
        listener = self._listener
        try:
            async with self._session.post(
                self._url,
                data=self._body,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,
                ssl=await _tls_context() if self._url[:6].lower() == "https:" else True,
            ) as response:
                self._body = b""  # sent: not kept (it can be megabytes) while the answer streams
                self._response = response
                listener.on_headers(response.status, {k.lower(): v for k, v in response.headers.items()})
                while not self.closed:
                    chunk = await response.content.readany()
                    if not chunk:
                        break
                    listener.on_data(chunk)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if not self.closed:
                self.closed = True
                listener.on_error(exc)
            return
        if not self.closed:
            self.closed = True
            listener.on_end()

    def reset(self) -> None:
        """Stop reading; the connection is closed rather than drained (the body may be endless)."""
        self.closed = True
        if self._response is not None:
            self._response.close()


async def _tls_context() -> ssl.SSLContext:
    """``https://`` deployments' context: never aiohttp's default (see `restate_server.web.tls`)."""
    return await asyncio.to_thread(tls.deployment_context)  # the first call loads the CA store


class Http1Client:
    """The node's HTTP/1.1 connection pool to deployments, created on first use."""

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    def exchange(
        self,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        listener: StreamListener,
        timeout: float,
    ) -> Http1Exchange:
        """A POST of `body` to `url`, not sent until `Http1Exchange.run`."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=False),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
                auto_decompress=False,
            )
        return Http1Exchange(self._session, url, headers, body, listener, timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
