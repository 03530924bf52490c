"""Every control on the main pages has an accessible name: a label, its text, or aria-label."""

import re
from html.parser import HTMLParser

import pytest

from tests.web.test_languages import pages

CONTROLS = {"input", "select", "textarea"}
NAMED_BY_TEXT = {"button", "a"}


class Controls(HTMLParser):
    """Finds controls without a name; `labelled` are the ids some <label for> names."""

    def __init__(self, labelled: set[str]) -> None:
        super().__init__()
        self.labelled = labelled
        self.in_label = 0
        self.open: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.nameless: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.in_label += 1
        if tag in CONTROLS and a.get("type") != "hidden":
            named = a.get("aria-label") or a.get("id") in self.labelled or self.in_label
            if not named:
                self.nameless.append(f"<{tag} {a}>")
        if tag in NAMED_BY_TEXT:
            self.open.append((tag, a, []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.in_label -= 1
        if tag in NAMED_BY_TEXT and self.open and self.open[-1][0] == tag:
            _, a, text = self.open.pop()
            if not (a.get("aria-label") or "".join(text).strip()):
                self.nameless.append(f"<{tag} {a}>")

    def handle_data(self, data: str) -> None:
        for _, _, text in self.open:
            text.append(data)


def nameless_controls(html: str) -> list[str]:
    html = re.sub(r"<template\b.*?</template>", "", html, flags=re.S)
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    parser = Controls(labelled)
    parser.feed(html)
    return parser.nameless


def test_the_check_finds_a_nameless_control():
    page = '<label for="a">A</label><input id="a"><input id="b"><button> </button><a href="/"></a>'
    assert len(nameless_controls(page)) == 3


@pytest.mark.parametrize("language", ["id", "en"])
def test_every_control_on_the_main_pages_has_a_name(visitor, api, make_admin, language):
    visitor.language(language)
    for token, paths in pages(api, visitor, make_admin):
        if token:
            visitor.client.cookies.set("pesan_session", token)
        for path in paths:
            page = visitor.get(path)
            assert nameless_controls(page.text) == [], path
