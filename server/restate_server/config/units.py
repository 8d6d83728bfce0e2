"""Durations and byte sizes in upstream's textual forms.

Upstream writes durations with the `jiff` crate: "friendly" text such as `1h 30m`, `5 hours`, `500ms`,
or ISO 8601 such as `PT10S`; the string `"0"` is zero; years and months are refused (their length is
not fixed), days are 24 hours (`util/time/src/duration.rs`). It prints them in jiff's compact form,
largest unit days, units separated by a space (`1d`, `1h 30m`, `1s 500ms`), which is also how the admin
API renders them. Byte sizes use the `bytesize` crate: an integer, or a number with a unit (`10 MiB`,
`4.0 GiB`, `500kb`), printed with binary units and one decimal (`10.0 MiB`; `util/bytecount`).
These parsers stand alone so the admin API and the invoker can share them with the configuration.
"""

from __future__ import annotations

import re

_NANOS_PER_SECOND = 1_000_000_000

# Friendly designators -> nanoseconds. Order matters: units must appear from largest to smallest.
_UNITS: tuple[tuple[tuple[str, ...], int | None], ...] = (
    (("y", "yr", "yrs", "year", "years"), None),  # refused: not a fixed length
    (("mo", "mos", "month", "months"), None),
    (("w", "wk", "wks", "week", "weeks"), 7 * 86_400 * _NANOS_PER_SECOND),
    (("d", "day", "days"), 86_400 * _NANOS_PER_SECOND),
    (("h", "hr", "hrs", "hour", "hours"), 3_600 * _NANOS_PER_SECOND),
    (("m", "min", "mins", "minute", "minutes"), 60 * _NANOS_PER_SECOND),
    (("s", "sec", "secs", "second", "seconds"), _NANOS_PER_SECOND),
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), 1_000_000),
    (("µs", "μs", "us", "usec", "usecs", "microsecond", "microseconds"), 1_000),
    (("ns", "nsec", "nsecs", "nanosecond", "nanoseconds"), 1),
)
_RANK = {name: rank for rank, (names, _) in enumerate(_UNITS) for name in names}
_FRIENDLY_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zµμ]+)\s*,?\s*", re.IGNORECASE)
_HMS = re.compile(r"(\d+):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_ISO = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d{1,9})?)S)?)?",
    re.IGNORECASE,
)
# Printed units, largest first: (designator, nanoseconds).
_PRINT_UNITS = (
    ("d", 86_400 * _NANOS_PER_SECOND),
    ("h", 3_600 * _NANOS_PER_SECOND),
    ("m", 60 * _NANOS_PER_SECOND),
    ("s", _NANOS_PER_SECOND),
    ("ms", 1_000_000),
    ("µs", 1_000),
    ("ns", 1),
)


