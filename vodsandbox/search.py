"""SearchMedia: VOD's media search over the sandbox's media, through an index that lags.

`Match` takes a subset of VOD's "protocol for media asset search" (help doc 86991):
conditions joined by `and`, each `Field = 'value'` (Title: substring), `Field in ('a','b')`
or `CreationTime = ('from','to')`. Anything outside that subset is InvalidParameter naming
Match, so a client never relies on syntax the sandbox would silently misread. A media is
found only `search_lag` seconds (sandbox clock) after its creation, as VOD's index trails
creation; deletions and status changes show at once because they are read live.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from . import validation as v
from .errors import VodError, invalid
from .lookups import attached_view, image_view, video_view
from .operations import Context
from .state import ISO_SECONDS

SEARCH_TYPES = frozenset({"video", "audio", "image", "attached"})
# SortBy value -> descending? VOD also sorts by other fields; the sandbox serves these two.
SORT_ORDERS = {"CreationTime:Desc": True, "CreationTime:Asc": False}
PAGE_SIZE_DEFAULT = 10
PAGE_SIZE_MAX = 100
# VOD: paging by PageNo/PageSize reaches the first 5,000 results only; audio and video may
# go further with ScrollToken ("full traversal").
PAGING_WINDOW = 5000

# Where each SearchType's media live in the store (audio is a video with an audio file).
_STORE_KIND = {"video": "video", "audio": "video", "image": "image", "attached": "attached"}
_COMMON_FIELDS = frozenset({"Title", "Tags", "CateId", "Status", "StorageLocation", "AppId",
                            "CreationTime", "MediaId"})
SEARCH_FIELDS = {
    "video": _COMMON_FIELDS | {"VideoId"},
    "audio": _COMMON_FIELDS | {"VideoId"},
    "image": _COMMON_FIELDS | {"ImageId", "ImageType"},
    "attached": _COMMON_FIELDS | {"BusinessType"},
}
_ID_FIELDS = frozenset({"VideoId", "ImageId", "MediaId"})

# What each MediaList item holds: the fields the SDK's SearchMediaResponseBodyMediaList*
# models read (and the sandbox knows), under the key the SDK reads them from.
_AV_FIELDS = frozenset({"Title", "Tags", "Status", "Size", "Duration", "CreationTime",
                        "ModificationTime", "StorageLocation", "AppId", "CateId", "Description",
                        "CoverURL", "ReferenceId", "StorageClass", "DownloadSwitch"})
_VIEW_FIELDS = {
    "video": _AV_FIELDS | {"VideoId"},
    "audio": _AV_FIELDS | {"AudioId"},
    "image": frozenset({"ImageId", "Title", "Tags", "Status", "CreationTime",
                        "ModificationTime", "StorageLocation", "AppId", "CateId",
                        "Description", "URL"}),
    "attached": frozenset({"MediaId", "Title", "Tags", "Status", "BusinessType",
                           "CreationTime", "ModificationTime", "StorageLocation", "AppId",
                           "Description", "URL", "Categories"}),
}
_VIEW_KEY = {"video": "Video", "audio": "Audio", "image": "Image", "attached": "AttachedMedia"}


# --- Match: parsing --------------------------------------------------------------------

# One token: a single-quoted value (may hold spaces and commas, not a quote), a word (field
# name, `and`, `in`) or one punctuation mark.
_TOKEN = re.compile(r"\s*(?:'(?P<value>[^']*)'|(?P<word>[A-Za-z_]\w*)|(?P<punct>[=(),]))")
_END = ("end", "")


@dataclass(frozen=True)
class Condition:
    """One parsed condition: `equals` (one value), `in` (values) or `range` (from, to; ''
    for an open bound)."""

    field: str
    kind: str
    values: tuple[str, ...]


def _bad_match(why: str) -> VodError:
    return invalid("Match", why)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None:
            rest = text[pos:].lstrip()
            raise _bad_match(f"Unreadable from character {len(text) - len(rest) + 1}: "
                             f"{rest[:20]!r} (values are single-quoted and hold no quote).")
        tokens.append((found.lastgroup, found.group(found.lastgroup)))
        pos = found.end()
    return tokens


def _describe(token: tuple[str, str]) -> str:
    kind, text = token
    return {"end": "the end", "value": f"the value '{text}'"}.get(kind, f"'{text}'")


class _Parser:
    """Recursive descent over the tokens of one Match expression."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else _END

    def take(self, kind: str, text: str | None = None) -> str:
        token = self.peek()
        if token[0] != kind or (text is not None and token[1].lower() != text):
            wanted = f"'{text}'" if text else {"value": "a single-quoted value",
                                                "word": "a field name"}[kind]
            raise _bad_match(f"Expected {wanted} but found {_describe(token)}.")
        self.pos += 1
        return token[1]

    def at(self, kind: str, text: str) -> bool:
        token = self.peek()
        return token[0] == kind and token[1].lower() == text

    def conditions(self) -> list[Condition]:
        found = [self.condition()]
        while self.peek() != _END:
            self.take("word", "and")
            found.append(self.condition())
        return found

    def condition(self) -> Condition:
        field = self.take("word")
        if field.lower() in ("and", "in"):
            raise _bad_match(f"Expected a field name but found '{field}'.")
        if self.at("word", "in"):
            self.pos += 1
            self.take("punct", "(")
            values = [self.take("value")]
            while self.at("punct", ","):
                self.pos += 1
                values.append(self.take("value"))
            self.take("punct", ")")
            return Condition(field, "in", tuple(values))
        self.take("punct", "=")
        if not self.at("punct", "("):
            return Condition(field, "equals", (self.take("value"),))
        self.pos += 1
        low = self.take("value") if self.peek()[0] == "value" else ""
        self.take("punct", ",")
        high = self.take("value") if self.peek()[0] == "value" else ""
        self.take("punct", ")")
        return Condition(field, "range", (low, high))


