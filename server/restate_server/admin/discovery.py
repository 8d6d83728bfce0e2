"""Discovery I/O: fetching ``{deployment}/discover`` over h2c or HTTP/1.1, with bounded retries.

Everything about the answer is judged by the sans-IO :mod:`restate_server.protocol.discovery`; this
module only moves bytes, signs the request and turns transport failures into upstream's errors
(META0003 unreachable, META0014 h2c against an HTTP/1.1-only server).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

from restate_server.invoker.signing import RequestSigner
from restate_server.protocol import discovery

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0  # seconds per attempt: an SDK answers discovery at once
DEFAULT_RETRY_DELAYS = (0.25, 0.5, 1.0)  # a couple of seconds in all, for endpoints still starting
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class ClientError(discovery.DiscoveryError):
    """The request could not be made or answered (META0003)."""

    code = "META0003"

    def __init__(self, url: str, reason: str, *, retryable: bool) -> None:
        super().__init__(f"error when calling '{url}': {reason}")
        self.retryable = retryable


class PossiblyHttp11Only(discovery.DiscoveryError):
    """h2c prior knowledge was answered with HTTP/1.1 (META0014)."""

    code = "META0014"

    def __init__(self, url: str) -> None:
        super().__init__(
            f"error when calling '{url}': server possibly supports only HTTP1.1, "
            "consider discovery with --use-http1.1."
        )


class BadStatus(discovery.DiscoveryError):
    """The endpoint answered with an error status (META0003)."""

    code = "META0003"

    def __init__(self, status: int, headers: httpx.Headers, body: str) -> None:
        shown = "{" + ", ".join(f'"{k}": "{v}"' for k, v in headers.items()) + "}"
        if status == HTTPStatus.NOT_FOUND:
            text = (
                "got status code '404'. Make sure the provided URI has the correct path where the Restate SDK "
                f"endpoint is mounted. Response headers: {shown}. Body: {body}"
            )
        else:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "<unknown status code>"
            text = f"got status code '{status} {phrase}'. Response headers: {shown}. Body: {body}"
        super().__init__(text)
        self.retryable = status in _RETRYABLE_STATUS


class DiscoveryClient:
    """Discovers deployments; an instance is the registry's ``Discoverer``."""

    def __init__(
        self,
        *,
        signer: RequestSigner | None = None,
        request_headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self._signer = signer
        self._request_headers = dict(request_headers or {})
        self._timeout = timeout
        self._retry_delays = tuple(retry_delays)

    async def __call__(
        self, uri: str, *, use_http_11: bool, additional_headers: Mapping[str, str]
    ) -> discovery.DiscoveredEndpoint:
        """Fetch and validate the manifest of the endpoint at ``uri``."""
        return await discover(
            uri,
            use_http_11=use_http_11,
            additional_headers={**self._request_headers, **additional_headers},
            signer=self._signer,
            attempt_timeout=self._timeout,
            retry_delays=self._retry_delays,
        )


async def discover(
    uri: str,
    *,
    use_http_11: bool = False,
    additional_headers: Mapping[str, str] | None = None,
    signer: RequestSigner | None = None,
    attempt_timeout: float = DEFAULT_TIMEOUT,
    retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
) -> discovery.DiscoveredEndpoint:
    """Fetch ``{uri}/discover`` and validate it; raises :class:`discovery.DiscoveryError`."""
    url = discovery.discover_url(uri)
    delays = iter(retry_delays)
    while True:
        try:
            return await _attempt(url, use_http_11, additional_headers or {}, signer, attempt_timeout)
        except discovery.DiscoveryError as e:
            delay = next(delays, None) if e.retryable else None
            if delay is None:
                raise
            log.warning("discovery of %s failed, retrying in %.2fs: %s", url, delay, e)
            await asyncio.sleep(delay)


def _root_cause(error: BaseException) -> str:
    """The innermost cause, with OS errors worded like upstream's (``… (os error 111)``)."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    if isinstance(error, OSError) and error.errno is not None:
        return f"tcp connect error: {os.strerror(error.errno)} (os error {error.errno})"
    return str(error) or type(error).__name__


async def _attempt(
    url: str,
    use_http_11: bool,
    additional_headers: Mapping[str, str],
    signer: RequestSigner | None,
    attempt_timeout: float,
) -> discovery.DiscoveredEndpoint:
    headers = {"accept": discovery.ACCEPT, **additional_headers}
    if signer is not None:
        headers.update(signer.headers(discovery.DISCOVER_PATH))
    # http:// without the HTTP/1.1 flag means h2c with prior knowledge; https negotiates by ALPN.
    http1 = use_http_11 or url.startswith("https:")
    http2 = not use_http_11
    import httpx  # about 0.1 s to import: loaded on the first discovery, not at start-up

    async with httpx.AsyncClient(
        http1=http1, http2=http2, timeout=attempt_timeout, follow_redirects=False
    ) as client:
        try:
            response = await client.get(url, headers=headers)
        except httpx.RemoteProtocolError as e:
            if http2 and not http1:
                raise PossiblyHttp11Only(url) from e
            reason = (
                "server possibly supports only HTTP/2, consider discovering without --use-http1.1.\n"
                f"Reason: client error: {e}"
            )
            raise ClientError(url, reason, retryable=False) from e
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            reason = f"unable to reach the remote endpoint.\nReason: client error (Connect): {_root_cause(e)}"
            raise ClientError(url, reason, retryable=True) from e
        except httpx.TimeoutException as e:
            # Not retried: a hanging endpoint would otherwise hold the admin request for many timeouts.
            raise ClientError(
                url, f"client error: request timed out ({type(e).__name__})", retryable=False
            ) from e
        except httpx.HTTPError as e:
            raise ClientError(url, f"client error: {e or type(e).__name__}", retryable=True) from e
    if not response.is_success:
        raise BadStatus(response.status_code, response.headers, response.text)
    return discovery.parse_manifest(
        response.content,
        content_type=response.headers.get("content-type"),
        http_version=discovery.HTTP_11 if response.http_version == "HTTP/1.1" else discovery.HTTP_2,
        x_restate_server=response.headers.get("x-restate-server"),
    )
