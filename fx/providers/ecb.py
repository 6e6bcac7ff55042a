"""European Central Bank euro foreign exchange reference rates (``eurofxref-daily.xml``).

No key: this is the embedded default and the last provider of the chain. The feed is a gesmes
envelope with about 30 currencies quoted per 1 EUR::

    <gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
                     xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
      <gesmes:subject>Reference rates</gesmes:subject>
      <Cube><Cube time="2024-05-17"><Cube currency="USD" rate="1.0866"/>…</Cube></Cube>
    </gesmes:Envelope>

It is published on TARGET working days around 16:00 CET; on weekends and holidays it keeps
serving the last working day, so ``as_of`` is the ``Cube time`` date (00:00 UTC), not today.
The parser resolves no entities, loads no DTD and touches no network.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.conf import settings
from lxml import etree

from fx.errors import ProviderError
from fx.providers import ProviderRates, _fetch, check_as_of, collect_rates

NAME = "ecb"
PIVOT = "EUR"
KEY_SETTING = None
NS = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
GESMES = "http://www.gesmes.org/xml/2002-08-01"


def configured() -> bool:
    return bool(settings.FX_ECB_URL)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def parse(body: bytes) -> ProviderRates:
    """Parse an eurofxref XML document; raise a transient ``ProviderError`` if it is not one."""
    try:
        root = etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise ProviderError(NAME, f"invalid or truncated XML ({len(body)} bytes): {str(exc)[:100]}",
                            transient=True, code="bad_xml") from None
    if root.getroottree().docinfo.doctype:
        raise ProviderError(NAME, "XML with a DOCTYPE is refused (not the ECB feed)", transient=True, code="bad_xml")
    if root.tag != f"{{{GESMES}}}Envelope":
        raise ProviderError(NAME, f"not an ECB eurofxref document (root element {root.tag!r})", transient=True,
                            code="bad_xml")
    days = root.findall(f"{{{NS}}}Cube/{{{NS}}}Cube[@time]")
    if not days:
        raise ProviderError(NAME, "no <Cube time=…> in the feed", transient=True, code="no_rates")
    # The daily feed has one day; the 90-day and historical feeds list the newest first.
    dated = []
    for day in days:
        try:
            dated.append((date.fromisoformat(day.get("time", "").strip()), day))
        except ValueError:
            raise ProviderError(NAME, f"bad Cube time {day.get('time')!r}", transient=True, code="bad_xml") from None
    when, cube = max(dated, key=lambda pair: pair[0])
    entries = [(c.get("currency"), c.get("rate")) for c in cube.findall(f"{{{NS}}}Cube")]
    rates, rejected = collect_rates(NAME, entries, text=True)
    rates.pop(PIVOT, None)
    if not rates:
        raise ProviderError(NAME, f"no usable rates in the feed for {when}", transient=True, code="no_rates")
    as_of = check_as_of(NAME, datetime(when.year, when.month, when.day, tzinfo=UTC))
    return ProviderRates(provider=NAME, base=PIVOT, as_of=as_of, rates=rates, rejected=rejected)


def fetch(*, symbols: list[str] | None = None, timeout: float | None = None) -> ProviderRates:
    """Fetch the feed. ``symbols`` is ignored: the ECB serves its whole table in one document."""
    resp = _fetch.get(NAME, settings.FX_ECB_URL, timeout=timeout)
    _fetch.raise_for_status(NAME, resp)
    return parse(resp.body)
