"""The web page (GET /) in headless Chromium, as a person uses it: choose a user, read the
feed, click a note (the feed adapts), search, post a note and find it, see what moderation
filtered. Debian's chromium is driven by Playwright (`make test` installs it; Playwright's
own browser download is never used)."""

import os
import shutil
from pathlib import Path

import httpx
import pytest

from snsrec.serve.app import create_app
from snsrec.serve.pipeline import Moderation

from .conftest import fresh_platform, live

TOKEN = "s3cret"
K = 8
# docs/serving.md embeds this screenshot; SNSREC_SCREENSHOT=1 refreshes it.
DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "serve-page.png"


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install "
                    "chromium); Playwright drives it, `playwright install` is not used")
    return exe


def test_the_page_in_headless_chromium(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    exe = chromium()
    user, now, notes = served["user"], served["now"], served["notes"]
    platform = fresh_platform(served, tmp_path)
    # Moderation blocks the note the user's feed would open with.
    blocked = platform.feed(user, K, now)["items"][0]["note_id"]
    platform.moderation = Moderation({blocked: 0.99}, 0.5)
    want = [i["note_id"] for i in platform.feed(user, K, now)["items"]]
    users = served["tables"].events.select("user_id").unique(maintain_order=True) \
        .head(20).collect()["user_id"].to_list()
    assert users[0] == user
    app = create_app(platform, TOKEN, clock=lambda: now, users=users)
    title = "Night market dumplings in Taipei & <Shilin>"

    with live(app) as base, sync_playwright() as pw:
        with httpx.Client(base_url=base, timeout=30) as c:     # the page's own endpoints
            assert c.get("/v1/users", params={"limit": 3}).json() == {"users": users[:3]}
            for bad in (0, 101, "x"):
                assert c.get("/v1/users", params={"limit": bad}).status_code == 422
            assert "/" not in c.get("/openapi.json").json()["paths"]
            assert c.get("/").headers["content-type"].startswith("text/html")
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            js_errors: list[str] = []
            page.on("pageerror", lambda e: js_errors.append(str(e)))
            page.goto(f"{base}/?token={TOKEN}")
            status = page.locator("#status")
            expect(status).to_have_text("Choose a user to see their feed.")
            assert page.input_value("#token") == TOKEN                # prefilled from ?token=
            expect(page.locator("#users button")).to_have_count(8)

            # Choose a user: the feed's note cards, as the API serves them.
            page.fill("#k", str(K))
            page.click(f"#users button[data-user='{user}']")
            feed = page.locator("#feed .card")
            expect(feed).to_have_count(K)
            ids = [int(i) for i in feed.evaluate_all("cs => cs.map(c => c.dataset.noteId)")]
            assert ids == want and blocked not in ids
            top = notes[ids[0]]
            expect(feed.first.locator(".title")).to_have_text(top["title"])
            expect(feed.first.locator(".tag")).to_have_text([f"#{t}" for t in top["hashtags"]])
            expect(feed.first.locator(".topic")).to_have_text(
                f"{top['category']} › {top['subcategory']}")
            expect(feed.first.locator(".why")).to_contain_text("interest #")
            expect(page.locator("#feed .why", has_text="because you clicked “")).not_to_have_count(0)
            expect(page.locator("#feed-meta")).to_contain_text("1 filtered by moderation")

            # Click a note: a click event is stored and the re-rendered feed leaves it out.
            before = platform.store.count_events()
            feed.first.click()
            expect(page.locator(f"#feed .card[data-note-id='{ids[0]}']")).to_have_count(0)
            expect(feed).to_have_count(K)
            expect(status).to_contain_text(f"note {ids[0]}")
            assert platform.store.count_events() == before + 1
            assert (ids[0], "feed", now) in platform.store.behaviours(user)["clicks"]
            assert ids[0] in platform.store.history(user, "feed", limit=1)

            # An API error shows in the status line: a write without the token.
            page.fill("#token", "")
            feed.first.click()
            expect(status).to_have_class("error")
            expect(status).to_contain_text("401")
            expect(status).to_contain_text("Bearer")
            assert platform.store.count_events() == before + 1
            page.fill("#token", TOKEN)

            # Search.
            query = served["tables"].queries.select("query").head(1).collect().item()
            page.fill("#query", query)
            page.press("#query", "Enter")
            results = page.locator("#results .card")
            expect(results).to_have_count(K)
            expect(page.locator("#results-query")).to_have_text(query)
            expect(results.first.locator(".why")).to_contain_text(f"matches “{query}”")

            # Post a note (its title is text, not HTML), then find it by its title.
            page.fill("#note-title", title)
            page.fill("#note-body", "Pepper buns and oyster omelettes, late.")
            page.fill("#note-hashtags", "#taipei, food")
            page.click("#post-form button[type=submit]")
            posted_line = page.locator("#posted-note")
            expect(posted_line).to_contain_text("Posted note")
            posted = int(posted_line.get_attribute("data-note-id"))
            stored_note = platform.store.get_note(posted)
            assert stored_note["title"] == title and stored_note["hashtags"] == ["taipei", "food"]
            assert stored_note["author_id"] == user
            page.fill("#query", title)
            page.press("#query", "Enter")
            hit = page.locator(f"#results .card[data-note-id='{posted}']")
            expect(hit).to_have_count(1)
            expect(hit.locator(".title")).to_have_text(title)
            expect(hit.locator(".topic")).to_have_text("no topic yet")
            assert page.locator("#results shilin").count() == 0       # escaped, not parsed

            # Show what moderation filtered: the blocked note, with its score.
            assert page.locator("#filtered-section").is_hidden()
            page.check("#show-filtered")
            gone = page.locator(f"#filtered .card[data-note-id='{blocked}']")
            expect(gone).to_have_count(1)
            expect(gone).to_contain_text("P(harmful) 0.99")
            expect(gone.locator(".title")).to_have_text(notes[blocked]["title"])
            expect(status).not_to_have_class("error")
            assert page.locator(f"#feed .card[data-note-id='{blocked}']").count() == 0

            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("SNSREC_SCREENSHOT"):
                DOCS_SHOT.parent.mkdir(exist_ok=True)
                shutil.copyfile(shot, DOCS_SHOT)
            assert js_errors == []
        finally:
            browser.close()


def test_the_page_suggests_the_most_active_users():
    import polars as pl

    from snsrec.serve.service import active_users

    events = pl.LazyFrame({"user_id": [1, 2, 2, 3, 3, 3, 4], "click": [1, 1, 1, 0, 0, 1, 1]})
    assert active_users(events, 3) == [2, 1, 3]          # most clicks first, ties by id
    assert active_users(events) == [2, 1, 3, 4]
