"""Seeded, realistic data, written straight into the tables in bulk.

Going through the service layer would take hours for a million requests, so
the rows are generated here as the service would have left them — every
request walked along a real path of the lifecycle (submitted, reviewed,
decided, used, ended; or still open, with live or passed deadlines), with
consistent timestamps, decisions and cases — and loaded with ``executemany``
(SQLite) or ``COPY`` (PostgreSQL) in batches, so memory stays flat.

Realism, in numbers (all from one seed, so two runs load the same rows):

* many tenants, with Zipf-skewed activity: the busiest tenant makes ~10% of
  all requests, most tenants only a handful;
* engineers with skewed workloads, a few approvers per tenant, a handful of
  support managers (every submission notifies them, as in production);
* two years of history, denser recently (usage grows), ~97% of it terminal
  (closed, access ended, expired, denied, rejected, canceled, revoked);
* a live working set (open requests within their windows) and, separately,
  ``due`` open requests whose deadline passed and that the sweeper has not
  recorded yet.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Table

from lockbox.domain.audit import GENESIS_HASH, AuditRecord
from lockbox.domain.lifecycle import State
from lockbox.store import tables as t
from lockbox.store.db import Database
from lockbox.store.repositories import canonical_details

#: "Now" in every dataset (a Monday morning); benchmarks set their ManualClock to it.
NOW = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
REVIEW = timedelta(hours=12)
APPROVAL = timedelta(hours=12)
ACCESS = timedelta(hours=4)
BATCH = 5_000

_WORDS = [
    "contoso",
    "fabrikam",
    "northwind",
    "adatum",
    "litware",
    "proseware",
    "wingtip",
    "tailspin",
    "woodgrove",
    "fourth",
    "coho",
    "lucerne",
    "margie",
    "alpine",
    "humongous",
    "wide-world",
    "trey",
    "relecloud",
]
_ISSUES = (
    "mailbox does not sync on mobile",
    "calendar invitations are lost",
    "shared mailbox shows stale items",
    "retention policy deleted recent mail",
    "search returns no results since Friday",
    "site permissions broken after migration",
    "journaling rule loops",
    "large attachment stuck in outbox",
)


def ident(rng: random.Random, prefix: str) -> str:
    """An id shaped like :func:`lockbox.domain.ids.new_id`, but from the seeded generator."""
    # 26 hex digits: every one is in the id alphabet, and far cheaper than 26 choices.
    return f"{prefix}_{rng.getrandbits(104):026x}"


def zipf_cumulative(n: int, s: float, offset: float = 1.0) -> list[float]:
    """Cumulative weights of rank ``i`` ∝ 1 / (i + offset)^s, for ``random.choices``."""
    return list(itertools.accumulate(1.0 / (i + offset) ** s for i in range(n)))


def pick(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


# -- bulk loading ---------------------------------------------------------------------------


def _converters(table: Table, dialect: str) -> list[tuple[str, Callable[[Any], Any] | None]]:
    """How each column's Python value is written by the driver, as SQLAlchemy would."""
    out: list[tuple[str, Callable[[Any], Any] | None]] = []
    for column in table.columns:
        conv: Callable[[Any], Any] | None = None
        if isinstance(column.type, t.UTCDateTime):
            if dialect == "sqlite":
                # SQLAlchemy's SQLite format: deadlines compare as text, so it must match.
                def conv(v: Any) -> Any:
                    if v is None:
                        return None
                    if v.tzinfo is not UTC:
                        v = v.astimezone(UTC)
                    return v.isoformat(" ", "microseconds")[:26]

        elif isinstance(column.type, JSON):

            def conv(v: Any) -> Any:
                return None if v is None else json.dumps(v)

        elif isinstance(column.type, Boolean) and dialect == "sqlite":

            def conv(v: Any) -> Any:
                return None if v is None else int(v)

        out.append((column.name, conv))
    return out


