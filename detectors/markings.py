"""Australian protective markings: parse them, find them, compare them.

Three carriers (reference Part B): the ``X-Protective-Marking`` header
(``VER=2018.4, NS=gov.au, SEC=PROTECTED, CAVEAT=SH:CABINET, ACCESS=…``), the
subject marking (``[SEC=OFFICIAL:Sensitive]``), and banners in document or
body text (``PROTECTED//CABINET`` on its own line).  Legacy markings
(dissemination limiting markers, ``X-IN-CONFIDENCE``, ``UNCLASSIFIED`` …) are
mapped to the current PSPF scheme and keep their original text in ``legacy``.

Free text is full of the words "secret" and "protected", so a bare word only
counts when it looks like a marking: upper case *and* on its own line, joined
to caveats with ``//``, or one of the few multi-word forms that never occur in
prose ("OFFICIAL: Sensitive", "TOP SECRET" in a mixed-case line).

Recognisers cannot see a segment's location, so ``source`` is added by
:func:`postprocess` from the finding's location.  Attributes travel to the
engine in ``RecognizerResult.recognition_metadata["attributes"]``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from detectors.prefilter import Trigger, Windowed, literals
from gateway.model import Finding

ENTITY = "PROTECTIVE_MARKING"
MISMATCH_ENTITY = "MARKING_MISMATCH"
ATTRIBUTES_KEY = "attributes"
RECOGNIZER_NAME = "ProtectiveMarkingRecognizer"

# Scores by form: the structured EPMS forms are unambiguous, banners nearly so.
SCORE_EPMS = 1.0
SCORE_BANNER = 0.9
SCORE_INLINE = 0.8
SCORE_LEGACY_INLINE = 0.75

# A banner is short; longer lines are prose and are never parsed as banners.
MAX_BANNER_LINE = 120
# Characters either side of an inline marking whose case decides whether the line is shouting.
SHOUT_CONTEXT = 120


class Level(enum.IntEnum):
    """PSPF levels, lowest to highest, so levels compare with ``<``/``>``."""

    UNOFFICIAL = 0
    OFFICIAL = 1
    OFFICIAL_SENSITIVE = 2
    PROTECTED = 3
    SECRET = 4
    TOP_SECRET = 5

    @property
    def label(self) -> str:
        """The marking as written in documents and in the ``level`` attribute."""
        return _LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> Level | None:
        """The level for a label produced by :attr:`label` (or an e-mail token)."""
        mapped = _map_token(label)
        return mapped.level if mapped else None


_LABELS = {
    Level.UNOFFICIAL: "UNOFFICIAL",
    Level.OFFICIAL: "OFFICIAL",
    Level.OFFICIAL_SENSITIVE: "OFFICIAL:Sensitive",
    Level.PROTECTED: "PROTECTED",
    Level.SECRET: "SECRET",
    Level.TOP_SECRET: "TOP SECRET",
}


@dataclass(frozen=True)
class Marking:
    """One protective marking, current scheme, whatever form it was found in."""

    level: Level
    caveats: tuple[str, ...] = ()
    imms: tuple[str, ...] = ()  # information management markers (ACCESS=)
    source: str = ""  # header, subject, body, attachment
    legacy: str = ""  # the legacy marking this was mapped from, if any
    version: str = ""  # EPMS VER=
    origin: str = ""  # EPMS ORIGIN= (who classified it)
    expires: str = ""
    downto: Level | None = None

    def attributes(self) -> dict[str, str]:
        """The marking as ``Finding.attributes`` (only non-empty values)."""
        attrs = {
            "level": self.level.label,
            "caveats": ",".join(self.caveats),
            "imm": ",".join(self.imms),
            "source": self.source,
            "legacy": self.legacy,
            "version": self.version,
            "expires": self.expires,
            "downto": self.downto.label if self.downto is not None else "",
        }
        return {k: v for k, v in attrs.items() if v}

    @classmethod
    def from_attributes(cls, attributes: dict[str, str]) -> Marking | None:
        """Rebuild a marking from a finding's attributes; None without a valid level."""
        level = Level.from_label(attributes.get("level", ""))
        if level is None:
            return None
        downto = attributes.get("downto", "")
        return cls(
            level=level,
            caveats=_split(attributes.get("caveats", "")),
            imms=_split(attributes.get("imm", "")),
            source=attributes.get("source", ""),
            legacy=attributes.get("legacy", ""),
            version=attributes.get("version", ""),
            expires=attributes.get("expires", ""),
            downto=Level.from_label(downto) if downto else None,
        )