def parse_match(text: str) -> list[Condition]:
    """The conditions of a Match expression (none for an empty one); InvalidParameter naming
    Match for anything outside the subset the sandbox serves."""
    if not text.strip():
        return []
    return _Parser(_tokens(text)).conditions()


# --- Match: evaluation -----------------------------------------------------------------

Predicate = Callable[[datetime, dict], bool]


def _instant(text: str) -> datetime | None:
    if text == "":
        return None
    try:
        return datetime.strptime(text, ISO_SECONDS).replace(tzinfo=UTC)
    except ValueError:
        raise _bad_match(f"CreationTime bounds are UTC yyyy-MM-ddTHH:mm:ssZ, not '{text}'.") \
            from None


def _field_values(field: str, snap: dict) -> list[str]:
    """A media's values for one searchable field (several for Tags and attached CateIds)."""
    if field in _ID_FIELDS:
        return [snap["MediaId"]]
    if field == "Tags":
        return [tag for tag in (snap.get("Tags") or "").split(",") if tag]
    if field == "CateId" and snap["Kind"] == "attached":
        return [c.strip() for c in (snap.get("CateIds") or "").split(",") if c.strip()]
    value = snap.get(field)
    return [] if value in (None, "") else [str(value)]


def _predicate(condition: Condition, search_type: str) -> Predicate:
    field, kind, values = condition.field, condition.kind, condition.values
    if field not in SEARCH_FIELDS[search_type]:
        known = ", ".join(sorted(SEARCH_FIELDS[search_type]))
        raise _bad_match(f'The field "{field}" cannot be searched with SearchType '
                         f"{search_type}; fields: {known}.")
    if field == "CreationTime" and kind != "range":
        raise _bad_match("CreationTime takes a range: CreationTime = ('from','to').")
    if kind == "range" and field != "CreationTime":
        raise _bad_match(f"Only CreationTime takes a range, not {field}.")
    if kind == "range":
        low, high = (_instant(bound) for bound in values)

        def in_range(created: datetime, snap: dict) -> bool:
            # Inclusive, to the second: the precision CreationTime is shown with.
            moment = created.replace(microsecond=0)
            return (low is None or moment >= low) and (high is None or moment <= high)

        return in_range
    if field == "Title":
        # VOD matches Title fuzzily, also within `in` (a fuzzy-only field stays fuzzy).
        wanted = [value.casefold() for value in values]
        return lambda created, snap: any(w in (snap.get("Title") or "").casefold()
                                         for w in wanted)
    return lambda created, snap: any(value in _field_values(field, snap) for value in values)


