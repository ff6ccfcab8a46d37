"""Admin changelists at scale on PostgreSQL: response time at 10,000 rows and at full size.

Seeds a dedicated database with server-side SQL (INSERT ... SELECT ... generate_series),
first 10,000 videos and 10,000 audit events, measures the admin pages, then grows the
tables to full size (1,000,000 uploads, 5,000,000 audit events by default) and measures
again. Each page is requested through django.test.Client as a logged-in superuser: one
warm-up request, then N timed ones whose SQL is timed, counted and checked for COUNT(*).

Target: at full size every page's p50 is within 1.5x of its p50 at 10,000 rows and under
300 ms. The audit rows carry random 64-hex hashes: the chain does not verify, and need not
for timing the admin. See bench/README.md.

    .venv/bin/python bench/admin_scale.py [--database-url URL] [--uploads N] [--audit N]
                                          [--requests N] [--keep]
"""

import argparse
import hashlib
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from datetime import timezone as dt_timezone
from unittest import mock
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL = 10_000  # rows in the video and audit tables at the first measurement
TARGET_RATIO = 1.5
TARGET_MS = 300.0
# Share of each kind among uploads: the video changelist is the one measured.
KIND_SHARES = {"video": 0.8, "image": 0.1, "attached_media": 0.1}
STATUS_WEIGHTS = {"ready": 70, "processing": 5, "uploading": 4, "uploaded": 3, "requesting": 3,
                  "failed": 6, "blocked": 1, "cancelled": 3, "expired": 5}
# Rows older than a year have ended: vod_sync settles an upload whose credential ran out
# (`expired`), and VOD's events end the rest. In-flight rows are recent ones only.
ENDED_WEIGHTS = {"ready": 75, "failed": 7, "blocked": 1, "cancelled": 4, "expired": 10,
                 "deleted": 3}
OUTCOME_WEIGHTS = {"success": 90, "failure": 7, "rejected": 3}
USERS, STAFF = 2_000, 20  # user 1 is the superuser the requests log in as
# Pages that show the same number of rows at both sizes, so only the table size differs:
# a heavy owner (1 upload in 100, and the actor of 1 audit event in 100: a full first page
# at 10k already), a busy video (1 audit event in 500 among the first 10,000: 20 at both
# sizes) and a title word (in 100 of the first 10,000 videos).
HEAVY_OWNER, HEAVY_OWNER_EVERY = 42, 100
BUSY_VIDEO, BUSY_VIDEO_EVERY = 4242, 500
TITLE_WORD, TITLE_WORD_EVERY = "sunset", 100
# Measured at full size only, against the 300 ms ceiling: a video that the grown events
# target 1 in 500 times (10,000 events at 5M), and the dashboard over a busy month.
STRESS_VIDEO = 4343
YEAR = "interval '365 days'"
# When uploads were created. The first 10,000 videos (and their images and attached media)
# fall in the last year; the grown rows in the two years before it, so that the dashboard's
# windows (48 hours to 30 days) hold the same rows at both sizes, as the pages above show
# the same rows. A month as busy as 1,000,000 uploads a year is measured on its own
# (BUSY_MONTH, --busy-month).
@dataclass(frozen=True)
class Era:
    """When a batch of uploads was created (SQL), and the statuses it is drawn from."""

    created: str
    statuses: dict[str, int]


LAST_YEAR = Era(f"now() - random() * {YEAR}", STATUS_WEIGHTS)
HISTORY = Era(f"now() - {YEAR} - random() * 2 * {YEAR}", ENDED_WEIGHTS)
BUSY_MONTH = Era("now() - random() * interval '30 days'", STATUS_WEIGHTS)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/vodportal_bench",
                        help="bench database; dropped and recreated (it must not hold data)")
    parser.add_argument("--uploads", type=int, default=1_000_000)
    parser.add_argument("--audit", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=7, help="timed requests per page")
    parser.add_argument("--busy-month", type=int, default=82_000,
                        help="uploads added in the last 30 days after the full measurement, "
                             "for the dashboard's own figure (1,000,000 a year: 82,000)")
    parser.add_argument("--keep", action="store_true", help="leave the bench database behind")
    args = parser.parse_args()
    if args.uploads * KIND_SHARES["video"] < SMALL or args.audit < SMALL:
        parser.error(f"full size must hold at least {SMALL} videos and {SMALL} audit events")
    return args