@dataclass(frozen=True)
class _Mapped:
    """A marking token mapped onto the current scheme."""

    level: Level
    caveats: tuple[str, ...] = ()
    imms: tuple[str, ...] = ()
    legacy: str = ""


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.split(",") if v)


# --- tokens -------------------------------------------------------------------------------

_CURRENT = {
    "UNOFFICIAL": Level.UNOFFICIAL,
    "OFFICIAL": Level.OFFICIAL,
    "OFFICIAL:SENSITIVE": Level.OFFICIAL_SENSITIVE,
    "PROTECTED": Level.PROTECTED,
    "SECRET": Level.SECRET,
    "TOP SECRET": Level.TOP_SECRET,
}

# Legacy markings (reference B4).  The 2018 reform folded the DLMs into OFFICIAL: Sensitive
# (Sensitive: Personal/Legal became the Personal-Privacy/Legal-Privilege IMMs) and replaced
# Sensitive: Cabinet by the CABINET caveat, which needs at least PROTECTED.  CONFIDENTIAL and
# HIGHLY PROTECTED have no published mapping [Unconfirmed]: they sat between PROTECTED and
# SECRET, so we round up, which makes a gateway hold rather than leak.
_LEGACY = {
    "UNCLASSIFIED": _Mapped(Level.OFFICIAL),
    "CONFIDENTIAL": _Mapped(Level.SECRET),
    "HIGHLY PROTECTED": _Mapped(Level.SECRET),
    "FOR OFFICIAL USE ONLY": _Mapped(Level.OFFICIAL_SENSITIVE),
    "FOUO": _Mapped(Level.OFFICIAL_SENSITIVE),
    "SENSITIVE": _Mapped(Level.OFFICIAL_SENSITIVE),
    "SENSITIVE:PERSONAL": _Mapped(Level.OFFICIAL_SENSITIVE, imms=("Personal-Privacy",)),
    "SENSITIVE:LEGAL": _Mapped(Level.OFFICIAL_SENSITIVE, imms=("Legal-Privilege",)),
    "SENSITIVE:CABINET": _Mapped(Level.PROTECTED, caveats=("CABINET",)),
    "IN CONFIDENCE": _Mapped(Level.OFFICIAL_SENSITIVE),
    "STAFF IN CONFIDENCE": _Mapped(Level.OFFICIAL_SENSITIVE, imms=("Personal-Privacy",)),
    "COMMERCIAL IN CONFIDENCE": _Mapped(Level.OFFICIAL_SENSITIVE),
    "AUDIT IN CONFIDENCE": _Mapped(Level.OFFICIAL_SENSITIVE),
    "SECURITY IN CONFIDENCE": _Mapped(Level.OFFICIAL_SENSITIVE),
    "CABINET IN CONFIDENCE": _Mapped(Level.PROTECTED, caveats=("CABINET",)),
}

_IMMS = {
    "LEGAL PRIVILEGE": "Legal-Privilege",
    "LEGISLATIVE SECRECY": "Legislative-Secrecy",
    "PERSONAL PRIVACY": "Personal-Privacy",
}

# Caveats that may stand alone on a banner line or after ``//`` (reference B3).
_CAVEAT_WORDS = frozenset(
    {"CABINET", "NATIONAL-CABINET", "AUSTEO", "AGAO", "ORCON", "ACCOUNTABLE-MATERIAL", "DELICATE-SOURCE"}
)


def _normalise(token: str) -> str:
    """Upper case, ``-``/``_`` and runs of spaces as one space, no space around ``:``."""
    text = re.sub(r"[\s_-]+", " ", token.strip().upper())
    return re.sub(r"\s*:\s*", ":", text)


