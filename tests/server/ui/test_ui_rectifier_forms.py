"""The rectification loop with roles (issue 18) in process, no browser: the assign form's
candidates and deadline, the rectifier's read-only event page and evidence form, "my
hazards", acceptance by another user, an admin's verdict correction, refusals in the
page's language."""

from __future__ import annotations

import io
import itertools
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr
from ui_media_files import make_event_media
from ui_seed import DAY, PASSWORD, event_body, seed_accounts, seed_events

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_MINUTES = itertools.count(1)


def add_people(app: Any) -> dict[str, int]:
    """A rectifier on each site and an admin, besides ui_seed's users; their ids."""
    from sitewatch.server.db.models import Role, User
    from sitewatch.server.services import admin

    ids = {}
    with app.state.db.session() as db:
        for username, role, sites, name in (
            ("fix-a", Role.RECTIFIER, ["site-a"], "赵师傅"),
            ("fix-a2", Role.RECTIFIER, ["site-a"], None),
            ("fix-b", Role.RECTIFIER, ["site-b"], "钱师傅"),
            ("boss", Role.ADMIN, [], "总管理员"),
        ):
            user = admin.create_user(
                db,
                actor=None,
                username=username,
                password=PASSWORD,
                role=role,
                site_ids=sites,
                display_name=name,
            )
            ids[username] = user.id
        ids.update({u.username: u.id for u in db.query(User)})
    return ids


def png_photo(colour: tuple[int, int, int] = (40, 160, 60)) -> bytes:
    """A real PNG (what an Android phone sends), made here."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-rectifier-forms")
    settings = Settings(
        data_dir=root,
        media_dir=root / "media",
        session_secret=SecretStr("rect-forms-" + uuid.uuid4().hex),
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media", clip_frames=20)
    tokens = seed_accounts(app)
    people = add_people(app)
    with TestClient(app, base_url="http://testserver") as client:
        events = seed_events(client, tokens, media)
        yield {"client": client, "app": app, "tokens": tokens, "people": people, **events}


def new_event(ui: dict[str, Any], site: str = "site-a") -> uuid.UUID:
    started = DAY + timedelta(minutes=next(_MINUTES))
    body = event_body(site, "cam-gate", "no_helmet", started)
    answer = ui["client"].put(
        f"/api/v1/events/{body['event_id']}",
        json=body,
        headers={"Authorization": f"Bearer {ui['tokens'][site]}"},
    )
    assert answer.status_code == 201, answer.text
    return uuid.UUID(body["event_id"])


def login(client: TestClient, username: str, lang: str = "zh") -> str:
    """Log in through the form; the session's CSRF token."""
    client.cookies.clear()
    if lang != "zh":
        client.cookies.set("sitewatch_lang", lang)
    token = CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/ui/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token, "next": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return CSRF.search(client.get("/ui/events").text).group(1)  # type: ignore[union-attr]


def status_of(client: TestClient, event_id: uuid.UUID) -> str:
    page = client.get(f"/ui/events/{event_id}").text
    return re.search(r'id="event-status">([^<]+)<', page).group(1)  # type: ignore[union-attr]


def future_day(days: int = 3) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def confirm_and_assign(ui: dict[str, Any], event_id: uuid.UUID, to: str, days: int = 3) -> None:
    client = ui["client"]
    csrf = login(client, "rev-a")
    base = f"/ui/events/{event_id}"
    client.post(f"{base}/verdict", data={"verdict": "confirm", "csrf_token": csrf})
    answer = client.post(
        f"{base}/rectification",
        data={
            "responsible_user": str(ui["people"][to]),
            "deadline": future_day(days),
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def test_assign_form_offers_the_sites_people_rectifiers_first(ui: dict[str, Any]) -> None:
    client = ui["client"]
    event_id = new_event(ui)
    csrf = login(client, "rev-a")
    client.post(f"/ui/events/{event_id}/verdict", data={"verdict": "confirm", "csrf_token": csrf})
    page = client.get(f"/ui/events/{event_id}").text
    select = re.search(r'<select name="responsible_user".*?</select>', page, re.S)
    assert select is not None, page
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]+)</option>', select.group(0))
    assert [text for _, text in options] == [
        "赵师傅（整改责任人）",
        "fix-a2（整改责任人）",
        "lead-a（审核员）",
        "rev-a（审核员）",
        "总管理员（管理员）",
        "其他（无账号）",
    ]  # no viewer, nobody of site B
    assert options[0][0] == str(ui["people"]["fix-a"]) and options[-1][0] == ""
    today = datetime.now(UTC).astimezone().date()
    day_min = re.search(r'name="deadline" required min="(\d{4}-\d\d-\d\d)"', page)
    assert day_min is not None
    assert abs((datetime.fromisoformat(day_min.group(1)).date() - today).days) <= 1
    client.cookies.set("sitewatch_lang", "en")
    english = client.get(f"/ui/events/{event_id}").text
    assert "赵师傅 (Rectifier)" in english and "Other (no account)" in english


