"""Transfers between committees, listed per campaign: a local SQLite read model of relief's
own Transfer events (sent and received), so each side sees what it sent and what is coming.
Rebuildable: delete `transfers.sqlite` and it is replayed from notification 1."""

import json
import sqlite3
from uuid import UUID

from eventsourcing.persistence import Notification

from services.common.projection import LocalProjection, read_model

TRANSFER = "services.relief.stock:Transfer."

SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, from_campaign_id TEXT NOT NULL, to_campaign_id TEXT NOT NULL,
    lines TEXT NOT NULL, note TEXT NOT NULL, document_ref TEXT NOT NULL,
    sent_on TEXT NOT NULL, sent_at TEXT NOT NULL, sent_by TEXT NOT NULL,
    received_on TEXT, received_at TEXT, received_by TEXT);
CREATE INDEX IF NOT EXISTS transfers_from ON transfers (from_campaign_id, seq);
CREATE INDEX IF NOT EXISTS transfers_to ON transfers (to_campaign_id, seq);
"""
COLUMNS = ("transfer_id", "seq", "from_campaign_id", "to_campaign_id", "lines", "note", "document_ref",
           "sent_on", "sent_at", "sent_by", "received_on", "received_at", "received_by")



class TransferModel(LocalProjection):
    schema = SCHEMA
    schema_version = 1

    def apply(self, db: sqlite3.Connection, notifications: list[Notification]) -> None:
        for notification in notifications:
            if not notification.topic.startswith(TRANSFER):
                continue
            e = self.app.mapper.to_domain_event(notification)
            name = notification.topic[len(TRANSFER):]
            if name == "Sent":
                lines = [{**line, "expiry": line["expiry"].isoformat() if line.get("expiry") else None}
                         for line in e.lines]
                db.execute("INSERT OR IGNORE INTO transfers VALUES (?,?,?,?,?,?,?,?,?,?,NULL,NULL,NULL)",
                           (str(e.originator_id), notification.id, str(e.from_campaign_id), str(e.to_campaign_id),
                            json.dumps(lines), e.note, e.document_ref, e.sent_on.isoformat(),
                            e.timestamp.isoformat(), e.actor))
            elif name == "Received":
                db.execute("UPDATE transfers SET received_on=?, received_at=?, received_by=? WHERE id=?",
                           (e.received_on.isoformat(), e.timestamp.isoformat(), e.actor, str(e.originator_id)))

    def of_campaign(self, campaign_id: UUID) -> list[dict]:
        """Transfers sent from or to the campaign, newest first (caught up: reads its own writes)."""
        self.catch_up()
        rows = self.reader().execute(
            "SELECT * FROM transfers WHERE from_campaign_id=?1 UNION "
            "SELECT * FROM transfers WHERE to_campaign_id=?1 ORDER BY seq DESC", (str(campaign_id),)).fetchall()
        here = str(campaign_id)
        found = []
        for row in rows:
            view = dict(zip(COLUMNS, row))
            view["lines"] = json.loads(view["lines"])
            view["direction"] = "out" if view["from_campaign_id"] == here else "in"
            view["status"] = "pending" if view["received_on"] is None else "received"
            del view["seq"]
            found.append(view)
        return found


class TransferList:
    """Mixed into Relief: the read model, opened on first use, closed with the application."""

    @property
    def transfer_model(self) -> TransferModel:
        return read_model(self, TransferModel, "transfers.sqlite")

    def transfers(self, campaign_id: UUID) -> list[dict]:
        return self.transfer_model.of_campaign(campaign_id)


async def follow_transfers(app: TransferList) -> None:
    """Background loop (ServiceSpec.background): keep the transfers read model current."""
    await app.transfer_model.follow()