def _map_token(token: str) -> _Mapped | None:
    """Map a level token (``TOP-SECRET``, ``OFFICIAL: Sensitive``, ``Sensitive:Legal``)."""
    key = _normalise(token)
    if key in _CURRENT:
        return _Mapped(_CURRENT[key])
    legacy = _LEGACY.get(key)
    if legacy is not None:
        return dataclasses.replace(legacy, legacy=token.strip())
    return None


def _normalise_caveat(value: str) -> str:
    """``SH:CABINET`` → ``CABINET``; ``RI:REL AUS/NZL`` → ``REL AUS/NZL``; codewords keep ``C:``."""
    value = value.strip()
    prefix, sep, rest = value.partition(":")
    if sep and prefix.strip().upper() in ("SH", "RI"):
        value = rest.strip()
        # The reference library renders "RI:SH:DELICATE SOURCE"; drop the second prefix too.
        if value.upper().startswith("SH:"):
            value = value[3:].strip()
    upper = value.upper()
    if upper.startswith(("REL ", "C:", "FG:")):
        return value.replace(",", " ")
    if upper.startswith("EXCLUSIVE-FOR"):  # keep the named person as written
        return "EXCLUSIVE-FOR " + value[len("EXCLUSIVE-FOR") :].strip().replace(",", " ")
    return re.sub(r"\s+", "-", upper)


def _normalise_imm(value: str) -> str:
    key = re.sub(r"[\s_-]+", " ", value.strip().upper())
    return _IMMS.get(key, value.strip())


def _merge(values: Iterable[str]) -> tuple[str, ...]:
    """Distinct values in first-seen order."""
    return tuple(dict.fromkeys(v for v in values if v))


# --- EPMS key=value form (header and subject) -----------------------------------------------

# Keys and values per EPMS B5.2; values stop at an unescaped comma or a closing bracket.
# Every quantifier is bounded, so a hostile header cannot make this backtrack for long.
_EPMS_RUN = re.compile(
    r"(?:\b(?:VER|NS)[ \t]{0,3}=[^,\]\r\n]{0,128},\s{0,20}){0,2}"
    r"\b(?:SEC|DLM)[ \t]{0,3}=[ \t]{0,3}[A-Za-z][A-Za-z :-]{0,40}"
    r"(?:,\s{0,20}[A-Za-z]{2,8}[ \t]{0,3}=(?:\\.|[^,\]\\\r\n]){0,128}){0,30}",
    re.IGNORECASE,
)
_EPMS_PAIR = re.compile(r"([A-Za-z]{2,8})[ \t]*=((?:\\.|[^,\\])*)")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value).strip()


def parse_epms(text: str) -> Marking | None:
    """Parse EPMS ``KEY=value`` pairs (header value, or a subject's bracket content).

    Accepts every version the reference lists (``VER=2012.3`` with ``DLM=``, ``2018.x``,
    ``2024.1``, ``2025.1``), folded lines, ``TOP SECRET``/``TOP-SECRET`` and
    ``OFFICIAL: Sensitive``/``OFFICIAL:Sensitive``.  With both ``SEC=`` and ``DLM=``
    the higher mapped level wins.  Returns None when no ``SEC=``/``DLM=`` value is valid.
    """
    unfolded = re.sub(r"\r?\n[ \t]+", " ", text)
    mapped: list[_Mapped] = []
    caveats: list[str] = []
    imms: list[str] = []
    fields: dict[str, str] = {}
    for key, raw in _EPMS_PAIR.findall(unfolded):
        name = key.upper()
        value = _unescape(raw)
        if name in ("SEC", "DLM"):
            token = _map_token(value)
            if token is not None:
                mapped.append(token)
        elif name == "CAVEAT":
            caveats.append(_normalise_caveat(value))
        elif name == "ACCESS":
            imms.append(_normalise_imm(value))
        else:
            fields.setdefault(name, value)
    if not mapped:
        return None
    top = max(mapped, key=lambda m: m.level)
    downto = _map_token(fields.get("DOWNTO", ""))
    return Marking(
        level=top.level,
        caveats=_merge([c for m in mapped for c in m.caveats] + caveats),
        imms=_merge([i for m in mapped for i in m.imms] + imms),
        legacy=", ".join(m.legacy for m in mapped if m.legacy),
        version=fields.get("VER", ""),
        origin=fields.get("ORIGIN", ""),
        expires=fields.get("EXPIRES", ""),
        downto=downto.level if downto else None,
    )


