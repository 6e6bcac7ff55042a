"""Provider responses in their real wire formats, built in code (good ones and broken ones)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

# ECB reference rates of Friday 2024-05-17 (per 1 EUR), as the ECB published them.
ECB_RATES = {
    "USD": "1.0866", "JPY": "169.20", "BGN": "1.9558", "CZK": "24.696", "DKK": "7.4613", "GBP": "0.85550",
    "HUF": "385.23", "PLN": "4.2625", "RON": "4.9762", "SEK": "11.6320", "CHF": "0.9868", "ISK": "150.10",
    "NOK": "11.6285", "TRY": "35.0065", "AUD": "1.6258", "BRL": "5.5500", "CAD": "1.4788", "CNY": "7.8506",
    "HKD": "8.4817", "IDR": "17345.59", "ILS": "4.0127", "INR": "90.5520", "KRW": "1470.84", "MXN": "18.0567",
    "MYR": "5.0938", "NZD": "1.7717", "PHP": "62.664", "SGD": "1.4622", "THB": "39.313", "ZAR": "19.7668",
}


def ecb_xml(day: date | str = "2024-05-17", rates: dict[str, str] | None = None) -> str:
    rates = ECB_RATES if rates is None else rates
    cubes = "\n".join(f"\t\t\t<Cube currency='{code}' rate='{rate}'/>" for code, rate in rates.items())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
\t<gesmes:subject>Reference rates</gesmes:subject>
\t<gesmes:Sender>
\t\t<gesmes:name>European Central Bank</gesmes:name>
\t</gesmes:Sender>
\t<Cube>
\t\t<Cube time='{day}'>
{cubes}
\t\t</Cube>
\t</Cube>
</gesmes:Envelope>
"""


# Open Exchange Rates latest.json (per 1 USD), numbers as JSON numbers.
OXR_RATES = {
    "AED": "3.6731", "EUR": "0.920245", "GBP": "0.787254", "JPY": "155.6325", "KWD": "0.30712",
    "CHF": "0.9081", "CAD": "1.3615", "INR": "83.2975", "BTC": "0.000015", "CNH": "7.2331",
}
OXR_TIMESTAMP = 1716004800  # 2024-05-18 04:00:00 UTC


def oxr_json(rates: dict[str, str] | None = None, *, timestamp: int = OXR_TIMESTAMP, base: str = "USD") -> str:
    rates = OXR_RATES if rates is None else rates
    body = ",\n    ".join(f'"{code}": {rate}' for code, rate in rates.items())
    return (
        '{\n  "disclaimer": "Usage subject to terms: https://openexchangerates.org/terms",\n'
        '  "license": "https://openexchangerates.org/license",\n'
        f'  "timestamp": {timestamp},\n  "base": "{base}",\n  "rates": {{\n    {body}\n  }}\n}}'
    )


def oxr_error(status: int, message: str, description: str) -> str:
    return json.dumps({"error": True, "status": status, "message": message, "description": description})


FIXER_RATES = {"USD": "1.086843", "GBP": "0.855647", "JPY": "169.197415", "CHF": "0.987544", "KWD": "0.333779"}
FIXER_TIMESTAMP = 1716030543  # 2024-05-18 11:09:03 UTC


def fixer_json(rates: dict[str, str] | None = None, *, timestamp: int = FIXER_TIMESTAMP, base: str = "EUR") -> str:
    rates = FIXER_RATES if rates is None else rates
    day = datetime.fromtimestamp(timestamp, tz=UTC).date().isoformat()
    body = ", ".join(f'"{code}": {rate}' for code, rate in rates.items())
    return (f'{{"success": true, "timestamp": {timestamp}, "base": "{base}", "date": "{day}", '
            f'"rates": {{{body}}}}}')


def fixer_error(code: int, kind: str, info: str) -> str:
    return json.dumps({"success": False, "error": {"code": code, "type": kind, "info": info}})


FIXER_101 = fixer_error(
    101, "missing_access_key", "You have not supplied an API Access Key. [Required format: access_key=YOUR_ACCESS_KEY]"
)
OXR_401 = oxr_error(401, "invalid_app_id", "Invalid App ID provided. Please sign up at https://openexchangerates.org/signup, or contact support@openexchangerates.org.")  # noqa: E501

HTML_502 = """<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
<Cube><Cube time="2024-05-17"><Cube currency="USD" rate="1.0866"/><Cube currency="&lol3;" rate="1"/></Cube></Cube>
</gesmes:Envelope>
"""


def truncated(body: str, keep: float = 0.6) -> str:
    return body[: int(len(body) * keep)]


def dec(text: str) -> Decimal:
    return Decimal(text)
