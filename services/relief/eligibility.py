"""Who is eligible, and who is still waiting: a local SQLite read model of relief's own log.

It follows the HouseholdEligibility aggregates (built from households' contract events,
never from the households database) and the entitlements of rounds, so "who does this
rule select" and "who is entitled but not served" are indexed queries, not scans of
aggregates. Rebuildable: delete `eligibility.sqlite` and it is replayed from notification 1.

A merged-away household is never selected; its quarantine episodes count for its survivor
(`owner_id`), and an entitlement it holds counts as its survivor's.
"""

import json
import sqlite3
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from services.common.projection import LocalProjection
from services.relief.rounds import FLAGS, Candidate

HOUSEHOLD = "services.relief.domain:HouseholdEligibility."
ENTITLEMENT = "services.relief.rounds:Entitlement."
ROUND = "services.relief.rounds:Round."
KINDS = {HOUSEHOLD: "household", ENTITLEMENT: "entitlement", ROUND: "round"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS household (
    id TEXT PRIMARY KEY, commune_code TEXT NOT NULL, village TEXT NOT NULL, village_key TEXT NOT NULL,
    member_count INTEGER NOT NULL, poverty_status TEXT NOT NULL,
    elderly INTEGER NOT NULL, child_under_6 INTEGER NOT NULL, pregnant INTEGER NOT NULL,
    disabled INTEGER NOT NULL, chronic_illness INTEGER NOT NULL,
    merged_into TEXT, survivor_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS household_place ON household (commune_code, village_key);
CREATE INDEX IF NOT EXISTS household_survivor ON household (survivor_id);
CREATE TABLE IF NOT EXISTS episode (
    episode_id TEXT PRIMARY KEY, household_id TEXT NOT NULL, owner_id TEXT NOT NULL,
    starts_on TEXT NOT NULL, last_day TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS episode_period ON episode (last_day, starts_on);
CREATE INDEX IF NOT EXISTS episode_owner ON episode (owner_id);
CREATE TABLE IF NOT EXISTS entitlement (
    id TEXT PRIMARY KEY, round_id TEXT NOT NULL, household_id TEXT NOT NULL, commune_code TEXT NOT NULL,
    village TEXT NOT NULL, village_key TEXT NOT NULL, status TEXT NOT NULL, lines TEXT NOT NULL,
    eligible_since TEXT NOT NULL, issued_on TEXT NOT NULL, earmarked_donation_id TEXT,
    entry_seq INTEGER, delivered_at TEXT, volunteer_id TEXT, cancel_reason TEXT);
CREATE INDEX IF NOT EXISTS entitlement_round ON entitlement (round_id, status, commune_code, village_key);
CREATE INDEX IF NOT EXISTS entitlement_household ON entitlement (household_id);
CREATE TABLE IF NOT EXISTS round (
    id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, name TEXT NOT NULL, planned_on TEXT NOT NULL,
    status TEXT NOT NULL, created_by TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS round_campaign ON round (campaign_id, planned_on);
"""


def village_key(village: str) -> str:
    return " ".join(village.split()).casefold()


class EligibilityModel(LocalProjection):
    schema = SCHEMA
    schema_version = 1

    # -- projecting

    def apply(self, db: sqlite3.Connection, notifications: list[Notification]) -> None:
        for notification in notifications:
            prefix, _, name = notification.topic.rpartition(".")
            kind = KINDS.get(prefix + ".")
            if kind:
                handler = getattr(self, f"_{kind}_{name}", None)
                if handler:
                    handler(db, self.app.mapper.to_domain_event(notification))

    def _round_Drafted(self, db, e) -> None:
        db.execute("INSERT OR IGNORE INTO round VALUES (?,?,?,?,'draft',?)",
                   (str(e.originator_id), str(e.campaign_id), e.name, e.planned_on.isoformat(), e.actor))

    def _round_Edited(self, db, e) -> None:
        for column in ("name", "planned_on"):
            if column in e.changes:
                db.execute(f"UPDATE round SET {column}=? WHERE id=?", (str(e.changes[column]), str(e.originator_id)))

    def _round_Issued(self, db, e) -> None:
        db.execute("UPDATE round SET status='issued' WHERE id=?", (str(e.originator_id),))

    def _household_Registered(self, db, e) -> None:
        hid = str(e.originator_id)
        db.execute("INSERT OR IGNORE INTO household VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL,?)",
                   (hid, e.commune_code, e.village, village_key(e.village), e.member_count, e.poverty_status,
                    *_flags(e.vulnerability), hid))

    def _household_Corrected(self, db, e) -> None:
        db.execute("UPDATE household SET commune_code=?, village=?, village_key=?, poverty_status=? WHERE id=?",
                   (e.commune_code, e.village, village_key(e.village), e.poverty_status, str(e.originator_id)))

    def _household_MembersChanged(self, db, e) -> None:
        db.execute("UPDATE household SET member_count=?, elderly=?, child_under_6=?, pregnant=?, disabled=?, "
                   "chronic_illness=? WHERE id=?", (e.member_count, *_flags(e.vulnerability), str(e.originator_id)))

    def _household_QuarantineStarted(self, db, e) -> None:
        hid = str(e.originator_id)
        owner = db.execute("SELECT survivor_id FROM household WHERE id=?", (hid,)).fetchone()
        db.execute("INSERT OR REPLACE INTO episode VALUES (?,?,?,?,?)",
                   (str(e.episode_id), hid, owner[0] if owner else hid, e.starts_on.isoformat(),
                    e.expected_end_on.isoformat()))

    def _household_QuarantineEnded(self, db, e) -> None:
        db.execute("UPDATE episode SET last_day=? WHERE episode_id=?", (e.ended_on.isoformat(), str(e.episode_id)))

    def _household_MergedInto(self, db, e) -> None:
        duplicate = str(e.originator_id)
        row = db.execute("SELECT survivor_id FROM household WHERE id=?", (str(e.survivor_id),)).fetchone()
        survivor = row[0] if row else str(e.survivor_id)
        db.execute("UPDATE household SET merged_into=? WHERE id=?", (str(e.survivor_id), duplicate))
        db.execute("UPDATE household SET survivor_id=? WHERE survivor_id=?", (survivor, duplicate))
        db.execute("UPDATE episode SET owner_id=? WHERE owner_id=?", (survivor, duplicate))

    def _entitlement_Issued(self, db, e) -> None:
        db.execute("INSERT OR IGNORE INTO entitlement (id, round_id, household_id, commune_code, village, "
                   "village_key, status, lines, eligible_since, issued_on, earmarked_donation_id) "
                   "VALUES (?,?,?,?,?,?,'issued',?,?,?,?)",
                   (str(e.originator_id), str(e.round_id), str(e.household_id), e.commune_code, e.village,
                    village_key(e.village), json.dumps(e.lines), e.eligible_since.isoformat(),
                    e.issued_on.isoformat(), str(e.earmarked_donation_id) if e.earmarked_donation_id else None))

    def _entitlement_Cancelled(self, db, e) -> None:
        db.execute("UPDATE entitlement SET status='cancelled', cancel_reason=? WHERE id=?",
                   (e.reason, str(e.originator_id)))

    def _entitlement_Served(self, db, e) -> None:
        db.execute("UPDATE entitlement SET status='served', entry_seq=?, delivered_at=?, volunteer_id=? WHERE id=?",
                   (e.entry_seq, e.delivered_at, e.volunteer_id, str(e.originator_id)))

    def _entitlement_Reopened(self, db, e) -> None:
        db.execute("UPDATE entitlement SET status=CASE WHEN cancel_reason IS NULL THEN 'issued' ELSE 'cancelled' END,"
                   " entry_seq=NULL, delivered_at=NULL, volunteer_id=NULL WHERE id=? AND entry_seq=?",
                   (str(e.originator_id), e.reverses_seq))

    # -- querying (each first catches up, so a caller reads its own writes)

    def candidates(self, rule: dict[str, Any], default_since: date) -> list[Candidate]:
        """Live (not merged-away) households the rule's criteria select, before includes/excludes."""
        self.catch_up()
        where, params = ["h.merged_into IS NULL"], []
        period = _period(rule)
        since = "NULL"
        if period:
            where.append("h.id IN (SELECT owner_id FROM episode WHERE last_day >= ? AND starts_on <= ?)")
            params += [period[0], period[1]]
            since = ("(SELECT MIN(starts_on) FROM episode e WHERE e.owner_id = h.id "
                     "AND e.last_day >= ? AND e.starts_on <= ?)")
        for column, values in (("h.commune_code", rule.get("commune_codes")),
                               ("h.village_key", [village_key(v) for v in rule.get("villages") or []]),
                               ("h.poverty_status", rule.get("poverty_statuses"))):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params += list(values)
        if rule.get("vulnerable"):
            where.append("(" + " OR ".join(f"h.{flag} > 0" for flag in rule["vulnerable"] if flag in FLAGS) + ")")
        sql = f"SELECT h.*, {since} FROM household h WHERE {' AND '.join(where)} ORDER BY h.id"
        rows = self.reader().execute(sql, ([*period] if period else []) + params).fetchall()
        return [_candidate(row, default_since) for row in rows]

    def households(self, ids: list[UUID], default_since: date) -> dict[UUID, Candidate | None]:
        """Each id's live survivor (itself when not merged), or None if relief never heard of it."""
        self.catch_up()
        found: dict[UUID, Candidate | None] = {}
        db = self.reader()
        for household_id in ids:
            row = db.execute("SELECT s.*, (SELECT MIN(starts_on) FROM episode e WHERE e.owner_id = s.id) "
                             "FROM household h JOIN household s ON s.id = h.survivor_id WHERE h.id=?",
                             (str(household_id),)).fetchone()
            found[household_id] = _candidate(row, default_since) if row else None
        return found

    def entitled(self, round_id: UUID) -> set[UUID]:
        """Households (as their live survivors) holding a round's package, cancelled ones included:
        an entitlement id can be issued once only."""
        self.catch_up()
        rows = self.reader().execute(
            "SELECT DISTINCT COALESCE(h.survivor_id, en.household_id) FROM entitlement en "
            "LEFT JOIN household h ON h.id = en.household_id "
            "WHERE en.round_id=? AND en.earmarked_donation_id IS NULL", (str(round_id),))
        return {UUID(row[0]) for row in rows}

    def rounds(self, campaign_id: UUID | None = None) -> list[dict]:
        self.catch_up()
        sql, params = "SELECT id, campaign_id, name, planned_on, status, created_by FROM round", []
        if campaign_id:
            sql, params = sql + " WHERE campaign_id=?", [str(campaign_id)]
        rows = self.reader().execute(sql + " ORDER BY planned_on DESC, id", params)
        names = ("id", "campaign_id", "name", "planned_on", "status", "created_by")
        return [dict(zip(names, row)) for row in rows]

    def entitlements(self, round_id: UUID, commune_code: str | None = None, village: str | None = None,
                     status: str | None = None, limit: int = 100, offset: int = 0) -> tuple[int, list[dict]]:
        self.catch_up()
        where, params = ["round_id=?"], [str(round_id)]
        for column, value in (("commune_code", commune_code), ("village_key", village and village_key(village)),
                              ("status", status)):
            if value:
                where.append(f"{column}=?")
                params.append(value)
        db = self.reader()
        clause = " AND ".join(where)
        total = db.execute(f"SELECT COUNT(*) FROM entitlement WHERE {clause}", params).fetchone()[0]
        rows = db.execute(f"SELECT id, household_id, commune_code, village, status, lines, eligible_since, "
                          f"issued_on, earmarked_donation_id, entry_seq, delivered_at, volunteer_id, cancel_reason "
                          f"FROM entitlement WHERE {clause} ORDER BY commune_code, village_key, issued_on, id "
                          f"LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        names = ("id", "household_id", "commune_code", "village", "status", "lines", "eligible_since", "issued_on",
                 "earmarked_donation_id", "entry_seq", "delivered_at", "volunteer_id", "cancel_reason")
        return total, [{**dict(zip(names, row)), "lines": json.loads(row[5])} for row in rows]


def _flags(vulnerability: dict[str, int]) -> list[int]:
    return [int(vulnerability.get(flag, 0)) for flag in FLAGS]


def _period(rule: dict[str, Any]) -> tuple[str, str] | None:
    if rule.get("quarantine_on"):
        return str(rule["quarantine_on"]), str(rule["quarantine_on"])
    if rule.get("quarantine_from"):
        return str(rule["quarantine_from"]), str(rule.get("quarantine_to") or "9999-12-31")
    return None


def _candidate(row: tuple, default_since: date) -> Candidate:
    since = row[13]
    return Candidate(household_id=UUID(row[0]), commune_code=row[1], village=row[2], member_count=row[4],
                     poverty_status=row[5], vulnerability=dict(zip(FLAGS, row[6:11])),
                     eligible_since=date.fromisoformat(since) if since else default_since)