def parse_header(value: str) -> Marking | None:
    """Parse an ``X-Protective-Marking`` header value (the field name may be included)."""
    body = re.sub(r"^\s*X-Protective-Marking\s*:", "", value, flags=re.IGNORECASE)
    marking = parse_epms(body)
    return dataclasses.replace(marking, source="header") if marking else None


_SUBJECT = re.compile(r"\[[ \t]{0,5}((?:SEC|DLM)[ \t]{0,3}=[^\[\]]{1,1000})\]", re.IGNORECASE)


def parse_subject(subject: str) -> Marking | None:
    """The marking in a subject line (``… [SEC=PROTECTED, CAVEAT=SH:CABINET]``), if any.

    The standard allows one marking per subject; if a reply chain left several
    (``RE: x [SEC=OFFICIAL] [SEC=PROTECTED]``) the highest is returned.
    """
    found = [m for m in (parse_epms(g) for g in _SUBJECT.findall(subject)) if m is not None]
    if not found:
        return None
    return dataclasses.replace(max(found, key=lambda m: m.level), source="subject")


# --- banners in free text -------------------------------------------------------------------

# Case-sensitive on purpose: "Top secret recipe" is prose, "TOP SECRET" is a marking.
_LEVEL_FORMS = (
    r"UNOFFICIAL|OFFICIAL(?:[ \t]?:[ \t]?(?:Sensitive|SENSITIVE))?|PROTECTED|SECRET|TOP[ -]SECRET"
    r"|UNCLASSIFIED|HIGHLY[ -]PROTECTED|FOR OFFICIAL USE ONLY|For Official Use Only|FOUO"
    r"|Sensitive[ \t]?:[ \t]?(?:Personal|Legal|Cabinet)|SENSITIVE[ \t]?:[ \t]?(?:PERSONAL|LEGAL|CABINET)"
    r"|(?:(?:STAFF|COMMERCIAL|CABINET|AUDIT|SECURITY)[ -])?IN[ -]CONFIDENCE"
)
_LABEL_PREFIX = (
    r"(?:(?:[Ss]ecurity[ \t])?[Cc]lassification|[Pp]rotective[ \t][Mm]arking|[Mm]arking)[ \t]?:[ \t]?"
)
# A caveat or IMM after "//": upper-case words, or an IMM in any case, or REL AUS/NZL.
_BANNER_PART = r"[A-Za-z][A-Za-z0-9 :-]{0,39}(?:/[A-Z]{3}){0,12}"
_BANNER_LINE = re.compile(
    rf"(?:{_LABEL_PREFIX})?(?P<level>{_LEVEL_FORMS})"
    rf"(?:[ \t]?[–—-][ \t]?(?P<suffix>[A-Z][A-Za-z ]{{1,40}}))?"
    rf"(?P<rest>(?:[ \t]?//[ \t]?{_BANNER_PART}){{0,8}})"
)
_CAVEAT_LINE = re.compile(rf"{_BANNER_PART}(?:[ \t]?//[ \t]?{_BANNER_PART}){{0,8}}")

