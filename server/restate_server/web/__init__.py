"""HTTP serving shared by the ingress, the admin API and the node port: listeners and their limits.

Below every component (it imports none of them): `serving` binds an aiohttp application to a
listener, `guard` is the protocol in front of each connection (connection cap, header-read timeout,
the seam for a protocol sniffer), `shedding` answers requests past a concurrency limit.
"""