def parse_duration(value: str | int | float) -> float:
    """Seconds in a jiff friendly or ISO 8601 duration; ValueError if it is not one.

    A bare number has no unit; upstream refuses it (its durations deserialize from strings only),
    except zero, which is how `"0"` reads once an env var's value has been typed as TOML.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '10s', got {value!r}")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise ValueError(f"a duration needs a unit, e.g. '{value}s' or '{value}ms' (got {value!r})")
    return _nanos(value) / _NANOS_PER_SECOND


def _nanos(text: str) -> int:
    raw = text.strip()
    if raw == "0":
        return 0
    if not raw:
        raise ValueError("empty duration")
    body, negative = raw, False
    if body[0] in "+-":
        negative, body = body[0] == "-", body[1:].lstrip()
    if body.lower().endswith(" ago"):
        negative, body = not negative, body[:-4].rstrip()
    nanos = _iso(body) if body[:1] in "Pp" else _friendly(body)
    if nanos is None:
        raise ValueError(f"invalid duration {text!r}: expected e.g. '10s', '1h 30m', '500ms' or 'PT10S'")
    if negative and nanos:
        raise ValueError(f"invalid duration {text!r}: durations cannot be negative")
    return nanos


def _friendly(body: str) -> int | None:
    total, pos, last_rank, fractional = 0, 0, -1, False
    while pos < len(body):
        hms = _HMS.fullmatch(body, pos)
        if hms is not None:  # jiff allows a trailing HH:MM:SS[.fff] after the date units
            if last_rank >= _RANK["h"] or fractional:
                return None
            hours, minutes, seconds, frac = hms.groups()
            total += (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * _NANOS_PER_SECOND
            total += int((frac or "0").ljust(9, "0"))
            return total
        part = _FRIENDLY_PART.match(body, pos)
        if part is None or fractional:
            return None
        number, unit = part.group(1), part.group(2).lower()
        rank = _RANK.get(unit)
        if rank is None or rank <= last_rank:
            return None
        scale = _UNITS[rank][1]
        if scale is None:
            raise ValueError(f"invalid duration {body!r}: please use units of days or smaller")
        if "." in number:
            if rank < _RANK["h"]:
                return None
            fractional = True
        total += _scaled(number, scale)
        last_rank, pos = rank, part.end()
    return total if last_rank >= 0 else None


def _iso(body: str) -> int | None:
    match = _ISO.fullmatch(body)
    if match is None or body.upper() in {"P", "PT"} or body.upper().endswith("T"):
        return None
    years, months, weeks, days, hours, minutes, seconds = match.groups()
    if years or months:
        raise ValueError(f"invalid duration {body!r}: please use units of days or smaller")
    total = 0
    for number, scale in (
        (weeks, 7 * 86_400),
        (days, 86_400),
        (hours, 3_600),
        (minutes, 60),
        (seconds, 1),
    ):
        if number:
            total += _scaled(number.replace(",", "."), scale * _NANOS_PER_SECOND)
    return total


def _scaled(number: str, scale: int) -> int:
    whole, _, frac = number.partition(".")
    return int(whole) * scale + (int(frac) * scale) // (10 ** len(frac)) if frac else int(whole) * scale


def format_duration(seconds: float) -> str:
    """Upstream's compact rendering: `1d`, `1h 30m`, `1s 500ms`, `0s`."""
    if seconds < 0:
        raise ValueError("durations cannot be negative")
    remaining = round(seconds * _NANOS_PER_SECOND)
    parts: list[str] = []
    for designator, scale in _PRINT_UNITS:
        count, remaining = divmod(remaining, scale)
        if count:
            parts.append(f"{count}{designator}")
    return " ".join(parts) if parts else "0s"


def format_iso_duration(seconds: float) -> str:
    """ISO 8601 rendering (`PT10S`, `P1D`), as jiff's temporal printer writes it."""
    nanos = round(seconds * _NANOS_PER_SECOND)
    days, nanos = divmod(nanos, 86_400 * _NANOS_PER_SECOND)
    hours, nanos = divmod(nanos, 3_600 * _NANOS_PER_SECOND)
    minutes, nanos = divmod(nanos, 60 * _NANOS_PER_SECOND)
    secs, frac = divmod(nanos, _NANOS_PER_SECOND)
    out = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or frac:
        time += f"{secs}" + (f".{frac:09d}".rstrip("0") if frac else "") + "S"
    if time:
        out += "T" + time
    return out if out != "P" else "PT0S"


# bytesize units, lower-cased -> bytes. A bare "k"/"m"/... is decimal, as in bytesize.
_BYTE_UNITS: dict[str, int] = {"": 1, "b": 1}
for _i, (_dec, _bin) in enumerate(
    (("k", "ki"), ("m", "mi"), ("g", "gi"), ("t", "ti"), ("p", "pi"), ("e", "ei"))
):
    _BYTE_UNITS[_dec] = _BYTE_UNITS[_dec + "b"] = 1000 ** (_i + 1)
    _BYTE_UNITS[_bin] = _BYTE_UNITS[_bin + "b"] = 1024 ** (_i + 1)
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_bytes(value: str | int) -> int:
    """Bytes in an integer or a human size (`10 MiB`, `4.0 GiB`, `500kb`); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a byte size, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"byte sizes cannot be negative (got {value})")
        return value
    match = _BYTES.fullmatch(value)
    if match is None or match.group(2).lower() not in _BYTE_UNITS:
        raise ValueError(f"invalid byte size {value!r}: expected e.g. '10 MiB' or an integer")
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])


def format_bytes(count: int) -> str:
    """bytesize's default rendering: `512 B`, `10.0 MiB`, `4.0 GiB`."""
    if count < 1024:
        return f"{count} B"
    value, unit = float(count), "B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):  # noqa: B007 (unit is used after the loop)
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"
