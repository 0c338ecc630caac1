"""The outbox: the default provider when no credentials are configured.

Nothing leaves the machine. The activity has already written the row (communications,
lockout_requests, placements) in PostgreSQL; the outbox adds one readable log line and appends the
rendered message to `<data_dir>/outbox.log`, so a demo operator can `tail -f` it (and a print or
field team could work from it). Letters always go here: there is no postal API configured.
"""
from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from activities.providers.base import (CommandStatus, HandOffAnswer, PlacementResult, PostalResult, RenderedMessage,
                                       SendResult)
from schemas.actions import LockoutCommand, OutboundMessage, PlacementNotice, PlacementRecall, PlacementRecord
from schemas.handoffs import CreditBureauReport, CreditHoldRequest, RecoveryRequest, RegisteredLetter

log = logging.getLogger("arrears.outbox")


def _short_id(prefix: str, key: str) -> str:
    # Deterministic: the same idempotency key always maps to the same outbox id.
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


# A block's headline: "[stamp] KIND ... key=<idempotency key>". (KIND, key) is its business key.
_HEADLINE = re.compile(r"^\[[^\]]*\] (\S+) .* key=(\S+)$")


class OutboxLog:
    """Appends human-readable blocks to one file, exactly once per business key.

    The file is what a print shop or field team works from, so a letter must never appear twice,
    even when a worker dies after appending it and before its activity commits (the retry sends
    again). Each append takes an exclusive file lock, first reads whatever was appended since it
    last looked (by this or any other worker process) to know every key already in the file, and
    skips a block whose key is there. A block is one write() of the whole text, so a killed
    process leaves it whole or absent.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()
        self._seen: set[tuple[str, str]] = set()
        self._offset = 0

    async def append(self, headline: str, text: str = "", *, log_line: str | None = None) -> bool:
        """Append a block; False when a block with the same business key is already in the file.
        The worker log never carries the address or the name (personal data lives in the outbox only)."""
        log.info("%s", log_line or headline)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        block = f"[{stamp}] {headline}\n"
        if text:
            block += "".join(f"    {line}\n" for line in text.rstrip().splitlines()) + "\n"
        found = _HEADLINE.match(block.split("\n", 1)[0])
        key = (found[1], found[2]) if found else None
        async with self._lock:
            return await asyncio.to_thread(self._write, block, key)

    def _write(self, block: str, key: tuple[str, str] | None) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                self._catch_up(fh)
                if key is not None and key in self._seen:
                    log.info("outbox: %s %s is already in %s; not written again", *key, self.path)
                    return False
                fh.write(block.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
                self._offset = fh.tell()
                if key is not None:
                    self._seen.add(key)
                return True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _catch_up(self, fh) -> None:
        end = fh.seek(0, os.SEEK_END)
        if end < self._offset:          # truncated or rotated by an operator: read it all again
            self._offset, self._seen = 0, set()
        fh.seek(self._offset)
        data = fh.read(end - self._offset)
        complete = data.rfind(b"\n") + 1
        for line in data[:complete].decode("utf-8", "replace").splitlines():
            if found := _HEADLINE.match(line):
                self._seen.add((found[1], found[2]))
        self._offset += complete
        fh.seek(0, os.SEEK_END)


def _plain(html_text: str) -> str:
    """Rough HTML → text, only for the operator's log."""
    text = re.sub(r"<(br|/p|/h\d|/li)\s*/?>", "\n", html_text, flags=re.I)
    text = re.sub(r"<[^>]+>", "", text)

    return re.sub(r"\n{3,}", "\n\n", html.unescape(text)).strip()


class OutboxMessages:
    """MessageProvider for any channel: the message waits in the outbox (row + log)."""

    name = "outbox"

    def __init__(self, outbox: OutboxLog, channel: str) -> None:
        self.outbox = outbox
        self.channel = channel

    async def send(self, message: OutboundMessage, content: RenderedMessage) -> SendResult:
        headline = (f"{self.channel.upper()} to {message.recipient} {content.address} "
                    f"account={message.account_id} template={message.template}/{message.language} "
                    f"step={message.step_id} key={message.idempotency_key}")
        text = content.body if self.channel != "email" else _plain(content.body)
        if content.subject:
            text = f"Subject: {content.subject}\n\n{text}"
        await self.outbox.append(headline, text, log_line=headline.replace(f" {content.address} ", " "))
        return SendResult(self.name, _short_id("outbox", message.idempotency_key), "queued")

    async def find_sent(self, message: OutboundMessage, content: RenderedMessage,
                        since: datetime) -> SendResult | None:
        # Sending again is safe: the log keeps one block per key (OutboxLog), and the row is ours.
        return None

    async def aclose(self) -> None:
        return None


class OutboxTelematics:
    """TelematicsProvider for offline use: the command is written to the outbox, and the simulated
    device confirms it `confirm_after` seconds later, as a real one confirms asynchronously. The
    submission instant travels in the request id, so a restarted worker still confirms on time.
    `confirm_after=None` never confirms (a person carries the command out)."""

    name = "outbox"

    def __init__(self, outbox: OutboxLog, confirm_after: float | None = 5.0) -> None:
        self.outbox = outbox
        self.confirm_after = confirm_after
        self.confirms = confirm_after is not None

    async def submit(self, command: LockoutCommand) -> CommandStatus:
        submitted_ms = int(time.time() * 1000)
        request_id = f"{_short_id('outbox-cmd', command.idempotency_key)}-{submitted_ms}"
        await self.outbox.append(
            f"TELEMATICS {command.command.upper()} asset={command.asset_id} device={command.device_id} "
            f"account={command.account_id} emergency={command.emergency} request={request_id} "
            f"key={command.idempotency_key}",
            f"Reason: {command.reason}")
        return await self.status(request_id)

    async def status(self, request_id: str) -> CommandStatus:
        if self.confirm_after is not None:
            try:
                submitted = int(request_id.rsplit("-", 1)[1]) / 1000
            except (IndexError, ValueError):
                submitted = 0.0
            if time.time() >= submitted + self.confirm_after:
                return CommandStatus(request_id, "confirmed", "the simulated device confirmed")
        return CommandStatus(request_id, "accepted", "queued in the outbox; awaiting the device")

    async def aclose(self) -> None:
        return None