def configure_environment(database_url: str) -> None:
    """The production settings module, pointed at the bench database, before Django loads."""
    os.environ.update({
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "DJANGO_SETTINGS_MODULE": "vodportal.settings",
        "DJANGO_DEBUG": "false",  # cached templates, no query log: as in production
        "DJANGO_SECRET_KEY": "bench-only-secret-key-4c1f8e2a9b7d6035",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "AUDIT_KEY": "bench-only-audit-key-7e3a0c5d1f9b2468",
        "VOD_SANDBOX": "true",  # changelists never call VOD; this rules out the real one
        "DATABASE_URL": database_url,
    })


def recreate_database(database_url: str, *, create: bool) -> None:
    """Drop the bench database (and create it afresh when `create`), from the server's
    `postgres` database."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = sql.Identifier(parts.path.lstrip("/"))
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def _pick(weights: dict[str, int]) -> str:
    """SQL for a random value drawn with these integer weights (an array, one slot per unit)."""
    slots = [value for value, weight in weights.items() for _ in range(weight)]
    literal = ",".join(f"'{value}'" for value in slots)
    return f"(ARRAY[{literal}])[1 + floor(random() * {len(slots)})::int]"


def _insert(cursor, model, expressions: dict[str, str], source: str) -> None:
    """INSERT ... SELECT every concrete column of `model`: the given expression, or the
    column's empty value ('' / NULL / 0), so a column added later cannot break the bench.
    `source` is SQL without parameters (its % are modulo operators)."""
    from django.db import models

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in expressions:
            value = expressions[field.column]
        elif isinstance(field, models.AutoField | models.BigAutoField):
            continue  # the identity column numbers the rows
        elif field.null:
            value = "NULL"
        elif isinstance(field, (models.CharField, models.TextField)):
            value = "''"
        elif isinstance(field, models.IntegerField):  # BigInteger, PositiveInteger too
            value = "0"
        else:
            raise ValueError(f"no bench value for {model.__name__}.{field.name}")
        columns.append(f'"{field.column}"')
        values.append(value)
    cursor.execute(f'INSERT INTO "{model._meta.db_table}" ({", ".join(columns)}) '
                   f'SELECT {", ".join(values)} FROM {source}')


def seed_users(cursor) -> None:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    _insert(cursor, User, {
        "id": "g", "password": "'!'",  # unusable: the bench logs in with force_login
        "is_superuser": "g = 1", "is_staff": f"g <= {STAFF + 1}", "is_active": "true",
        "username": "CASE WHEN g = 1 THEN 'bench-admin' ELSE 'user' || lpad(g::text, 5, '0') END",
        "email": "'user' || g || '@example.com'", "date_joined": f"now() - {YEAR}",
    }, f"generate_series(1, {USERS}) g")
    # Explicit ids: move the identity on so a row Django inserts later does not collide.
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{User._meta.db_table}', 'id'), "
                   f"{USERS})")


def seed_uploads(cursor, model, first: int, last: int, era: Era) -> None:
    """Uploads number `first`..`last` of one kind, of `era`; id and vod_id derive from the
    number."""
    kind = model.kind
    ext = {"video": "mp4", "image": "jpg", "attached_media": "png"}[kind]
    expressions = {
        "id": f"md5('{kind}:' || n)::uuid",
        "owner_id": "owner", "status": "status", "created_at": "created",
        "vod_id": f"CASE WHEN status = 'requesting' THEN NULL ELSE md5('vod:{kind}:' || n) END",
        "vod_status": "CASE status WHEN 'ready' THEN 'Normal' WHEN 'processing' "
                      "THEN 'Transcoding' ELSE '' END",
        "title": f"'{kind} ' || n || CASE WHEN n <= {SMALL} AND n % {TITLE_WORD_EVERY} = 42"
                 f" THEN ' {TITLE_WORD}' ELSE '' END",
        "file_name": f"'file-' || n || '.{ext}'",
        "file_size": "(random() * 2e9)::bigint",
        "upload_endpoint": "'https://oss-cn-shanghai.aliyuncs.com'", "upload_bucket": "'outin-b'",
        "upload_object_key": f"'sv/' || md5('key' || n) || '.{ext}'",
        "credential_expires_at": "created + interval '1 hour'", "credentials_issued": "1",
        "last_vod_request_id": "upper(md5('vreq' || n)::uuid::text)",
        "updated_at": "created + random() * interval '2 days'",
        "image_type": "'default'", "image_ext": "'jpg'",
        "business_type": "'watermark'", "media_ext": "'png'",
    }
    source = (f"(SELECT n, CASE WHEN n % {HEAVY_OWNER_EVERY} = 0 THEN {HEAVY_OWNER} "
              f"ELSE 1 + floor(random() * {USERS})::int END AS owner, "
              f"CASE WHEN n IN ({BUSY_VIDEO}, {STRESS_VIDEO}) THEN 'ready'"
              f" ELSE {_pick(era.statuses)} END"
              f" AS status, {era.created} AS created "
              f"FROM generate_series({first}, {last}) n) s")
    _insert(cursor, model, expressions, source)


def seed_audit(cursor, first: int, last: int, total: int, uploads: dict) -> None:
    """Events `first`..`last`, created_at rising with the sequence over one year, each
    aimed at a random existing upload (8 in 10 at a video; every BUSY_VIDEO_EVERY-th, a
    multiple of 10 so a video event, at the busy video among the first SMALL, else at the
    stress video), half of them by a user (1 in HEAVY_OWNER_EVERY by the heavy owner)."""
    from uploads.audit import ACTIONS
    from uploads.models import AuditEvent

    target = {kind: f"1 + floor(r * {count})::int" for kind, count in uploads.items()}
    # A random video other than the busy and the stress video (BUSY_VIDEO < STRESS_VIDEO):
    # one of count - 2, moved past them, so their events are exactly the chosen ones.
    pick = f"1 + floor(r * {uploads['video'] - 2})::int"
    target["video"] = (f"{pick} + ({pick} >= {BUSY_VIDEO})::int"
                       f" + ({pick} + 1 >= {STRESS_VIDEO})::int")
    actions = ",".join(f"'{action}'" for action in ACTIONS)
    expressions = {
        "sequence": "seq", "created_at": f"now() - {YEAR} + seq * ({YEAR} / {total})",
        "actor_id": "actor", "actor_ref": "actor",
        "actor_label": "CASE WHEN actor IS NULL THEN 'vod callback' "
                       "ELSE 'user' || lpad(actor::text, 5, '0') END",
        "action": f"(ARRAY[{actions}])[1 + floor(random() * {len(ACTIONS)})::int]",
        "outcome": _pick(OUTCOME_WEIGHTS), "target_kind": "kind",
        "target_vod_id": "md5('vod:' || kind || ':' || tn)",
        "target_pk": "md5(kind || ':' || tn)::uuid::text",  # str(uuid), as audit.record writes
        "request_id": "md5('req' || seq)", "vod_request_id": "upper(md5('v' || seq)::uuid::text)",
        "client_ip": "CASE WHEN actor IS NULL THEN NULL "
                     "ELSE ('10.0.' || seq % 250 || '.' || seq / 250 % 250)::inet END",
        "user_agent": "CASE WHEN actor IS NULL THEN '' ELSE 'Mozilla/5.0 (bench)' END",
        "data": """'{"old_status": "processing", "new_status": "ready"}'::jsonb""",
        "hash": "md5('h1' || seq) || md5('h2' || seq)",  # 64 hex; not a valid chain
    }
    source = (f"(SELECT seq, kind, CASE WHEN seq % {BUSY_VIDEO_EVERY} = 0 AND seq <= {SMALL}"
              f" THEN {BUSY_VIDEO} WHEN seq % {BUSY_VIDEO_EVERY} = 0 THEN {STRESS_VIDEO}"
              f" WHEN kind = 'video' THEN {target['video']} WHEN kind = 'image' THEN"
              f" {target['image']} ELSE {target['attached_media']} END AS tn,"
              f" CASE WHEN seq % {HEAVY_OWNER_EVERY} = 1 THEN {HEAVY_OWNER}"
              f" WHEN random() < 0.5 THEN 2 + floor(random() * {USERS - 1})::int END"
              f" AS actor FROM (SELECT seq, CASE WHEN seq % 10 < 8 THEN 'video' WHEN seq % 10"
              f" = 8 THEN 'image' ELSE 'attached_media' END AS kind, random() AS r"
              f" FROM generate_series({first}, {last}) seq) k) e")
    _insert(cursor, AuditEvent, expressions, source)


def grow(seeded: dict, uploads: dict, audit: int, audit_total: int, era: Era) -> float:
    """Bring every table up to the given row counts, new uploads of `era`; VACUUM ANALYZE;
    return the seconds."""
    from django.db import connection

    from uploads.models import AttachedMediaUpload, AuditEvent, ImageUpload, VideoUpload

    models = {"video": VideoUpload, "image": ImageUpload, "attached_media": AttachedMediaUpload}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")  # bulk load: no fsync per statement
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SELECT setseed(0.42)")  # the same data on every run
        for kind, model in models.items():
            if uploads[kind] > seeded.get(kind, 0):
                seed_uploads(cursor, model, seeded.get(kind, 0) + 1, uploads[kind], era)
            seeded[kind] = uploads[kind]
        if audit > seeded.get("audit", 0):
            seed_audit(cursor, seeded.get("audit", 0) + 1, audit, audit_total, uploads)
        seeded["audit"] = audit
        # What autovacuum gives a table in steady state: fresh statistics, a visibility map.
        for model in (*models.values(), AuditEvent):
            cursor.execute(f'VACUUM (ANALYZE) "{model._meta.db_table}"')
    return time.perf_counter() - started


def pages() -> list[tuple[str, str, object]]:
    """(label, URL, queryset of the rows it pages through) for every page measured. The
    search term, the upload and its history all come from the first 10,000 videos, so
    both measurements ask for the same thing."""
    from django.db.models import Q

    from uploads.models import AuditEvent, VideoUpload

    busy_id = uuid.UUID(hashlib.md5(f"video:{BUSY_VIDEO}".encode()).hexdigest())  # as seeded
    video = VideoUpload.objects.get(pk=busy_id)
    videos, events = VideoUpload.objects.all(), AuditEvent.objects.all()
    # The date of the oldest events (UTC): both sizes have rows on it.
    first_day = events.order_by("sequence").values_list("created_at", flat=True).first()
    first_day = first_day.astimezone(dt_timezone.utc).date()
    return [
        ("videos: first page", "/admin/uploads/videoupload/", videos),
        ("videos: status=ready", "/admin/uploads/videoupload/?status__exact=ready",
         videos.filter(status="ready")),
        ("videos: search vod_id", f"/admin/uploads/videoupload/?q={video.vod_id}",
         videos.filter(vod_id=video.vod_id)),
        ("videos: search owner", f"/admin/uploads/videoupload/?q=user{HEAVY_OWNER:05}",
         videos.filter(owner_id=HEAVY_OWNER)),
        ("video page + timeline", f"/admin/uploads/videoupload/{video.pk}/change/",
         events.filter(Q(target_pk=str(video.pk)) | Q(target_vod_id=video.vod_id))),
        ("audit: first page", "/admin/uploads/auditevent/", events),
        ("audit: action=upload.synced", "/admin/uploads/auditevent/?action=upload.synced",
         events.filter(action="upload.synced")),
        ("audit: outcome=failure", "/admin/uploads/auditevent/?outcome=failure",
         events.filter(outcome="failure")),
        # "Show counts" would COUNT every filter choice over the table; must be ignored.
        ("audit: ?_facets=1", "/admin/uploads/auditevent/?_facets=1", events),
        # Upload search by substring (trigram indexes), the audit's text and date filters,
        # a user's page and the CSV export (its first EXPORT_ROWS rows): admin_search.py.
        ("videos: search title", f"/admin/uploads/videoupload/?q={TITLE_WORD}",
         videos.filter(Q(title__icontains=TITLE_WORD) | Q(file_name__icontains=TITLE_WORD))),
        ("videos: search file name", f"/admin/uploads/videoupload/?q=file-{BUSY_VIDEO}.mp4",
         videos.filter(Q(title__icontains=f"file-{BUSY_VIDEO}.mp4")
                       | Q(file_name__icontains=f"file-{BUSY_VIDEO}.mp4"))),
        ("audit: user=heavy owner", f"/admin/uploads/auditevent/?user=user{HEAVY_OWNER:05}",
         events.filter(actor_id=HEAVY_OWNER)),
        ("audit: target=busy video", f"/admin/uploads/auditevent/?target={video.vod_id}",
         events.filter(Q(target_vod_id=video.vod_id) | Q(target_pk=video.vod_id))),
        ("audit: first day", f"/admin/uploads/auditevent/?created_from={first_day}"
                             f"&created_to={first_day}", events.filter(created_at__date=first_day)),
        ("user page (heavy owner)", f"/admin/auth/user/{HEAVY_OWNER}/change/",
         events.filter(actor_id=HEAVY_OWNER)),
        ("videos: CSV, first rows", "/admin/uploads/videoupload/export/?status__exact=ready",
         videos.filter(status="ready")),
        # The service dashboard aggregates time windows (48 h, 7 and 30 days), not pages:
        # its rows are the uploads of its 30-day window (the same at both sizes, see
        # HISTORY; a busy month is measured apart, stress_pages).
        _dashboard(),
    ]


def _dashboard():
    from django.utils import timezone

    return ("service dashboard", "/admin/dashboard/",
            _uploads_since(timezone.now() - timedelta(days=30)))


def stress_pages() -> list[tuple[str, str, object]]:
    """Pages whose rows grow with the table, measured at full size only (p50 < 300 ms):
    the stress video's 10,000 audit events, filtered and on its page."""
    from django.db.models import Q

    from uploads.models import AuditEvent, VideoUpload

    stress_id = uuid.UUID(hashlib.md5(f"video:{STRESS_VIDEO}".encode()).hexdigest())
    video = VideoUpload.objects.get(pk=stress_id)
    events = AuditEvent.objects.filter(Q(target_pk=str(video.pk)) | Q(target_vod_id=video.vod_id))
    return [
        ("audit: target=stress video", f"/admin/uploads/auditevent/?target={video.vod_id}",
         events),
        ("stress video page + timeline", f"/admin/uploads/videoupload/{video.pk}/change/",
         events),
    ]


