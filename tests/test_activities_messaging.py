"""send_sms / send_email / place_call / send_letter: real SDKs against the fake servers, real
PostgreSQL; each message reaches the provider exactly once however often the activity runs."""
from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

import activities.messaging as messaging
from tests.fakes.fixtures import *  # noqa: F403
from tests.fakes.fixtures import message


async def _rows(pool, key):
    return await pool.fetch("SELECT * FROM communications WHERE idempotency_key = $1", key)


async def test_sms_is_sent_once_when_the_activity_runs_twice(wired, fakes, pool):
    msg = message("sms")
    first = await wired.messages.send_sms(msg)
    second = await wired.messages.send_sms(msg)

    assert first.status == "queued" and first.provider == "twilio"
    assert first.provider_message_id.startswith("SM")
    assert second.status == "duplicate" and second.provider_message_id == first.provider_message_id
    assert fakes.count("twilio", "POST", "Messages.json") == 1
    sent = fakes.messages[0]
    assert sent["to"] == "+8613800138000" and sent["from"] == "+15550001111"
    assert "CNY 12,500.00" in sent["body"] and "15 March 2025" in sent["body"]
    assert sent["status_callback"] == "https://arrears.example.com/webhooks/twilio/status"
    [row] = await _rows(pool, msg.idempotency_key)
    assert row["status"] == "sent" and row["provider_message_id"] == first.provider_message_id
    assert row["body"] == sent["body"]


async def test_crash_after_twilio_accepted_does_not_send_twice(wired, fakes, pool, monkeypatch):
    """The worker dies after Twilio accepted the SMS but before the row says so; the retry finds the
    message at Twilio instead of sending it again."""
    msg = message("sms")
    real_mark_sent = messaging._mark_sent

    async def crash(*args, **kwargs):
        raise ConnectionResetError("worker lost its database connection")

    monkeypatch.setattr(messaging, "_mark_sent", crash)
    with pytest.raises(ConnectionResetError):
        await wired.messages.send_sms(msg)
    [row] = await _rows(pool, msg.idempotency_key)
    assert row["status"] == "claimed"

    monkeypatch.setattr(messaging, "_mark_sent", real_mark_sent)
    retry = await wired.messages.send_sms(msg)

    assert fakes.count("twilio", "POST", "Messages.json") == 1
    assert retry.provider_message_id == fakes.messages[0]["sid"]
    assert retry.detail.startswith("recovered")
    [row] = await _rows(pool, msg.idempotency_key)
    assert row["status"] == "sent" and row["provider_message_id"] == fakes.messages[0]["sid"]


async def test_crash_after_sendgrid_accepted_is_recovered_by_custom_arg(wired, fakes, pool, monkeypatch):
    msg = message("email")

    async def crash(*args, **kwargs):
        raise ConnectionResetError("lost")

    real = messaging._mark_sent
    monkeypatch.setattr(messaging, "_mark_sent", crash)
    with pytest.raises(ConnectionResetError):
        await wired.messages.send_email(msg)
    monkeypatch.setattr(messaging, "_mark_sent", real)
    retry = await wired.messages.send_email(msg)

    assert fakes.count("sendgrid", "POST", "/v3/mail/send") == 1
    assert retry.provider_message_id.startswith(fakes.emails[0]["message_id"])


async def test_email_custom_args_carry_only_the_idempotency_key(wired, fakes, pool):
    msg = message("email", template="early_notice", variables={
        "debtor_name": "Wang Lei", "account_id": "A-1", "amount_due": "CNY 12,500.00",
        "due_date": "2025-03-15", "days_past_due": 5})
    receipt = await wired.messages.send_email(msg)

    [email] = fakes.emails
    payload = email["payload"]
    assert payload["custom_args"] == {"idempotency_key": msg.idempotency_key}
    assert payload["personalizations"][0]["to"][0]["email"] == "wang.lei@example.com"
    assert payload["subject"] == "Your instalment on account A-1 is overdue"
    assert payload["content"][0]["type"] == "text/html" and "5 days overdue" in payload["content"][0]["value"]
    assert receipt.provider == "sendgrid" and receipt.provider_message_id == email["message_id"]
    assert (await wired.messages.send_email(msg)).status == "duplicate"
    assert fakes.count("sendgrid", "POST", "/v3/mail/send") == 1


