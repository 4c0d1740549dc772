"""The explorer's forensic pages in a real Chromium against a real Quipu and worker."""

from __future__ import annotations

from playwright.sync_api import Page


def test_the_key_typed_into_the_api_key_field_signs_in(signed_in_page: Page) -> None:
    assert signed_in_page.get_by_test_id("signed-in-as").is_visible()