def _uploads_since(since):
    """Upload rows of every kind created since `since` (a queryset, for its count)."""
    from uploads.models import AttachedMediaUpload, ImageUpload, VideoUpload

    parts = [model.objects.filter(created_at__gte=since).values("pk")
             for model in (VideoUpload, ImageUpload, AttachedMediaUpload)]
    return parts[0].union(*parts[1:], all=True)


EXPORT_ROWS = 100  # a CSV export is timed to its first rows: the rest is streamed


def fetch(client, url: str):
    """GET `url`: (response, text). A CSV export is read to its first EXPORT_ROWS rows and
    closed; its `admin.export` audit event (written when the stream ends) is left out, like
    the bench's login, so the seeded sequence numbers stay free."""
    if "/export/" not in url:
        response = client.get(url)
        return response, response.content.decode()
    with mock.patch("uploads.admin_search.audit.record"):
        response = client.get(url)
        chunks = iter(response.streaming_content)
        text = b"".join(next(chunks, b"") for _ in range(EXPORT_ROWS + 1)).decode()
        response.close()
    return response, text


def shown(url: str, text: str) -> int:
    """Rows on the page: changelist rows, timeline entries, a user's rows, CSV lines."""
    if "/export/" in url:
        return text.count("\n") - 1  # the header
    if "/auth/user/" in url:
        return text.count("<tr><td>")
    if "/change/" in url:
        return text.count('<td data-label="time">')
    return text.count('<th class="field-')


