"""The docs' references kept by a machine: README.md and docs/*.md.

Every relative link names a file of the tree, every #anchor a heading of
the page it points into (GitHub's rule: lower case, punctuation but "-"
and "_" dropped, spaces to "-"), and every path of the tree a page names
in backquotes (`tests/integration/test_udp.py`, `contrib/quickstart.sh`)
exists, so that a renamed file or heading cannot leave a page pointing at
nothing.  Before looking at the docs, the checker is run on a small tree
that breaks each rule, so that it cannot silently pass.  Needs EP_TOP_DIR
(make check sets it; else ../.. from here).
"""

import os
import re
import sys
import tempfile

sys.dont_write_bytecode = True

EXIT_PASS, EXIT_FAIL = 0, 1
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_PATH = re.compile(
    r"`((?:src|tests|contrib|docs|debian|collectd\.conf\.d|\.ci)/[^`*<>\s]+)`")
HEADING = re.compile(r"^#+\s+(.*?)\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def pages(top):
    docs = os.path.join(top, "docs")
    found = ["README.md"]
    found += sorted(os.path.join("docs", name) for name in os.listdir(docs)
                    if name.endswith(".md"))
    return found


def anchor(heading):
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    with open(path) as handle:
        text = FENCE.sub("", handle.read())
    return {anchor(h) for h in HEADING.findall(text)}


def problems(top):
    """Every broken reference of the tree's pages, as "page: what"."""
    found = []
    for page in pages(top):
        with open(os.path.join(top, page)) as handle:
            text = FENCE.sub("", handle.read())
        here = os.path.dirname(page)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, fragment = target.partition("#")
            resolved = os.path.normpath(os.path.join(here, path)) if path \
                else page
            if not os.path.exists(os.path.join(top, resolved)):
                found.append("%s: link to %s: no such file" % (page, target))
            elif fragment and fragment not in anchors(
                    os.path.join(top, resolved)):
                found.append("%s: link to %s: no such heading" % (page,
                                                                   target))
        for path in CODE_PATH.findall(text):
            path = path.rstrip(".,:;")
            if not os.path.exists(os.path.join(top, path)):
                found.append("%s: names %s: no such file" % (page, path))
    return found


def write(top, relative, text):
    path = os.path.join(top, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def check_the_checker():
    """A tree with one good and one bad reference of each kind must give
    exactly the bad ones."""
    with tempfile.TemporaryDirectory() as top:
        write(top, "tests/real.py", "")
        write(top, "docs/a.md", "# Page A\n\n## Per-destination headroom: "
              "the real limit\n\n[up](../README.md) [gone](../nowhere.md)\n"
              "`tests/real.py` `tests/gone.py`\n")
        write(top, "README.md", "# Top\n\n[a](docs/a.md#page-a) "
              "[b](docs/a.md#per-destination-headroom-the-real-limit) "
              "[c](docs/a.md#no-such) [d](#top) [e](https://example.com)\n"
              "```\n[f](not-checked-in-code.md)\n```\n")
        got = sorted(problems(top))
    expected = sorted([
        "README.md: link to docs/a.md#no-such: no such heading",
        "docs/a.md: link to ../nowhere.md: no such file",
        "docs/a.md: names tests/gone.py: no such file"])
    if got != expected:
        print("FAIL: the checker on a known tree: expected %r, got %r"
              % (expected, got))
        return False
    return True


def main():
    if not check_the_checker():
        return EXIT_FAIL
    top = os.environ.get("EP_TOP_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    found = problems(top)
    for line in found:
        print("FAIL: %s" % line)
    if found:
        return EXIT_FAIL
    print("PASS: every link, anchor and path of %s" % ", ".join(pages(top)))
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
