"""Who may edit a team's settings: emails, ``*@domain`` and the Space's managers, the last asked of the loopback
Chat API (``spaces.members.get`` as the app) and remembered briefly."""

import pytest

from bot.config import ChatSettings
from bot.settings_access import ChatMemberships, SpaceRoles, check_access, describe_editors
from tests.fakes.chat import FakeChat, service_account_file

SPACE = "spaces/TEAM"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def roles_for(fake, tmp_path, clock=None, **options):
    service_account_file(fake, tmp_path)
    chat = ChatSettings(verify=False, api_endpoint=fake.url, service_account_file="service-account.json")
    return SpaceRoles(ChatMemberships(chat, tmp_path), clock=clock or Clock(), **options)


@pytest.mark.parametrize(
    ("editors", "email", "allowed"),
    [
        (["lead@example.com"], "Lead@Example.com", True),
        (["lead@example.com"], "other@example.com", False),
        (["*@example.com"], "anyone@example.com", True),
        (["*@example.com"], "someone@notexample.com", False),
        (["*@example.com"], "someone@sub.example.com", False),
        (["*@example.com"], None, False),
        ([], "lead@example.com", False),
    ],
)
def test_emails_and_domains_decide_without_asking_chat(fake, tmp_path, editors, email, allowed):
    access = check_access(editors, email, "users/1", SPACE, roles_for(fake, tmp_path))
    assert access.allowed is allowed
    assert fake.member_requests == []


def test_a_space_manager_may_edit_and_a_member_may_not(fake, tmp_path):
    fake.member(SPACE, "users/1", "ROLE_MANAGER")
    fake.member(SPACE, "users/2", "ROLE_MEMBER")
    roles = roles_for(fake, tmp_path)
    assert check_access(["space-managers"], "a@example.com", "users/1", SPACE, roles).allowed
    refused = check_access(["space-managers"], "b@example.com", "users/2", SPACE, roles)
    assert not refused.allowed and not refused.unchecked
    assert refused.who_can == "the Space's managers"
    assert fake.member_requests == [(SPACE, "1"), (SPACE, "2")]
    assert fake.token_requests == 1  # one token for the app, reused


def test_someone_not_in_the_space_may_not_edit(fake, tmp_path):
    fake.member("spaces/OTHER", "users/3", "ROLE_MANAGER")
    access = check_access(["space-managers"], None, "users/3", SPACE, roles_for(fake, tmp_path))
    assert not access.allowed and not access.unchecked
    assert fake.member_requests == [(SPACE, "3")]


def test_an_email_entry_spares_the_chat_api(fake, tmp_path):
    fake.member(SPACE, "users/1", "ROLE_MEMBER")
    access = check_access(
        ["space-managers", "*@example.com"], "a@example.com", "users/1", SPACE, roles_for(fake, tmp_path)
    )
    assert access.allowed
    assert fake.member_requests == []


def test_a_role_is_remembered_for_a_minute_then_asked_again(fake, tmp_path):
    fake.member(SPACE, "users/1", "ROLE_MANAGER")
    clock = Clock()
    roles = roles_for(fake, tmp_path, clock)
    for _ in range(3):  # open, check, save
        assert check_access(["space-managers"], None, "users/1", SPACE, roles).allowed
    assert len(fake.member_requests) == 1
    fake.member(SPACE, "users/1", "ROLE_MEMBER")  # the manager steps down
    clock.now += 59.9
    assert check_access(["space-managers"], None, "users/1", SPACE, roles).allowed
    clock.now += 0.1
    assert not check_access(["space-managers"], None, "users/1", SPACE, roles).allowed
    assert len(fake.member_requests) == 2


def test_the_remembered_roles_are_bounded_oldest_first(fake, tmp_path):
    for user in ("1", "2", "3"):
        fake.member(SPACE, f"users/{user}", "ROLE_MANAGER")
    roles = roles_for(fake, tmp_path, max_entries=2)
    for user in ("1", "2", "1", "3", "1", "2"):
        assert check_access(["space-managers"], None, f"users/{user}", SPACE, roles).allowed
    # 1 and 2 asked; 1 used again (newest); 3 pushes out 2; 1 still known; 2 asked again
    assert [member for _, member in fake.member_requests] == ["1", "2", "3", "2"]


@pytest.mark.parametrize("status", [403, 500, 503])
def test_a_failed_lookup_refuses_this_time_and_is_not_remembered(fake, tmp_path, status):
    fake.member(SPACE, "users/1", "ROLE_MANAGER")
    fake.member_answers(status)
    roles = roles_for(fake, tmp_path)
    refused = check_access(["space-managers"], None, "users/1", SPACE, roles)
    assert not refused.allowed and refused.unchecked
    assert check_access(["space-managers"], None, "users/1", SPACE, roles).allowed
    assert len(fake.member_requests) == 2


def test_unusable_credentials_refuse_with_a_note(fake, tmp_path):
    chat = ChatSettings(verify=False, api_endpoint=fake.url, service_account_file="missing.json")
    access = check_access(["space-managers"], None, "users/1", SPACE, SpaceRoles(ChatMemberships(chat, tmp_path)))
    assert not access.allowed and access.unchecked
    assert fake.member_requests == []


def test_without_a_user_or_space_no_one_is_a_manager(fake, tmp_path):
    roles = roles_for(fake, tmp_path)
    assert not check_access(["space-managers"], None, None, SPACE, roles).allowed
    assert not check_access(["space-managers"], None, "users/1", None, roles).allowed
    assert fake.member_requests == []


def test_editors_in_words():
    assert describe_editors(["space-managers", "lead@example.com", "*@example.com"]) == (
        "the Space's managers, lead@example.com or anyone at @example.com"
    )
    assert describe_editors([]) == "no one here (the configuration names no editors)"