async def test_voice_call_says_the_rendered_text(wired, fakes, pool):
    msg = message("voice", template="due_call", language="zh", to_email=None)
    receipt = await wired.messages.place_call(msg)

    [call] = fakes.calls
    assert receipt.provider_message_id == call["sid"] and call["sid"].startswith("CA")
    assert call["twiml"].startswith("<?xml") and "<Say" in call["twiml"] and "cmn-CN" in call["twiml"]
    assert "CNY 12,500.00" in call["twiml"] and "2025年3月15日" in call["twiml"]
    await wired.messages.place_call(msg)
    assert fakes.count("twilio", "POST", "Calls.json") == 1


@pytest.mark.parametrize("mode", ["500", "429", "timeout"])
async def test_transient_provider_failures_are_retryable_and_then_send_once(wired, fakes, pool, mode):
    msg = message("sms")
    fakes.fail_next("twilio", mode)
    with pytest.raises(ApplicationError) as failure:
        await wired.messages.send_sms(msg)
    assert failure.value.non_retryable is False

    receipt = await wired.messages.send_sms(msg)
    assert receipt.status == "queued"
    assert len(fakes.messages) == 1  # the failed request created nothing; the retry created one


async def test_invalid_number_is_non_retryable_invalid_recipient(wired, fakes, pool):
    msg = message("sms", to_phone="+1555")
    fakes.fail_next("twilio", "invalid_number")
    with pytest.raises(ApplicationError) as failure:
        await wired.messages.send_sms(msg)
    assert failure.value.non_retryable is True and failure.value.type == "InvalidRecipient"
    [row] = await _rows(pool, msg.idempotency_key)
    assert row["status"] == "failed"


async def test_unsubscribed_recipient_is_non_retryable(wired, fakes, pool):
    fakes.fail_next("twilio", "unsubscribed")
    with pytest.raises(ApplicationError) as failure:
        await wired.messages.send_sms(message("sms"))
    assert failure.value.type == "Unsubscribed" and failure.value.non_retryable


async def test_sendgrid_bad_address_is_invalid_recipient(wired, fakes, pool):
    fakes.fail_next("sendgrid", "invalid_number")
    with pytest.raises(ApplicationError) as failure:
        await wired.messages.send_email(message("email"))
    assert failure.value.type == "InvalidRecipient" and failure.value.non_retryable


async def test_missing_phone_is_refused_before_any_provider_call(wired, fakes, pool):
    with pytest.raises(ApplicationError) as failure:
        await wired.messages.send_sms(message("sms", to_phone=None))
    assert failure.value.type == "InvalidRecipient"
    assert fakes.requests == []


async def test_missing_template_variable_is_a_non_retryable_template_error(wired, fakes, pool):
    msg = message("sms", template="lockout_warning")  # needs lockout_date, not given
    with pytest.raises(ApplicationError) as failure:
        await wired.messages.send_sms(msg)
    assert failure.value.type == "TemplateError" and failure.value.non_retryable
    assert "lockout_date" in str(failure.value)
    assert fakes.requests == []


@pytest.mark.parametrize("wired", ["outbox"], indirect=True)
async def test_outbox_is_the_default_and_writes_row_and_log(wired, pool, outbox_settings):
    msg = message("sms", language="zh")
    receipt = await wired.messages.send_sms(msg)
    letter = message("letter", template="formal_letter", language="zh", account_id=msg.account_id,
                     idempotency_key=f"{msg.account_id}:dpd30-letter:letter",
                     variables={**msg.variables, "days_past_due": 30})
    await wired.messages.send_letter(letter)
    again = await wired.messages.send_sms(msg)

    assert receipt.provider == "outbox" and receipt.status == "queued"
    assert again.status == "duplicate"
    [row] = await _rows(pool, msg.idempotency_key)
    assert row["provider"] == "outbox" and row["status"] == "sent" and row["language"] == "zh"
    log = (outbox_settings.data_dir / "outbox.log").read_text(encoding="utf-8")
    assert log.count(msg.idempotency_key) == 1
    assert "2025年3月15日" in log and "逾期还款正式通知书" in log
    assert f"LETTER to debtor Wang Lei account={msg.account_id} template=formal_letter/zh" in log
