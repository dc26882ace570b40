"""The web page in a real browser (Debian's chromium via Playwright) against a live server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune.rag import RAG
from tests.server.conftest import LEASE_A, LEASE_Q, FakeRoG, WordStreamLM

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install chromium); "
    "CI (.ci/run) does",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
        )
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.problems = []  # uncaught script errors and console errors
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    yield page
    page.close()


def test_ask_rag_then_rog(serve, glimmer_index, page, tmp_path):
    from playwright.sync_api import expect

    srv = serve(RAG(glimmer_index, WordStreamLM(lambda m: LEASE_A), k=3), rog=FakeRoG())
    page.goto(srv.url + "/")
    expect(page.locator("#status")).to_contain_text("RAG, ROG")
    question = page.get_by_label("Question", exact=True)
    question.fill(LEASE_Q)
    question.press("Enter")  # keyboard submit
    expect(page.locator("#answer")).to_have_text(LEASE_A)
    cite = page.locator("#citations li.citation").first
    expect(cite).to_contain_text(".md")  # the source
    mark = cite.locator("mark")
    expect(mark).to_be_visible()
    assert "30 seconds" in mark.inner_text()
    expect(page.locator("#answer a.ref")).to_have_attribute("href", "#cite-1")
    page.screenshot(path=str(tmp_path / "rag.png"), full_page=True)

    page.get_by_label("RoG").check()
    expect(page.get_by_label("Topic entities")).to_be_visible()
    question.fill("who directed the films starring Sharon Tate")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#answer")).to_have_text("Roman Polanski")
    graph = page.locator("#graph svg")
    expect(graph.locator("g.node")).to_have_count(5)  # Tate, 2 films, 2 directors
    expect(graph.locator("g.edge")).to_have_count(4)
    expect(graph.locator("g.node.answer text")).to_have_text("Roman Polanski")
    expect(graph.locator(".edge-label").first).to_have_text("~starred_actors")
    # left to right by hop: the topic entity, then the films, then the directors
    xs = [
        graph.locator("g.node", has_text=name).locator("rect").bounding_box()["x"]
        for name in ("Sharon Tate", "Valley of the Dolls", "Mark Robson")
    ]
    assert xs == sorted(xs)
    expect(page.locator("#paths li")).to_have_count(2)
    expect(page.locator("#paths")).to_contain_text("Sharon Tate -> ~starred_actors -> ")

    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert page.problems == []


def test_rog_off_and_api_key(serve, lease_rag, page):
    from playwright.sync_api import expect

    srv = serve(lease_rag, api_key="sk-page")
    page.goto(srv.url + "/")
    expect(page.locator("#status")).to_contain_text("API key required")
    expect(page.get_by_label("RoG")).to_be_disabled()
    expect(page.locator("#rog-hint")).to_be_visible()
    page.get_by_label("Question", exact=True).fill(LEASE_Q)
    page.get_by_role("button", name="Ask").click()
    expect(page.get_by_role("alert")).to_contain_text("enter the key under Settings")
    page.get_by_label("API key").fill("sk-page")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#answer")).to_have_text(LEASE_A)
    expect(page.get_by_role("alert")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('ragtune.apiKey')") == "sk-page"
    page.reload()  # the key survives a reload
    expect(page.get_by_label("API key")).to_have_value("sk-page")
    # a failed request shows as console error by the browser itself; nothing else may fail
    assert [p for p in page.problems if "401" not in p] == []


def test_highlight_counts_code_points(serve, lease_rag, page):
    """Citation offsets are Python code points; an emoji before the quote must not shift it."""
    srv = serve(lease_rag)
    page.goto(srv.url + "/")
    text = "🙂🚀 Leases last 30 seconds by default. 🎉 Renew them."
    quote = "30 seconds by default"
    start = text.index(quote)
    got = page.evaluate(
        "([t, s, e]) => passage(t, s, e).querySelector('mark').textContent",
        [text, start, start + len(quote)],
    )
    assert got == quote
    whole = page.evaluate("(t) => passage(t, 0, Array.from(t).length).textContent", text)
    assert whole == text
    assert page.problems == []


def test_two_turn_conversation(serve, glimmer_index, page):
    from playwright.sync_api import expect

    lm = WordStreamLM(lambda m: LEASE_A)
    srv = serve(RAG(glimmer_index, lm, k=2))
    page.goto(srv.url + "/")
    question = page.get_by_label("Question", exact=True)
    question.fill(LEASE_Q)
    question.press("Enter")
    expect(page.locator("#answer")).to_have_text(LEASE_A)
    expect(page.locator("#history")).to_be_hidden()  # one question is no conversation yet

    question.fill("and how do I change it?")
    question.press("Enter")
    expect(page.locator("#submit")).to_have_text("Ask")  # the second answer has arrived
    turns = page.locator("#turns li.turn")
    expect(turns).to_have_count(1)  # the first turn, kept with its own sources
    expect(turns.first.locator(".q")).to_have_text(LEASE_Q)
    expect(turns.first.locator(".a")).to_have_text(LEASE_A)
    expect(turns.first.locator(".turn-cite mark").first).to_contain_text("30 seconds")
    # turn two's own sources: the follow-up was searched with the lease question's words
    expect(page.locator("#citations li.citation").first).to_contain_text("lease")
    # the follow-up was sent with the conversation before it
    roles = [m["role"] for m in lm.calls[-1]]
    assert roles == ["system", "user", "assistant", "user"]
    assert lm.calls[-1][1]["content"] == LEASE_Q

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#history")).to_be_hidden()
    question.fill(LEASE_Q)
    question.press("Enter")
    expect(page.locator("#answer")).to_have_text(LEASE_A)
    assert [m["role"] for m in lm.calls[-1]] == ["system", "user"]  # a fresh conversation
    assert page.problems == []