# Inline forms: a level joined to caveats by "//", or a multi-word marking that prose never
# produces in this exact case.  Single words (PROTECTED, SECRET) only count on their own line.
_INLINE = re.compile(
    r"(?<![A-Za-z])(?:"
    r"(?:UNOFFICIAL|OFFICIAL(?:[ ]?:[ ]?Sensitive)?|PROTECTED|SECRET|TOP[ -]SECRET)"
    r"(?:[ ]?//[ ]?[A-Z][A-Z0-9 -]{0,38}[A-Z0-9](?:/[A-Z]{3}){0,12}){1,8}"
    r"|OFFICIAL[ ]?:[ ]?(?:Sensitive|SENSITIVE)|TOP[ -]SECRET|HIGHLY[ -]PROTECTED"
    r"|FOR OFFICIAL USE ONLY|For Official Use Only"
    r"|Sensitive[ ]?:[ ]?(?:Personal|Legal|Cabinet)|SENSITIVE[ ]?:[ ]?(?:PERSONAL|LEGAL|CABINET)"
    r"|(?:STAFF|COMMERCIAL|CABINET|AUDIT|SECURITY)-IN-CONFIDENCE"
    r")(?![A-Za-z])"
)
_QUOTE_PREFIX = re.compile(r"[ \t]*(?:>[ \t]?){0,20}[ \t]*")


@dataclass(frozen=True)
class _Hit:
    """A marking found in text, with its span."""

    start: int
    end: int
    marking: Marking
    score: float
    quoted: bool = False


def _parse_banner(match: re.Match[str]) -> Marking | None:
    mapped = _map_token(match.group("level"))
    if mapped is None:
        return None
    caveats = list(mapped.caveats)
    imms = list(mapped.imms)
    suffix = match.group("suffix") if "suffix" in match.groupdict() else None
    if suffix:  # NSW form: "OFFICIAL: Sensitive – NSW Cabinet"
        if "CABINET" in suffix.upper():
            caveats.append(_normalise_caveat(suffix))
        else:
            imms.append(suffix.strip())
    _add_parts(match.group("rest") or "", caveats, imms)
    return Marking(level=mapped.level, caveats=_merge(caveats), imms=_merge(imms), legacy=mapped.legacy)