class OutboxPlacement:
    """PlacementProvider that writes the hand-off to the outbox for a person to forward."""

    name = "outbox"

    def __init__(self, outbox: OutboxLog) -> None:
        self.outbox = outbox

    async def place(self, record: PlacementRecord, evidence: dict | None = None) -> PlacementResult:
        reference = _short_id("outbox-plc", record.idempotency_key)
        text = record.model_dump_json(indent=2)
        bundle = ""
        if evidence is not None:
            # The person forwarding the referral sends the bundle with it (its `location`: the
            # ingress's download route, or the file on the worker's disk).
            bundle = f"evidence={evidence.get('sha256') or evidence.get('status')} "
            text += "\nEvidence bundle: " + json.dumps(evidence, ensure_ascii=False, indent=2)
        await self.outbox.append(
            f"PLACEMENT to {record.target} account={record.account_id} reference={reference} "
            f"outstanding={record.total_outstanding} {record.currency} dpd={record.days_past_due} "
            f"{bundle}key={record.idempotency_key}", text)
        return PlacementResult(reference, "accepted")

    async def recall(self, recall: PlacementRecall, reference: str) -> PlacementResult:
        await self.outbox.append(
            f"RECALL from {recall.target} account={recall.account_id} reference={reference} "
            f"key={recall.idempotency_key}", f"Reason: {recall.reason}")
        return PlacementResult(reference, "recalled")

    async def notify(self, notice: PlacementNotice, reference: str | None) -> PlacementResult:
        await self.outbox.append(
            f"PARTNER NOTICE to {notice.target} account={notice.account_id} reference={reference} "
            f"event={notice.kind} key={notice.idempotency_key}", notice.summary)
        return PlacementResult(reference or "", "acknowledged")

    async def aclose(self) -> None:
        return None


# ---- the playbooks' hand-offs: written for a person (print room, credit controller, recovery
# desk) to carry out. References are derived from the business key, so a retry gets the same one.

class OutboxPostal:
    """PostalProvider: the letter waits in the outbox for the print room, who posts it by registered
    mail and later records the receipt card through /webhooks/postal (by letter id or this ref)."""

    name = "outbox"

    def __init__(self, outbox: OutboxLog) -> None:
        self.outbox = outbox

    async def send(self, letter: RegisteredLetter, content: RenderedMessage) -> PostalResult:
        tracking_ref = _short_id("outbox-rl", letter.letter_id)
        address = " / ".join([*letter.address.lines, letter.address.postcode or "", letter.address.country])
        headline = (f"REGISTERED_LETTER {letter.service} to {letter.recipient} account={letter.account_id} "
                    f"template={letter.template}/{letter.language} step={letter.step_id} "
                    f"tracking={tracking_ref} key={letter.letter_id}")
        text = f"To: {letter.to_name}\nAddress: {address}\n\n{content.body}"
        await self.outbox.append(headline, text)
        return PostalResult(tracking_ref, "queued in the outbox for the print room")

    async def aclose(self) -> None:
        return None


class OutboxErp:
    name = "outbox"

    def __init__(self, outbox: OutboxLog) -> None:
        self.outbox = outbox

    async def credit_hold(self, request: CreditHoldRequest, action: str) -> HandOffAnswer:
        reference = _short_id(f"outbox-{action}", request.idempotency_key)
        await self.outbox.append(
            f"CREDIT_{action.upper()} account={request.account_id} customer={request.customer_ref or '-'} "
            f"overdue={request.amount_overdue} {request.currency} dpd={request.days_past_due} "
            f"hold={request.hold_reference or '-'} reference={reference} key={request.idempotency_key}",
            f"Reason: {request.reason}")
        return HandOffAnswer(reference, "queued in the outbox for credit control")

    async def aclose(self) -> None:
        return None


class OutboxCreditBureau:
    name = "outbox"

    def __init__(self, outbox: OutboxLog) -> None:
        self.outbox = outbox

    async def report(self, report: CreditBureauReport) -> HandOffAnswer:
        reference = _short_id("outbox-cbr", report.idempotency_key)
        await self.outbox.append(
            f"CREDIT_REPORT {report.kind} account={report.account_id} jurisdiction={report.jurisdiction} "
            f"overdue={report.amount_overdue} {report.currency} dpd={report.days_past_due} "
            f"reference={reference} key={report.idempotency_key}",
            report.model_dump_json(indent=2))
        return HandOffAnswer(reference, "queued in the outbox for the bureau submission")

    async def aclose(self) -> None:
        return None


class OutboxRecovery:
    name = "outbox"

    def __init__(self, outbox: OutboxLog) -> None:
        self.outbox = outbox

    async def request(self, request: RecoveryRequest) -> HandOffAnswer:
        reference = _short_id("outbox-rcv", request.idempotency_key)
        await self.outbox.append(
            f"RECOVERY {request.kind} account={request.account_id} asset={request.asset_id} "
            f"storage_months={request.storage_months} reference={reference} key={request.idempotency_key}",
            request.model_dump_json(indent=2))
        return HandOffAnswer(reference, "queued in the outbox for the recovery desk")

    async def aclose(self) -> None:
        return None