def test_assign_to_a_user_a_name_or_nobody_and_never_in_the_past(ui: dict[str, Any]) -> None:
    client = ui["client"]
    event_id = new_event(ui)
    csrf = login(client, "rev-a")
    base = f"/ui/events/{event_id}"
    client.post(f"{base}/verdict", data={"verdict": "confirm", "csrf_token": csrf})
    yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    fix_a = str(ui["people"]["fix-a"])
    past = client.post(
        f"{base}/rectification",
        data={"responsible_user": fix_a, "deadline": yesterday, "csrf_token": csrf},
    )
    assert past.status_code == 422
    assert "整改期限不能早于今天" in past.text and "in the past" not in past.text
    nobody = client.post(
        f"{base}/rectification",
        data={
            "responsible_user": "",
            "assignee": " ",
            "deadline": future_day(),
            "csrf_token": csrf,
        },
    )
    assert nobody.status_code == 422 and "请选择责任人" in nobody.text
    site_b = client.post(
        f"{base}/rectification",
        data={
            "responsible_user": str(ui["people"]["fix-b"]),
            "deadline": future_day(),
            "csrf_token": csrf,
        },
    )
    assert site_b.status_code == 422 and "所选责任人不可用" in site_b.text
    assert status_of(client, event_id) == "确认隐患"
    client.cookies.set("sitewatch_lang", "en")
    english = client.post(
        f"{base}/rectification",
        data={"responsible_user": fix_a, "deadline": yesterday, "csrf_token": csrf},
    )
    assert english.status_code == 422 and "The deadline cannot be before today" in english.text
    client.cookies.delete("sitewatch_lang")
    # the chosen user wins over a typed name; the role is shown in words
    done = client.post(
        f"{base}/rectification",
        data={"responsible_user": fix_a, "assignee": "无关", "deadline": future_day(),
              "csrf_token": csrf},
    )  # fmt: skip
    assert done.status_code == 200
    page = client.get(base).text
    assert 'id="rect-assignee">赵师傅<' in page
    assert 'id="rect-assignee-role">整改责任人<' in page
    # a name for someone without an account still works
    other = new_event(ui)
    client.post(f"/ui/events/{other}/verdict", data={"verdict": "confirm", "csrf_token": csrf})
    client.post(
        f"/ui/events/{other}/rectification",
        data={"responsible_user": "", "assignee": "外包李工", "deadline": future_day(),
              "csrf_token": csrf},
    )  # fmt: skip
    page = client.get(f"/ui/events/{other}").text
    assert 'id="rect-assignee">外包李工<' in page and "rect-assignee-role" not in page