COUNT_RE = re.compile(r'SELECT COUNT\(\*\) AS "__count" FROM "(\w+)"(.*)', re.DOTALL)


class SqlTimer:
    """A connection.execute_wrapper: every query of a request, and the time spent in them.
    (CaptureQueriesContext's log is emptied at each request_started and rounds to 1 ms.)"""

    def __init__(self):
        self.sql, self.seconds = [], 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.sql.append(sql)


def measure(client, requests: int, measured=None) -> dict:
    """Per page of `measured` (default: pages()): p50 and max of the response time, p50 of
    the time in SQL, queries per request, the COUNT(*)s run, rows shown on the page and rows
    matching its filter."""
    from django.db import connection

    # Other work on the machine skews timings: say how busy it was.
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"measuring; load average {load}", flush=True)
    results = {}
    for label, url, rows in measured or pages():
        response, text = fetch(client, url)  # warm-up: templates, plans, caches
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        timings, timers = [], []
        for _ in range(requests):
            timer = SqlTimer()
            with connection.execute_wrapper(timer):
                started = time.perf_counter()
                fetch(client, url)
                timings.append((time.perf_counter() - started) * 1000)
            timers.append(timer)
        counts = []
        for sql in timers[-1].sql:
            match = COUNT_RE.search(sql)
            if match:  # a COUNT with no WHERE reads the whole table
                counts.append(match.group(1) + (" (filtered)" if " WHERE " in match.group(2)
                                                else " (WHOLE TABLE)"))
        results[label] = {
            "p50": statistics.median(timings), "max": max(timings),
            "sql": statistics.median(timer.seconds * 1000 for timer in timers),
            "queries": max(len(timer.sql) for timer in timers), "counts": counts,
            "shown": shown(url, text),
            "matching": rows.count(),  # outside the timing: an exact count, for the table
        }
    return results