def _add_parts(rest: str, caveats: list[str], imms: list[str]) -> bool:
    """Sort ``//``-separated parts into caveats and IMMs; False if a part is neither."""
    ok = True
    for part in (p.strip() for p in rest.split("//")):
        if not part:
            continue
        imm = _normalise_imm(part)
        if imm in _IMMS.values():
            imms.append(imm)
        elif part.isupper():
            caveats.append(_normalise_caveat(part))
        else:
            ok = False
    return ok


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Each line with its start offset (no line terminators)."""
    offset = 0
    for line in text.splitlines(keepends=True):
        yield offset, line.rstrip("\r\n")
        offset += len(line)


def _banner_hits(text: str) -> list[_Hit]:
    """Markings that fill a line of their own (quote markers and a label allowed)."""
    hits: list[_Hit] = []
    last: _Hit | None = None
    for offset, line in _lines(text):
        if not line.strip() or len(line) > MAX_BANNER_LINE:
            last = None
            continue
        prefix = _QUOTE_PREFIX.match(line)
        head = prefix.end() if prefix else 0
        body = line[head:].rstrip()
        start = offset + head
        match = _BANNER_LINE.fullmatch(body)
        marking = _parse_banner(match) if match else None
        if marking is not None:
            last = _Hit(start, start + len(body), marking, SCORE_BANNER, quoted=">" in line[:head])
            hits.append(last)
            continue
        # "PROTECTED" then "CABINET" or "Legislative-Secrecy" on the next line is one banner.
        if last is not None and _CAVEAT_LINE.fullmatch(body):
            caveats, imms = list(last.marking.caveats), list(last.marking.imms)
            if _add_parts(body, caveats, imms) and _only_known(caveats, imms):
                merged = dataclasses.replace(last.marking, caveats=_merge(caveats), imms=_merge(imms))
                hits[-1] = last = dataclasses.replace(last, marking=merged)
                continue
        last = None
    return hits


def _only_known(caveats: list[str], imms: list[str]) -> bool:
    known = all(c in _CAVEAT_WORDS or c.startswith("REL ") for c in caveats)
    return known and all(i in _IMMS.values() for i in imms)


def _shouting(line: str) -> bool:
    """Whether a line is mostly upper case (a spam subject, not a marked document)."""
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.6


def _inline_hits(text: str, taken: list[_Hit]) -> list[_Hit]:
    """Markings inside a line of other text, where the form itself is unambiguous."""
    hits: list[_Hit] = []
    for match in _INLINE.finditer(text):
        if any(h.start <= match.start() < h.end for h in taken):
            continue
        # Judge the case of the surrounding words only, not of a (possibly huge) whole line.
        line_start = text.rfind("\n", max(0, match.start() - SHOUT_CONTEXT), match.start()) + 1
        line_start = max(line_start, match.start() - SHOUT_CONTEXT)
        line_end = text.find("\n", match.end(), match.end() + SHOUT_CONTEXT)
        line_end = line_end if line_end >= 0 else match.end() + SHOUT_CONTEXT
        rest = text[line_start : match.start()] + text[match.end() : line_end]
        if _shouting(rest):
            continue
        banner = _BANNER_LINE.fullmatch(match.group(0))
        marking = _parse_banner(banner) if banner else None
        if marking is None:
            continue
        score = SCORE_LEGACY_INLINE if marking.legacy else SCORE_INLINE
        if "//" in match.group(0):
            score = SCORE_BANNER
        hits.append(_Hit(match.start(), match.end(), marking, score, _quoted(text, match.start())))
    return hits


def _quoted(text: str, start: int) -> bool:
    """Whether the line holding ``start`` is quoted reply history (``> …``)."""
    line_start = text.rfind("\n", 0, start) + 1
    return text[line_start:start].lstrip().startswith(">")


def _epms_hits(text: str) -> list[_Hit]:
    """``SEC=``/``DLM=`` runs: a header value, a subject marking, or one quoted in a body."""
    hits: list[_Hit] = []
    for match in _EPMS_RUN.finditer(text):
        marking = parse_epms(match.group(0))
        if marking is None:
            continue
        hits.append(_Hit(match.start(), match.end(), marking, SCORE_EPMS, _quoted(text, match.start())))
    return hits


def _find(text: str) -> list[_Hit]:
    hits = _epms_hits(text)
    hits += [h for h in _banner_hits(text) if not _overlaps(h, hits)]
    hits += _inline_hits(text, hits)
    hits.sort(key=lambda h: h.start)
    return hits


def find_markings(text: str) -> list[tuple[int, int, Marking, float]]:
    """Every protective marking in ``text``: ``(start, end, marking, score)``, in order."""
    return [(h.start, h.end, h.marking, h.score) for h in _find(text)]


def _overlaps(hit: _Hit, others: list[_Hit]) -> bool:
    return any(hit.start < o.end and o.start < hit.end for o in others)


# Prefilter: every level form above contains one of these words, in this case.
# A banner may continue on the following caveat lines and an inline marking is
# judged by SHOUT_CONTEXT characters either side, so windows reach well past the
# word (and are widened to whole lines); an EPMS run has up to two VER/NS pairs
# before SEC= and thirty pairs of up to ~150 characters after it.
_MARKING_WORDS = (
    "OFFICIAL",
    "Official",
    "PROTECTED",
    "SECRET",
    "UNCLASSIFIED",
    "FOUO",
    "Sensitive",
    "SENSITIVE",
)
PREFILTER_TRIGGERS: tuple[Trigger, ...] = (
    *literals(_MARKING_WORDS, 2 * MAX_BANNER_LINE, 8 * MAX_BANNER_LINE, caseless=False),
    *literals(("CONFIDENCE",), 2 * MAX_BANNER_LINE, 8 * MAX_BANNER_LINE, caseless=False),
    Trigger(r"(?:SEC|DLM)[ \t]{0,3}=", 7, 400, 31 * 160, caseless=True),
)


class ProtectiveMarkingRecognizer(LocalRecognizer):
    """Finds protective markings in any segment; attributes carry the parsed marking."""

    def __init__(self) -> None:
        super().__init__(supported_entities=[ENTITY], name=RECOGNIZER_NAME)

    def load(self) -> None:
        """Nothing to load: the patterns are compiled at import."""

    def prefilter_spec(self) -> Windowed:
        """Where the fast path runs this recogniser: whole lines around marking words."""
        return Windowed(PREFILTER_TRIGGERS, snap_lines=True)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Markings in ``text`` as results with ``recognition_metadata["attributes"]``."""
        if entities and ENTITY not in entities:
            return []
        return [_result(hit, self) for hit in _find(text)]


