"""Plain text and HTML parts, in whatever charset they declare or turn out to be in.

Covers TXT, CSV, XML, JSON, ICS and VCF (scanned as a person would read the file,
markup included: attribute values leak data too) and HTML (scanned as rendered).
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from gateway.extract.context import Context, Part, encrypted

PGP_ARMOUR = "-----BEGIN PGP MESSAGE-----"


def decode_text(data: bytes, declared_charset: str | None) -> str:
    """Decode bytes with the declared charset when it is known and works, else detect it.

    Never raises: undecodable bytes become U+FFFD so the rest is still scanned.
    """
    if declared_charset:
        try:
            codecs.lookup(declared_charset)
            return data.decode(declared_charset)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:1_000_000]).best()
    encoding = best.encoding if best is not None else "latin-1"
    return data.decode(encoding, errors="replace")


def html_to_text(html: str) -> str:
    """What a reader of the HTML would see: text without tags, scripts or styles.

    Link targets and image alt text are kept too, since data leaks through them.
    """
    tree = HTMLParser(html)
    for node in tree.css("script, style, head"):
        node.decompose()
    extras = [n.attributes.get("href") or "" for n in tree.css("a[href]")]
    extras += [n.attributes.get("alt") or "" for n in tree.css("img[alt]")]
    body = tree.body if tree.body is not None else tree.root
    text = body.text(separator=" ") if body is not None else ""
    extra_text = "\n".join(e for e in extras if e and not e.startswith("#"))
    return f"{text}\n{extra_text}" if extra_text else text


def extract_text(part: Part, ctx: Context) -> None:
    """Plain-text formats: decode and scan as is."""
    text = decode_text(part.data, part.charset)
    _flag_pgp(text, part, ctx)
    ctx.emit(part.location, text)


def extract_html(part: Part, ctx: Context) -> None:
    """HTML: scan the rendered text (plus link targets and alt text)."""
    text = decode_text(part.data, part.charset)
    _flag_pgp(text, part, ctx)
    ctx.emit(part.location, html_to_text(text))


def _flag_pgp(text: str, part: Part, ctx: Context) -> None:
    # Inline PGP: the armoured block is unreadable, the text around it still gets scanned.
    if PGP_ARMOUR in text:
        ctx.finding(encrypted(part.location, "pgp:message"))