def report(small: dict, full: dict) -> bool:
    """Print the comparison table; True if every page meets both targets."""
    header = (f"{'page':<28} {'rows@10k':>9} {'rows@full':>10} {'shown':>5} {'p50@10k':>8} "
              f"{'p50@full':>9} {'max@full':>9} {'ratio':>6} {'sql@10k':>8} {'sql@full':>8} "
              f"{'queries':>8}  result")
    print("\n" + header + "\n" + "-" * len(header))
    ok_all = True
    for label, at_full in full.items():
        at_small = small[label]
        ratio = at_full["p50"] / at_small["p50"]
        ok = ratio <= TARGET_RATIO and at_full["p50"] < TARGET_MS
        ok_all &= ok
        print(f"{label:<28} {at_small['matching']:>9,} {at_full['matching']:>10,} "
              f"{at_full['shown']:>5} {at_small['p50']:>6.1f}ms {at_full['p50']:>7.1f}ms "
              f"{at_full['max']:>7.1f}ms {ratio:>5.2f}x {at_small['sql']:>6.1f}ms "
              f"{at_full['sql']:>6.1f}ms {at_small['queries']:>3} /{at_full['queries']:>3}  "
              f"{'PASS' if ok else 'FAIL'}")
    print(f"\nrows: what the page pages through (detail: the upload's audit events); shown:"
          f" rows on the page at full size;\np50/max: response time; sql: p50 of the time in"
          f" SQL; queries: per request, at 10k / full.\nTarget: p50@full <= {TARGET_RATIO}x"
          f" p50@10k and < {TARGET_MS:.0f} ms.")
    for phase, results in (("10k", small), ("full", full)):
        for label, result in results.items():
            for count in result["counts"]:
                print(f"COUNT(*) at {phase}: {label}: on {count}")
    whole = [label for label, result in full.items()
             if any("WHOLE" in count for count in result["counts"])]
    print(f"COUNT(*) over a whole table at full size: {', '.join(whole) or 'none'}")
    return ok_all and not whole


