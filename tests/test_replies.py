"""The size guard every synchronous reply passes, in both event formats."""

import pytest

from bot.cards import MAX_MESSAGE_BYTES, message_bytes, within_limits
from bot.chat.events import Format
from bot.chat.replies import Reply, wrap
from tests.chat_schema import validate_addon_response, validate_message

OVERSIZED = {
    "text": "😀" * 10_000 + "\ud800",
    "cardsV2": [{"cardId": "big", "card": {"sections": [{"widgets": [{"textParagraph": {"text": "y" * 40_000}}]}]}}],
}


def test_lone_surrogates_anywhere_in_a_reply_are_replaced():
    message = {"text": "a\udc00b", "cardsV2": [{"cardId": "c", "card": {"header": {"title": "\ud83d!"}}}]}
    assert within_limits(message) == {
        "text": "a\ufffdb",
        "cardsV2": [{"cardId": "c", "card": {"header": {"title": "\ufffd!"}}}],
    }


def test_a_reply_too_large_for_any_card_is_sent_as_its_text_alone_cut_to_fit(caplog):
    fitted = within_limits(OVERSIZED)
    assert set(fitted) == {"text"}
    assert fitted["text"].startswith("😀😀") and fitted["text"].endswith("…")
    assert message_bytes(fitted) <= MAX_MESSAGE_BYTES
    assert validate_message(fitted) == []
    assert "over Chat's limit" in caplog.text


def test_a_reply_of_exactly_the_limit_is_sent_whole_and_one_byte_more_as_its_text():
    message = {"text": "hello", "cardsV2": [{"cardId": "c", "card": {"header": {"title": "y" * 2000}}}]}
    size = message_bytes(message)
    assert within_limits(message, size) == message
    assert within_limits(message, size - 1) == {"text": "hello"}


@pytest.mark.parametrize("update", [False, True])
def test_wrap_guards_both_formats(update):
    classic = wrap(Reply(OVERSIZED, update=update), Format.CLASSIC)
    addon = wrap(Reply(OVERSIZED, update=update), Format.ADDON)
    assert validate_message(classic) == []
    assert validate_addon_response(addon) == []
    assert "cardsV2" not in classic


def test_a_valid_reply_within_limits_is_passed_on_as_it_is_not_copied():
    message = {"text": "fine", "cardsV2": [{"cardId": "c", "card": {"header": {"title": "😀"}}}]}
    assert within_limits(message) is message


def test_a_reply_too_large_and_without_text_says_so():
    assert within_limits({"cardsV2": OVERSIZED["cardsV2"]}) == {"text": "This answer is too long to show in Chat."}


@pytest.mark.parametrize(("letters", "kept"), [(100, "😀" * 100), (101, "😀" * 99 + "…")], ids=["fits", "one-over"])
def test_the_cut_text_keeps_as_many_letters_as_fit_at_twelve_bytes_each(letters, kept):
    limit = 100 + 100 * 12  # 100 bytes for the JSON around the text, then room for 100 letters at their largest
    fitted = within_limits({"text": "😀" * letters, "cardsV2": OVERSIZED["cardsV2"]}, limit)
    assert fitted == {"text": kept}
    assert message_bytes(fitted) <= limit


def test_at_a_limit_too_small_for_any_letter_the_text_is_the_ellipsis_alone():
    assert within_limits(OVERSIZED, 50) == {"text": "…"}
