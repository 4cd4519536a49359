"""The IANA time zone of a Location that names none: 2.1.1 ``time_zone`` is optional, 2.2.1 requires it.

From the coordinates first (``timezonefinder``: the maintained offline lookup of the time zone
boundary polygons), else from the country when it has one zone. The caller records either as
approximated (routing/versions/v211/objects.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

# ISO 3166-1 alpha-3 (2.1.1/2.2.1 Location.country) -> the country's only IANA zone. Countries
# with several zones (ESP, PRT, USA...) are absent on purpose: their zone needs the coordinates.
ONE_ZONE = {
    "AUT": "Europe/Vienna",
    "BEL": "Europe/Brussels",
    "BGR": "Europe/Sofia",
    "CHE": "Europe/Zurich",
    "CZE": "Europe/Prague",
    "DNK": "Europe/Copenhagen",
    "EST": "Europe/Tallinn",
    "FIN": "Europe/Helsinki",
    "GBR": "Europe/London",
    "GRC": "Europe/Athens",
    "HRV": "Europe/Zagreb",
    "HUN": "Europe/Budapest",
    "IRL": "Europe/Dublin",
    "ISL": "Atlantic/Reykjavik",
    "ITA": "Europe/Rome",
    "LIE": "Europe/Vaduz",
    "LTU": "Europe/Vilnius",
    "LUX": "Europe/Luxembourg",
    "LVA": "Europe/Riga",
    "NLD": "Europe/Amsterdam",
    "NOR": "Europe/Oslo",
    "POL": "Europe/Warsaw",
    "ROU": "Europe/Bucharest",
    "SVK": "Europe/Bratislava",
    "SVN": "Europe/Ljubljana",
    "SWE": "Europe/Stockholm",
}


@cache
def _finder() -> Any:
    """One TimezoneFinder (it maps its data files once); None when the library is unavailable."""
    try:
        from timezonefinder import TimezoneFinder
    except ImportError:  # pragma: no cover - a declared dependency; the country table still works
        return None
    return TimezoneFinder()


def _coordinate(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def zone_of(coordinates: Any, country: Any) -> tuple[str, str] | None:
    """(IANA zone, how it was found) for a Location without ``time_zone``, or None."""
    if isinstance(coordinates, dict):
        lat, lng = _coordinate(coordinates.get("latitude")), _coordinate(coordinates.get("longitude"))
        finder = _finder()
        if finder is not None and lat is not None and lng is not None and -90 <= lat <= 90 and -180 <= lng <= 180:
            zone = finder.timezone_at(lat=lat, lng=lng)
            # "Etc/GMT+2" (at sea) is no place's zone.
            if isinstance(zone, str) and "/" in zone and not zone.startswith("Etc/"):
                return zone, "from the coordinates"
    if isinstance(country, str) and country.upper() in ONE_ZONE:
        return ONE_ZONE[country.upper()], f"from the country {country.upper()} (one zone)"
    return None