def report_stress(stress: dict) -> bool:
    """Print the pages measured at full size only; True if each p50 is under TARGET_MS."""
    header = (f"{'page (full size only)':<34} {'rows':>9} {'shown':>5} {'p50':>8} {'max':>8} "
              f"{'sql':>7} {'queries':>7}  result")
    print("\n" + header + "\n" + "-" * len(header))
    ok_all = True
    for label, result in stress.items():
        ok = result["p50"] < TARGET_MS and not any("WHOLE" in c for c in result["counts"])
        ok_all &= ok
        print(f"{label:<34} {result['matching']:>9,} {result['shown']:>5} "
              f"{result['p50']:>6.1f}ms {result['max']:>6.1f}ms {result['sql']:>5.1f}ms "
              f"{result['queries']:>7}  {'PASS' if ok else 'FAIL'}")
    print(f"Target: p50 < {TARGET_MS:.0f} ms (these pages' rows grow with the table: no ratio).")
    return ok_all


def main() -> int:
    args = parse_args()
    configure_environment(args.database_url)
    recreate_database(args.database_url, create=True)
    static_root = tempfile.TemporaryDirectory(prefix="bench-static-")
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.test.utils import override_settings

        # The bench's own settings warn (sandbox with DEBUG off); the checks are not its job.
        call_command("migrate", verbosity=0, skip_checks=True)
        # With DEBUG off, pages name static files through collectstatic's manifest, as in
        # production: collect into a temporary STATIC_ROOT rather than the project's.
        override_settings(STATIC_ROOT=static_root.name).enable()
        call_command("collectstatic", interactive=False, verbosity=0)

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            print(f"PostgreSQL {cursor.fetchone()[0]}, {os.cpu_count()} CPUs", flush=True)
            seed_users(cursor)
        # The login's audit event (uploads.auth_audit) would be sealed as sequence 1, which
        # the seeded events number from: the bench's own login is left out of the trail.
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.disconnect(dispatch_uid="uploads.audit.login")
        client = Client()
        client.force_login(get_user_model().objects.get(username="bench-admin"))

        full = {kind: round(args.uploads * share) for kind, share in KIND_SHARES.items()}
        full["video"] = args.uploads - full["image"] - full["attached_media"]
        small = {kind: round(SMALL * share / KIND_SHARES["video"])
                 for kind, share in KIND_SHARES.items()}  # 10,000 videos, kinds in proportion
        seeded: dict = {}
        seconds = grow(seeded, small, SMALL, args.audit, LAST_YEAR)
        print(f"seeded {sum(small.values()):,} uploads ({small['video']:,} videos) and "
              f"{SMALL:,} audit events in {seconds:.1f} s", flush=True)
        at_small = measure(client, args.requests)
        seconds = grow(seeded, full, args.audit, args.audit, HISTORY)
        print(f"grew to {args.uploads:,} uploads ({full['video']:,} videos) and "
              f"{args.audit:,} audit events in {seconds:.1f} s (incl. VACUUM ANALYZE)",
              flush=True)
        at_full = measure(client, args.requests)
        stress = measure(client, args.requests, stress_pages())
        seconds = grow(seeded, {kind: count + round(args.busy_month * KIND_SHARES[kind])
                                for kind, count in full.items()}, args.audit, args.audit,
                       BUSY_MONTH)
        print(f"added {args.busy_month:,} uploads in the last 30 days in {seconds:.1f} s",
              flush=True)
        label, url, rows = _dashboard()
        stress |= measure(client, args.requests, [(f"{label}, busy month", url, rows)])
        passed = report(at_small, at_full)
        passed &= report_stress(stress)
        print(f"\nOVERALL: {'PASS' if passed else 'FAIL'}")
        return 0 if passed else 1
    finally:
        from django.db import connections

        connections.close_all()  # DROP DATABASE needs our sessions gone
        static_root.cleanup()
        if args.keep:
            print(f"kept {args.database_url}")
        else:
            recreate_database(args.database_url, create=False)


if __name__ == "__main__":
    sys.exit(main())