def test_rectifier_reads_only_and_uploads_evidence_for_their_own(ui: dict[str, Any]) -> None:
    client = ui["client"]
    mine, theirs = new_event(ui), new_event(ui)
    confirm_and_assign(ui, mine, "fix-a")
    confirm_and_assign(ui, theirs, "fix-a2")
    pending = new_event(ui)
    csrf = login(client, "fix-a")
    page = client.get(f"/ui/events/{mine}").text
    assert 'id="evidence-form"' in page
    assert 'capture="environment"' in page and "image/png" in page and "image/heic" in page
    for absent in ("confirm-form", "dismiss-form", "assign-form", "review-form", "correct-form"):
        assert f'id="{absent}"' not in page
    other_page = client.get(f"/ui/events/{theirs}").text
    assert 'id="evidence-form"' not in other_page
    pending_page = client.get(f"/ui/events/{pending}").text
    assert 'id="confirm-form"' not in pending_page and pending_page.count("<form") == 1
    refused = client.post(
        f"/ui/events/{theirs}/evidence",
        data={"csrf_token": csrf},
        files={"photo": ("fix.png", png_photo(), "image/png")},
    )
    assert refused.status_code == 403 and "此整改未分配给您" in refused.text
    judged = client.post(
        f"/ui/events/{pending}/verdict", data={"verdict": "confirm", "csrf_token": csrf}
    )
    assert judged.status_code == 403
    uploaded = client.post(
        f"/ui/events/{mine}/evidence",
        data={"csrf_token": csrf, "note": "已整改"},
        files={"photo": ("fix.png", png_photo(), "image/png")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    photo = client.get(f"/ui/events/{mine}/media/evidence")
    assert photo.headers["content-type"] == "image/jpeg" and photo.content[:3] == b"\xff\xd8\xff"
    assert status_of(client, mine) == "待验收"
    accepted = client.post(
        f"/ui/events/{mine}/acceptance", data={"decision": "accept", "csrf_token": csrf}
    )
    assert accepted.status_code == 403
    assert status_of(client, mine) == "待验收"
    assert 'id="review-form"' not in client.get(f"/ui/events/{mine}").text


def test_my_hazards_lists_what_is_assigned_to_me_earliest_first(ui: dict[str, Any]) -> None:
    from sqlalchemy import select

    from sitewatch.server.db.models import Hazard

    client, app = ui["client"], ui["app"]
    late, soon, late_overdue = new_event(ui), new_event(ui), new_event(ui)
    confirm_and_assign(ui, late, "fix-a2", days=9)
    confirm_and_assign(ui, soon, "fix-a2", days=2)
    confirm_and_assign(ui, late_overdue, "fix-a2", days=5)
    with app.state.db.session() as db:
        hazard = db.scalar(select(Hazard).where(Hazard.event_id == late_overdue))
        assert hazard is not None
        hazard.deadline = datetime.now(UTC) - timedelta(days=1)
        db.commit()
    login(client, "fix-a2")
    page = client.get("/ui/my-hazards")
    assert page.status_code == 200
    assert 'href="/ui/my-hazards"' in page.text and "我的整改" in page.text
    cards = re.findall(
        r'<li class="card hazard-card( overdue)?" data-event-id="([^"]+)"', page.text
    )
    order = [card[1] for card in cards]
    assert order.index(str(late_overdue)) < order.index(str(soon)) < order.index(str(late))
    assert dict((eid, flag) for flag, eid in cards)[str(late_overdue)] == " overdue"
    assert 'id="mine-overdue">逾期 1<' in page.text
    assert f'href="/ui/events/{soon}"' in page.text and "整改中" in page.text
    login(client, "lead-a")  # a reviewer with nothing assigned
    empty = client.get("/ui/my-hazards").text
    assert 'id="mine-none"' in empty and "hazard-card" not in empty
    client.cookies.clear()
    assert client.get("/ui/my-hazards", follow_redirects=False).status_code == 303


def test_the_uploader_cannot_accept_their_own_evidence(ui: dict[str, Any]) -> None:
    from sitewatch.server.db.models import Site

    client, app = ui["client"], ui["app"]
    event_id = new_event(ui)
    confirm_and_assign(ui, event_id, "rev-a")
    csrf = login(client, "rev-a")
    base = f"/ui/events/{event_id}"
    client.post(
        f"{base}/evidence",
        data={"csrf_token": csrf},
        files={"photo": ("fix.png", png_photo(), "image/png")},
    )
    page = client.get(base).text
    assert 'id="accept-by-other">整改证据由您上传：须由其他用户验收。<' in page
    assert 'value="accept"' not in page and 'value="reject"' in page
    forced = client.post(f"{base}/acceptance", data={"decision": "accept", "csrf_token": csrf})
    assert forced.status_code == 403
    assert forced.headers["content-type"].startswith("text/html")
    assert "整改证据由您本人上传，须由其他用户验收" in forced.text
    assert "you uploaded" not in forced.text
    client.cookies.set("sitewatch_lang", "en")
    english = client.post(f"{base}/acceptance", data={"decision": "accept", "csrf_token": csrf})
    assert "You uploaded this evidence: another user must accept it" in english.text
    assert english.headers["content-type"].startswith("text/html")
    csrf = login(client, "lead-a")
    page = client.get(base).text
    assert 'value="accept"' in page and "accept-by-other" not in page
    client.post(f"{base}/acceptance", data={"decision": "accept", "csrf_token": csrf})
    assert status_of(client, event_id) == "已验收"
    # with the site's setting off, the uploader may accept
    with app.state.db.session() as db:
        site = db.get(Site, "site-a")
        assert site is not None
        site.accept_by_other = False
        db.commit()
    try:
        second = new_event(ui)
        confirm_and_assign(ui, second, "rev-a")
        csrf = login(client, "rev-a")
        client.post(
            f"/ui/events/{second}/evidence",
            data={"csrf_token": csrf},
            files={"photo": ("fix.png", png_photo(), "image/png")},
        )
        page = client.get(f"/ui/events/{second}").text
        assert 'value="accept"' in page and "accept-by-other" not in page
        client.post(
            f"/ui/events/{second}/acceptance", data={"decision": "accept", "csrf_token": csrf}
        )
        assert status_of(client, second) == "已验收"
    finally:
        with app.state.db.session() as db:
            site = db.get(Site, "site-a")
            assert site is not None
            site.accept_by_other = True
            db.commit()


def test_only_an_admin_corrects_a_verdict_with_a_reason(ui: dict[str, Any]) -> None:
    client = ui["client"]
    event_id = new_event(ui)
    confirm_and_assign(ui, event_id, "fix-a")
    base = f"/ui/events/{event_id}"
    csrf = login(client, "rev-a")
    assert 'id="correct-form"' not in client.get(base).text
    refused = client.post(
        f"{base}/verdict",
        data={"verdict": "dismiss", "reason": "other", "correction": "看错了", "csrf_token": csrf},
    )
    assert refused.status_code == 403 and "只有管理员可以更正" in refused.text
    csrf = login(client, "boss")
    page = client.get(base).text
    assert 'id="correct-form"' in page and "更正结论" in page and 'id="correct-ends-rect"' in page
    no_reason = client.post(
        f"{base}/verdict", data={"verdict": "dismiss", "reason": "other", "csrf_token": csrf}
    )
    assert no_reason.status_code == 422 and "更正审核结论须填写更正原因" in no_reason.text
    no_dismiss_reason = client.post(
        f"{base}/verdict",
        data={"verdict": "dismiss", "reason": "", "correction": "看错了", "csrf_token": csrf},
    )
    assert (
        no_dismiss_reason.status_code == 422
        and "改为误报时须选择误报原因" in no_dismiss_reason.text
    )
    unchanged = client.post(
        f"{base}/verdict",
        data={"verdict": "confirm", "correction": "再确认", "csrf_token": csrf},
    )
    assert unchanged.status_code == 422 and "结论未改变" in unchanged.text
    assert status_of(client, event_id) == "整改中"
    done = client.post(
        f"{base}/verdict",
        data={"verdict": "dismiss", "reason": "other", "correction": "工人已戴帽，画面误判",
              "csrf_token": csrf},
    )  # fmt: skip
    assert done.status_code == 200
    page = client.get(base).text
    assert status_of(client, event_id) == "误报"
    actions = re.findall(r'data-action="([^"]+)">([^<]+)<', page)
    assert ("event.verdict_correct", "更正审核结论") in actions
    assert ("hazard.removed", "撤销整改") in actions
    assert "工人已戴帽，画面误判" in page
    assert 'id="rectification"' not in page
    login(client, "fix-a")
    assert f'data-event-id="{event_id}"' not in client.get("/ui/my-hazards").text