def _result(hit: _Hit, recognizer: LocalRecognizer) -> RecognizerResult:
    attributes = hit.marking.attributes()
    if hit.quoted:
        attributes["quoted"] = "true"
    return RecognizerResult(
        entity_type=ENTITY,
        start=hit.start,
        end=hit.end,
        score=hit.score,
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: RECOGNIZER_NAME,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
            ATTRIBUTES_KEY: attributes,
        },
    )


# --- whole-message view ---------------------------------------------------------------------


def source_of(location: str) -> str:
    """``header:X-Protective-Marking`` → header, ``attachment[1]:a.pdf`` → attachment."""
    for source in ("header", "subject", "attachment"):
        if location.startswith(source):
            return source
    return "body"


def _marking_of(finding: Finding) -> Marking | None:
    if finding.entity_type != ENTITY:
        return None
    marking = Marking.from_attributes(finding.attributes)
    if marking is not None and not marking.source:
        marking = dataclasses.replace(marking, source=source_of(finding.location))
    return marking


def effective_marking(findings: list[Finding]) -> Marking | None:
    """The highest marking anywhere in the message, or None if nothing is marked.

    Caveats and IMMs are collected from every marking at that level, since a
    message is handled by the union of its handling instructions.
    """
    markings = [m for m in (_marking_of(f) for f in findings) if m is not None]
    if not markings:
        return None
    top = max(markings, key=lambda m: m.level)
    same = [m for m in markings if m.level == top.level]
    return dataclasses.replace(
        top,
        caveats=_merge(c for m in same for c in m.caveats),
        imms=_merge(i for m in same for i in m.imms),
    )


def declared_marking(findings: list[Finding]) -> tuple[Marking, Finding] | None:
    """The marking the sender claims: the header's (EPMS says it takes precedence), else the subject's."""
    for source in ("header", "subject"):
        claims = [(m, f) for f in findings if (m := _marking_of(f)) and m.source == source]
        if claims:
            return max(claims, key=lambda mf: mf[0].level)
    return None


def postprocess(findings: list[Finding]) -> list[Finding]:
    """Fill in ``source`` on markings and add a ``MARKING_MISMATCH`` when one is under-declared.

    A mismatch is the header (or, without a header, the subject) marking being
    lower than a marking elsewhere: the subject, the body (quoted history
    included: downgrading a reply is the classic leak) or an attachment.
    """
    out = [_with_source(f) for f in findings]
    declared = declared_marking(out)
    if declared is None:
        return out
    claim, claim_finding = declared
    higher = [
        (m, f)
        for f in out
        if (m := _marking_of(f)) is not None and f is not claim_finding and m.level > claim.level
    ]
    if higher:
        found, where = max(higher, key=lambda mf: (mf[0].level, mf[1].score))
        out.append(_mismatch(claim, found, where))
    return out


def _with_source(finding: Finding) -> Finding:
    if finding.entity_type != ENTITY or finding.attributes.get("source"):
        return finding
    attributes = {**finding.attributes, "source": source_of(finding.location)}
    return dataclasses.replace(finding, attributes=attributes)


def _mismatch(declared: Marking, found: Marking, where: Finding) -> Finding:
    return Finding(
        entity_type=MISMATCH_ENTITY,
        score=1.0,
        location=where.location,
        # Level names are not sensitive values: the excerpt can say what was found.
        excerpt=f"declared {declared.level.label}, found {found.level.label}",
        start=where.start,
        end=where.end,
        attributes={
            "declared": declared.level.label,
            "declared_source": declared.source,
            "found": found.level.label,
            "found_source": found.source,
            "location": where.location,
        },
    )