def _server_defaults(table: Table) -> dict[str, Any]:
    """The value a column's server default gives a row that does not name it (the driver
    is sent every column, so the database's own default never applies)."""
    found: dict[str, Any] = {}
    for column in table.columns:
        default = column.server_default
        text = getattr(getattr(default, "arg", None), "text", getattr(default, "arg", None))
        if isinstance(text, str):
            found[column.name] = int(text) if text.lstrip("-").isdigit() else text.strip("'")
    return found


def bulk_insert(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Insert ``rows`` (dicts of every column) in batches through the driver itself."""
    dialect = conn.dialect.name
    convs = _converters(table, dialect)
    names = [n for n, _ in convs]
    raw = conn.connection.driver_connection
    assert raw is not None
    count = 0

    plain = [n for n, c in convs if c is None]
    converted = [(n, c) for n, c in convs if c is not None]
    order = [names.index(n) for n in plain + [n for n, _ in converted]]
    # Build each tuple in "plain, then converted" order and put columns back in place once.
    placed = [order.index(i) for i in range(len(names))]

    defaults = _server_defaults(table)

    def tuples(batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        out = []
        for r in batch:
            if defaults:
                r = {**defaults, **r}
            values = [r.get(n) for n in plain] + [c(r.get(n)) for n, c in converted]
            out.append(tuple([values[i] for i in placed]))
        return out

    iterator = iter(rows)
    if dialect == "sqlite":
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        )
        cursor = raw.cursor()
        while batch := list(itertools.islice(iterator, BATCH)):
            cursor.executemany(sql, tuples(batch))
            count += len(batch)
        cursor.close()
    else:
        with raw.cursor() as cursor:
            copy_sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
            with cursor.copy(copy_sql) as copy:
                while batch := list(itertools.islice(iterator, BATCH)):
                    for values in tuples(batch):
                        copy.write_row(values)
                    count += len(batch)
    return count


def analyze(db: Database) -> None:
    """Fresh statistics after a bulk load, as a long-running database would have them; on
    PostgreSQL also a vacuum, as autovacuum would have run (its visibility map is what
    lets a query read an index alone)."""
    if db.is_sqlite:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


# -- people -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    id: str
    slug: str
    domain: str
    lockbox_enabled: bool


@dataclass
class People:
    tenants: list[Tenant]  # busiest first
    engineers: list[tuple[str, str]]  # (id, e-mail), busiest first
    managers: list[str]
    approvers: dict[str, list[str]]  # tenant id → approver ids
    admins: dict[str, str]  # tenant id → tenant admin id
    service_id: str
    tenant_weights: list[float] = field(default_factory=list)
    engineer_weights: list[float] = field(default_factory=list)


def make_people(rng: random.Random, tenants: int, engineers: int) -> People:
    ts = []
    for i in range(tenants):
        slug = f"{_WORDS[i % len(_WORDS)]}-{i:05d}"
        # Most tenants keep their lockbox on; some switch it off (manager approval only).
        ts.append(Tenant(ident(rng, "ten"), slug, f"{slug}.example", rng.random() > 0.05))
    engs = [(ident(rng, "usr"), f"engineer{i:05d}@provider.example") for i in range(engineers)]
    approvers = {x.id: [ident(rng, "usr") for _ in range(rng.randint(1, 3))] for x in ts}
    return People(
        tenants=ts,
        engineers=engs,
        managers=[ident(rng, "usr") for _ in range(8)],
        approvers=approvers,
        admins={x.id: ident(rng, "usr") for x in ts},
        service_id=ident(rng, "usr"),
        tenant_weights=zipf_cumulative(tenants, 1.0),
        engineer_weights=zipf_cumulative(engineers, 0.8, offset=3.0),
    )


def load_people(conn: Connection, people: People, now: datetime = NOW) -> None:
    """Tenants (with domains and audit heads), users and roles, the resource service."""
    created = now - timedelta(days=800)
    bulk_insert(
        conn,
        t.tenants,
        (
            {
                "id": x.id,
                "slug": x.slug,
                "name": x.slug.replace("-", " ").title(),
                "lockbox_enabled": x.lockbox_enabled,
                "approval_window_s": int(APPROVAL.total_seconds()),
                "access_window_s": int(ACCESS.total_seconds()),
                "review_window_s": int(REVIEW.total_seconds()),
                "required_approvals": 1,
                "notify_emails": [],
                "reminder_fraction": 0.25,
                "created_at": created,
                "version": 1,
            }
            for x in people.tenants
        ),
    )
    bulk_insert(
        conn,
        t.tenant_domains,
        ({"domain": x.domain, "tenant_id": x.id, "created_at": created} for x in people.tenants),
    )
    bulk_insert(
        conn,
        t.audit_heads,
        ({"tenant_id": x.id, "seq": 0, "hash": GENESIS_HASH} for x in people.tenants),
    )
    users: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []

    def user(uid: str, email: str, role: str, tenant_id: str | None) -> None:
        users.append(
            {
                "id": uid,
                "email": email,
                "email_key": email.lower(),
                "display_name": email.split("@")[0].replace(".", " ").title(),
                "side": "customer" if tenant_id else "provider",
                "tenant_id": tenant_id,
                "password_hash": None,
                "active": True,
                "created_at": created,
                "time_zone": None,
            }
        )
        roles.append({"user_id": uid, "role": role})

    for uid, email in people.engineers:
        user(uid, email, "engineer", None)
    for i, uid in enumerate(people.managers):
        user(uid, f"manager{i}@provider.example", "manager", None)
    user(people.service_id, "mailstore@provider.example", "resource_service", None)
    for x in people.tenants:
        user(people.admins[x.id], f"admin@{x.domain}", "tenant_admin", x.id)
        for i, uid in enumerate(people.approvers[x.id]):
            user(uid, f"approver{i}@{x.domain}", "approver", x.id)
    bulk_insert(conn, t.users, users)
    bulk_insert(conn, t.user_roles, roles)
    bulk_insert(
        conn,
        t.resource_services,
        [
            {
                "user_id": people.service_id,
                "audience": "mailstore",
                "all_tenants": True,
                "tenant_ids": [],
                "prefixes": ["exchange/", "sharepoint/"],
                "updated_at": created,
            }
        ],
    )


# -- resources --------------------------------------------------------------------------------

_MAILBOX_WEIGHTS = zipf_cumulative(5_000, 1.1)


def mailbox(rng: random.Random, domain: str) -> str:
    return f"exchange/mailbox/user{pick(rng, _MAILBOX_WEIGHTS):04d}@{domain}"


def resources_for(rng: random.Random, domain: str) -> list[str]:
    """What engineers ask for: mostly one mailbox, sometimes two, a prefix, or a site."""
    roll = rng.random()
    if roll < 0.70:
        return [mailbox(rng, domain)]
    if roll < 0.80:
        first, second = mailbox(rng, domain), mailbox(rng, domain)
        return [first] if first == second else [first, second]
    if roll < 0.90:
        return ["exchange/mailbox/*"]
    return [f"sharepoint/site/{rng.choice(_WORDS)}{rng.randint(1, 40)}/*"]


def covered(rng: random.Random, granted: str, domain: str) -> str:
    """A concrete resource that ``granted`` covers."""
    if granted.endswith("/*"):
        if granted.startswith("exchange/mailbox/"):
            return mailbox(rng, domain)
        return f"{granted[:-1]}doc{rng.randint(1, 9999)}.docx"
    return granted


# -- requests ---------------------------------------------------------------------------------

#: Where finished requests ended up, and how often (from a lifecycle's branches).
TERMINAL_PATHS: dict[str, float] = {
    "closed": 0.40,
    "access_ended": 0.22,
    "expired_review": 0.03,
    "expired_approval": 0.07,
    "canceled_review": 0.04,
    "canceled_approval": 0.04,
    "rejected": 0.06,
    "denied": 0.06,
    "revoked": 0.03,
}
OPEN_PATHS: dict[str, float] = {
    "pending_review": 0.3,
    "pending_approval": 0.3,
    "approved": 0.4,
}


@dataclass(frozen=True)
class Shape:
    """How many rows of which kind; the other dimensions grow with ``requests``."""

    requests: int
    due: int  # open, stage deadline passed, not yet swept
    live: int  # open, within their windows
    seed: int = 7
    tenants: int = 0  # 0: requests // 1000 (at least 20)
    engineers: int = 0  # 0: requests // 2000 (at least 20)

    @property
    def tenant_count(self) -> int:
        return self.tenants or max(20, self.requests // 1000)

    @property
    def engineer_count(self) -> int:
        return self.engineers or max(20, self.requests // 2000)

    def describe(self) -> str:
        return (
            f"{self.requests:,} requests ({self.due:,} due, {self.live:,} open), "
            f"{self.tenant_count:,} tenants, {self.engineer_count:,} engineers"
        )


@dataclass
class Generated:
    requests: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    cases: list[dict[str, Any]]


class RequestFactory:
    """Walks requests along the lifecycle and emits the rows the service would have written."""

    def __init__(self, rng: random.Random, people: People, now: datetime = NOW) -> None:
        self.rng = rng
        self.people = people
        self.now = now
        self._closed_cases: dict[tuple[int, int], list[Any]] = {}
        self._open_cases: dict[tuple[int, int], str] = {}
        self._terminal = (list(TERMINAL_PATHS), list(itertools.accumulate(TERMINAL_PATHS.values())))
        self._open = (list(OPEN_PATHS), list(itertools.accumulate(OPEN_PATHS.values())))

    def _choose(self, table: tuple[list[str], list[float]]) -> str:
        names, cumulative = table
        return names[pick(self.rng, cumulative)]

    def _case(self, out: Generated, ti: int, ei: int, created: datetime, open_: bool) -> str:
        """Requests share cases: a closed case carries a few finished requests, an open one
        the requests in progress of its engineer on its tenant."""
        tenant = self.people.tenants[ti]
        engineer = self.people.engineers[ei][0]
        key = (ti, ei)
        if open_ and key in self._open_cases:
            return self._open_cases[key]
        if not open_:
            slot = self._closed_cases.get(key)
            if slot is not None and slot[1] > 0 and abs(created - slot[2]) < timedelta(days=3):
                slot[1] -= 1
                return str(slot[0])
        case_id = ident(self.rng, "case")
        opened = created - minutes(self.rng, 5, 600)
        out.cases.append(
            {
                "id": case_id,
                "tenant_id": tenant.id,
                "title": self.rng.choice(_ISSUES).capitalize(),
                "reference": f"SR-{self.rng.randint(100000, 999999)}",
                "engineer_id": engineer,
                "status": "open" if open_ else "closed",
                "opened_at": opened,
                "opened_by": engineer,
                "closed_at": None if open_ else created + timedelta(days=self.rng.uniform(1, 5)),
                "closed_by": None if open_ else engineer,
            }
        )
        if open_:
            self._open_cases[key] = case_id
        else:
            self._closed_cases[key] = [case_id, self.rng.randint(0, 4), created]
        return case_id

    def generate(self, out: Generated, kind: str, age: timedelta | None = None) -> None:
        """One request: ``kind`` is ``terminal`` (created ``age`` ago), ``live`` or ``due``."""
        rng, people, now = self.rng, self.people, self.now
        ti = pick(rng, people.tenant_weights)
        ei = pick(rng, people.engineer_weights)
        tenant = people.tenants[ti]
        engineer = people.engineers[ei][0]
        approver = rng.choice(people.approvers[tenant.id])
        manager = rng.choice(people.managers)
        path = self._choose(self._terminal if kind == "terminal" else self._open)
        customer = tenant.lockbox_enabled

        # Anchor: the moment the current stage started, so deadlines land where they must.
        open_reviewed = open_decided = None
        if kind == "terminal":
            created = now - (age or timedelta(days=2 + 728 * rng.random() ** 1.6))
            if not customer and path in ("denied", "expired_approval", "canceled_approval"):
                path = "closed"  # no customer step: these branches do not exist
        else:
            if path != "pending_review" and not customer:
                path = "approved"  # lockbox off: the review approves directly
            window = {"pending_review": REVIEW, "pending_approval": APPROVAL}.get(path, ACCESS)
            if kind == "live":
                stage_start = now - window * rng.uniform(0.01, 0.99)
            else:  # due: the deadline passed up to a day and a half ago
                stage_start = now - window - minutes(rng, 1, 36 * 60)
            if path == "pending_review":
                created = stage_start
            elif path == "pending_approval" or not customer:
                open_reviewed = stage_start
                created = stage_start - minutes(rng, 5, 11 * 60)
            else:
                open_decided = stage_start
                open_reviewed = stage_start - minutes(rng, 2, 11 * 60)
                created = open_reviewed - minutes(rng, 5, 11 * 60)

        row: dict[str, Any] = {
            "id": ident(rng, "req"),
            "tenant_id": tenant.id,
            "requester_id": engineer,
            "resources": resources_for(rng, tenant.domain),
            "access_level": "read" if rng.random() < 0.75 else "read_write",
            "justification": f"Customer reports: {rng.choice(_ISSUES)} "
            f"(SR-{rng.randint(100000, 999999)})",
            "created_at": created,
            "review_deadline": created + REVIEW,
            "reviewer_id": None,
            "reviewed_at": None,
            "review_comment": None,
            "customer_step": None,
            "required_approvals": 1,
            "approval_deadline": None,
            "approved_at": None,
            "access_deadline": None,
            "ended_at": None,
            "ended_by": None,
            "end_comment": None,
            "first_used_at": None,
        }
        version = 1
        at = created
        state = State.PENDING_REVIEW

        def end(target: State, when: datetime, by: str, comment: str | None = None) -> None:
            nonlocal state, at, version
            state, at, version = target, when, version + 1
            row.update(ended_at=when, ended_by=by, end_comment=comment)

        def sweep_lag() -> timedelta:
            return minutes(rng, 0.1, 3)

        review_path = path in ("expired_review", "canceled_review", "pending_review")
        if review_path:
            if path == "expired_review":
                end(State.EXPIRED, row["review_deadline"] + sweep_lag(), "system")
            elif path == "canceled_review":
                end(
                    State.CANCELED,
                    created + minutes(rng, 1, 600),
                    engineer,
                    "Solved without access",
                )
        else:
            reviewed = open_reviewed or created + minutes(rng, 5, 11 * 60)
            row.update(reviewer_id=manager, reviewed_at=reviewed)
            version, at = version + 1, reviewed
            if path == "rejected":
                end(State.REJECTED, reviewed, manager, "Use the diagnostics tool first")
            elif not customer:
                row.update(customer_step=False, required_approvals=0)
                state = State.APPROVED
                row.update(approved_at=reviewed, access_deadline=reviewed + ACCESS)
            else:
                row.update(customer_step=True, approval_deadline=reviewed + APPROVAL)
                state = State.PENDING_APPROVAL
        decisions: list[dict[str, Any]] = []
        if state is State.PENDING_APPROVAL and path != "pending_approval":
            if path == "expired_approval":
                end(State.EXPIRED, row["approval_deadline"] + sweep_lag(), "system")
            elif path == "canceled_approval":
                end(State.CANCELED, at + minutes(rng, 1, 600), engineer, "No longer needed")
            else:
                decided = open_decided or at + minutes(rng, 2, 11 * 60)
                approve = path != "denied"
                decisions.append(
                    {
                        "request_id": row["id"],
                        "actor_id": approver,
                        "kind": "approve" if approve else "deny",
                        "at": decided,
                        "comment": None if approve else "Not during quarter close",
                        "credential": f"session:{ident(rng, 'ses')}",
                    }
                )
                version, at = version + 1, decided
                if not approve:
                    end(State.DENIED, decided, approver, "Not during quarter close")
                else:
                    state = State.APPROVED
                    row.update(approved_at=decided, access_deadline=decided + ACCESS)
        if state is State.APPROVED:
            if rng.random() < 0.8:
                row["first_used_at"] = at + minutes(rng, 1, 30)
            if path == "closed":
                end(State.CLOSED, at + minutes(rng, 10, 230), engineer, "Fixed")
            elif path == "access_ended":
                end(State.ACCESS_ENDED, row["access_deadline"] + sweep_lag(), "system")
            elif path == "revoked":
                end(State.REVOKED, at + minutes(rng, 5, 200), approver, "Enough")
        if kind != "terminal" and row["first_used_at"] and row["first_used_at"] > now:
            row["first_used_at"] = None
        row.update(
            state=state.value,
            updated_at=at,
            version=version,
            case_id=self._case(out, ti, ei, created, open_=kind != "terminal"),
        )
        out.requests.append(row)
        out.decisions.extend(decisions)


def request_rows(
    shape: Shape, people: People, rng: random.Random, now: datetime = NOW
) -> Iterator[Generated]:
    """Batches of rows in the order a real database received them: history oldest first
    (so a table's physical order follows time, as it does in production), then the open
    requests of the last days."""
    factory = RequestFactory(rng, people, now)
    terminal = shape.requests - shape.due - shape.live
    kinds = ["due"] * shape.due + ["live"] * shape.live
    rng.shuffle(kinds)
    out = Generated([], [], [])
    for i in range(shape.requests):
        if i < terminal:
            u = 1.0 - (i + rng.random()) / terminal  # 1 → 0: oldest first
            factory.generate(out, "terminal", age=timedelta(days=2 + 728 * u**1.6))
        else:
            factory.generate(out, kinds[i - terminal])
        if len(out.requests) >= BATCH:
            yield out
            out = Generated([], [], [])
    if out.requests:
        yield out


def load_requests(db: Database, shape: Shape, now: datetime = NOW) -> People:
    """Load a whole dataset of ``shape`` into a migrated, empty database; returns its people.

    ``now`` anchors every time: a server running on the real clock needs data anchored at
    the real time, the in-process benchmarks use :data:`NOW` and a manual clock."""
    rng = random.Random(shape.seed)
    people = make_people(rng, shape.tenant_count, shape.engineer_count)
    batches = request_rows(shape, people, rng, now)
    with db.engine.connect() as conn, loading(conn):
        with conn.begin():
            load_people(conn, people, now)
        while chunk := list(itertools.islice(batches, 10)):
            with conn.begin():
                for batch in chunk:  # cases first: requests reference them
                    bulk_insert(conn, t.cases, batch.cases)
                    bulk_insert(conn, t.access_requests, batch.requests)
                    bulk_insert(conn, t.request_decisions, batch.decisions)
    analyze(db)
    return people


def copy_from_sqlite(source: str, target: Database) -> None:
    """Copy every row of a loaded SQLite file into a migrated, empty PostgreSQL database.

    Cheaper than generating the rows again (the text SQLite stores is what ``COPY``
    reads, save the time zone), and it makes both databases hold the very same data.
    """
    import sqlite3

    reader = sqlite3.connect(source)
    try:
        with target.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            with conn.begin():  # rows the migrations seed (the feed head) come from the copy
                every = ", ".join(table.name for table in t.metadata.sorted_tables)
                conn.exec_driver_sql(f"TRUNCATE {every}")
            for table in t.metadata.sorted_tables:  # parents before children
                names = [c.name for c in table.columns]
                convs: list[Callable[[Any], Any] | None] = []
                for column in table.columns:
                    if isinstance(column.type, t.UTCDateTime):
                        convs.append(lambda v: None if v is None else v + "+00")
                    elif isinstance(column.type, Boolean):
                        convs.append(lambda v: None if v is None else bool(v))
                    else:
                        convs.append(None)
                cursor = reader.execute(f"SELECT {', '.join(names)} FROM {table.name}")
                with conn.begin(), raw.cursor() as pg:
                    copy_sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
                    with pg.copy(copy_sql) as copy:
                        while batch := cursor.fetchmany(BATCH):
                            for row in batch:
                                copy.write_row(
                                    [c(v) if c else v for c, v in zip(convs, row, strict=True)]
                                )
    finally:
        reader.close()
    analyze(target)


@contextlib.contextmanager
def loading(conn: Connection) -> Iterator[None]:
    """SQLite: no per-row foreign-key checks and no fsync while loading rows that are
    consistent by construction; the connection is put back as the store configures it."""
    raw = conn.connection.driver_connection
    sqlite = conn.dialect.name == "sqlite"
    assert raw is not None
    if sqlite:
        conn.commit()  # PRAGMA foreign_keys is ignored inside a transaction
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("PRAGMA synchronous=OFF")
    try:
        yield
    finally:
        if sqlite:
            conn.commit()
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute("PRAGMA synchronous=NORMAL")


# -- audit chains -----------------------------------------------------------------------------

_OPS = (
    ("request.submit", 0.16),
    ("request.review_approve", 0.14),
    ("request.approve", 0.12),
    ("access.token_issued", 0.14),
    ("access.read", 0.22),
    ("access.write", 0.05),
    ("access.check_denied", 0.04),
    ("request.close", 0.09),
    ("request.end_access", 0.04),
)
_OP_NAMES = [o for o, _ in _OPS]
_OP_CUMULATIVE = list(itertools.accumulate(w for _, w in _OPS))


def _details(rng: random.Random, op: str, domain: str) -> dict[str, Any]:
    box = mailbox(rng, domain)
    if op == "request.submit":
        return {
            "case_id": ident(rng, "case"),
            "resources": [box],
            "access_level": "read",
            "justification": f"Customer reports: {rng.choice(_ISSUES)}",
            "review_deadline": "2025-06-02T21:30:00.000000Z",
            "from": None,
            "to": "pending_review",
        }
    if op == "access.token_issued":
        return {
            "jti": ident(rng, "jti")[4:26],
            "kid": "key_0123456789abcdefghjkmnpqrs",
            "audience": "mailstore",
            "resources": [box],
            "expires_at": "2025-06-02T09:35:00.000000Z",
        }
    if op.startswith("access."):
        return {"resource": box, "outcome": "success", "engineer": ident(rng, "usr")}
    return {"from": "pending_review", "to": "pending_approval", "credential": "session:x"}


def audit_rows(
    rng: random.Random, tenant: Tenant, count: int, start: datetime, step: timedelta
) -> Iterator[dict[str, Any]]:
    """A valid chain of ``count`` records (hashes computed exactly as the store does)."""
    prev = GENESIS_HASH
    at = start
    actor = ident(rng, "usr")
    for seq in range(1, count + 1):
        op = _OP_NAMES[pick(rng, _OP_CUMULATIVE)]
        details = json.loads(canonical_details(_details(rng, op, tenant.domain)))
        at = at + step * (0.5 + rng.random())
        record = AuditRecord(
            id=ident(rng, "evt"),
            tenant_id=tenant.id,
            seq=seq,
            at=at,
            actor_id=actor,
            actor_kind="user",
            operation=op,
            request_id=ident(rng, "req") if op != "access.check_denied" else None,
            details=details,
            prev_hash=prev,
        ).hashed()
        prev = record.hash
        yield {
            "id": record.id,
            "tenant_id": record.tenant_id,
            "seq": record.seq,
            "at": record.at,
            "actor_id": record.actor_id,
            "actor_kind": record.actor_kind,
            "operation": record.operation,
            "request_id": record.request_id,
            "details": canonical_details(record.details),
            "prev_hash": record.prev_hash,
            "hash": record.hash,
        }


def load_chain(db: Database, tenant: Tenant, count: int, seed: int) -> None:
    """Append ``count`` records to ``tenant``'s (empty) chain and move its head."""
    from sqlalchemy import update

    rng = random.Random(seed)
    span = NOW - timedelta(days=730)
    step = timedelta(days=730) / max(count, 1)
    last: dict[str, Any] = {}

    def tracked() -> Iterator[dict[str, Any]]:
        for row in audit_rows(rng, tenant, count, span, step):
            last["seq"], last["hash"] = row["seq"], row["hash"]
            yield row

    with db.engine.connect() as conn:
        rows = tracked()
        while True:
            with conn.begin():
                n = bulk_insert(conn, t.audit_events, itertools.islice(rows, 100_000))
            if n == 0:
                break
        if last:
            with conn.begin():
                conn.execute(
                    update(t.audit_heads)
                    .where(t.audit_heads.c.tenant_id == tenant.id)
                    .values(seq=last["seq"], hash=last["hash"])
                )