def compile_match(text: str, search_type: str) -> list[Predicate]:
    """Predicates (all must hold) for a Match expression under a SearchType."""
    return [_predicate(condition, search_type) for condition in parse_match(text)]


# --- the action ------------------------------------------------------------------------


def media_type(snap: dict) -> str:
    """video, audio, image or attached: a video whose file is an audio format is audio."""
    if snap["Kind"] == "video":
        return "audio" if snap.get("FileExt") in v.AUDIO_EXTENSIONS else "video"
    return snap["Kind"]


def search_view(ctx: Context, snap: dict, kind: str) -> dict:
    """A media as a SearchMedia MediaList item's Video, Audio, Image or AttachedMedia."""
    if kind in ("video", "audio"):
        view = video_view(ctx, snap)
        if kind == "audio":
            view["AudioId"] = view.pop("VideoId")
    elif kind == "image":
        view = image_view(snap)
        view["ModificationTime"] = snap["ModificationTime"]
    else:
        view = attached_view(snap)
        view["BusinessType"] = view.pop("Type")
    return {key: value for key, value in view.items() if key in _VIEW_FIELDS[kind]}


def _whole_number(params: dict, name: str, default: int, maximum: int | None = None) -> int:
    value = params.get(name, "")
    if value == "":
        return default
    number = int(value) if value.isascii() and value.isdigit() else 0
    if number < 1 or (maximum is not None and number > maximum):
        upper = f" to {maximum}" if maximum is not None else " up"
        raise invalid(name, f"It must be a whole number from 1{upper}.")
    return number


def search_media(ctx: Context, params: dict) -> dict:
    """SearchMedia: media of one SearchType that Match selects and the index has caught up
    with, sorted by CreationTime and paged."""
    search_type = v.check_choice(params, "SearchType", SEARCH_TYPES, default="video")
    page_no = _whole_number(params, "PageNo", 1)
    page_size = _whole_number(params, "PageSize", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
    sort_by = params.get("SortBy", "") or "CreationTime:Desc"
    if sort_by not in SORT_ORDERS:
        raise invalid("SortBy", f"Valid values: {', '.join(SORT_ORDERS)}.")
    scrolling = bool(params.get("ScrollToken")) and search_type in ("video", "audio")
    if page_no * page_size > PAGING_WINDOW and not scrolling:
        raise invalid("PageNo", f"Paging reaches the first {PAGING_WINDOW} results only "
                                "(PageNo x PageSize); narrow Match.")
    # Fields is accepted and not honoured: every field the sandbox knows is returned.
    predicates = compile_match(params.get("Match", ""), search_type)
    indexed_until = ctx.clock.time() - ctx.config.search_lag
    rows = [(created, snap)
            for created, snap in ctx.store.created_snapshots(_STORE_KIND[search_type])
            if created.timestamp() <= indexed_until and media_type(snap) == search_type
            and all(predicate(created, snap) for predicate in predicates)]
    rows.sort(key=lambda row: row[0], reverse=SORT_ORDERS[sort_by])
    page = rows[(page_no - 1) * page_size:page_no * page_size]
    return {
        "Total": len(rows),
        "ScrollToken": uuid.uuid4().hex,
        "MediaList": [{"MediaId": snap["MediaId"], "MediaType": search_type,
                       "CreationTime": snap["CreationTime"],
                       _VIEW_KEY[search_type]: search_view(ctx, snap, search_type)}
                      for _, snap in page],
    }


SEARCH_ACTIONS: dict[str, Callable[[Context, dict], dict]] = {
    "SearchMedia": search_media,
}
