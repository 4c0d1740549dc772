"""quipu_client.webhooks: the receiver's check of a signed delivery (Standard Webhooks)."""

from __future__ import annotations

import pytest

from quipu_client.webhooks import WebhookVerificationError, sign, verify_webhook, webhook_headers

# The published Standard Webhooks test vector (the reference libraries' tests use it): a
# signature computed by the reference implementation, so ours interoperates with theirs.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
VECTOR_HEADERS = {
    "webhook-id": VECTOR_ID,
    "webhook-timestamp": str(VECTOR_TIMESTAMP),
    "webhook-signature": VECTOR_SIGNATURE,
}


def test_sign_reproduces_the_reference_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    assert sign(VECTOR_SECRET.removeprefix("whsec_"), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY.encode()) == (
        VECTOR_SIGNATURE
    )


def test_the_reference_vector_verifies() -> None:
    verify_webhook(VECTOR_HEADERS, VECTOR_BODY, VECTOR_SECRET, now=VECTOR_TIMESTAMP + 10)
    # Header names in any case (HTTP servers differ), and one of several signatures.
    upper = {k.title(): v for k, v in VECTOR_HEADERS.items()}
    upper["Webhook-Signature"] = "v1,bm9wZQ== " + VECTOR_SIGNATURE
    verify_webhook(upper, VECTOR_BODY.encode(), VECTOR_SECRET, now=VECTOR_TIMESTAMP)


@pytest.mark.parametrize(
    ("headers", "body", "secret", "why"),
    [
        (VECTOR_HEADERS, '{"test": 2432232315}', VECTOR_SECRET, "a changed body"),
        (VECTOR_HEADERS, VECTOR_BODY, "whsec_" + "A" * 32, "another secret"),
        ({**VECTOR_HEADERS, "webhook-id": "msg_other"}, VECTOR_BODY, VECTOR_SECRET, "another id"),
        ({**VECTOR_HEADERS, "webhook-signature": "v2," + VECTOR_SIGNATURE[3:]}, VECTOR_BODY, VECTOR_SECRET, "v2"),
        ({k: v for k, v in VECTOR_HEADERS.items() if k != "webhook-id"}, VECTOR_BODY, VECTOR_SECRET, "no id"),
        ({**VECTOR_HEADERS, "webhook-timestamp": "soon"}, VECTOR_BODY, VECTOR_SECRET, "a bad timestamp"),
    ],
)
def test_a_tampered_delivery_is_refused(headers: dict[str, str], body: str, secret: str, why: str) -> None:
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body, secret, now=VECTOR_TIMESTAMP)


def test_an_old_or_future_delivery_is_refused_as_a_replay() -> None:
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(VECTOR_HEADERS, VECTOR_BODY, VECTOR_SECRET, now=VECTOR_TIMESTAMP + 301)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(VECTOR_HEADERS, VECTOR_BODY, VECTOR_SECRET, now=VECTOR_TIMESTAMP - 301)
    verify_webhook(VECTOR_HEADERS, VECTOR_BODY, VECTOR_SECRET, tolerance=10**9)


def test_headers_made_by_the_sender_verify() -> None:
    body = b'{"type":"task.scheduled"}'
    headers = webhook_headers(VECTOR_SECRET, "msg_1", body)
    verify_webhook(headers, body, VECTOR_SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body + b" ", VECTOR_SECRET)
