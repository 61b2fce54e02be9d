#!/usr/bin/env python3
"""A stand-in web browser for the conformance test, used as $BROWSER.

azure-identity's InteractiveBrowserCredential (through Python's `webbrowser`) runs `$BROWSER URL`
and waits for it to return, then listens on its loopback redirect URI. Like a real browser, this
one returns at once and goes on in the background: it opens the URL over HTTPS (trusting the CA
in $REQUESTS_CA_BUNDLE), follows redirects, and submits the page's form if the answer is one —
which is what Entra's `response_mode=form_post` page asks a browser to do (its script submits
the form on load). What it did goes to $CONFORMANCE_BROWSER_LOG.
"""

import html.parser
import os
import ssl
import sys
import urllib.parse
import urllib.request


class FormReader(html.parser.HTMLParser):
    """The first form of a page: its action, method and fields."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.method = "GET"
        self.fields = []
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self._in_form = True
            self.action = a.get("action", "")
            self.method = (a.get("method") or "GET").upper()
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields.append((a["name"], a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False


def browse(url, log):
    ca = os.environ.get("REQUESTS_CA_BUNDLE")
    context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    with opener.open(url, timeout=30) as r:
        page = r.read().decode("utf-8", "replace")
        where = r.geturl()
        log.write(f"GET {url.split('?')[0]} -> {r.status} at {where.split('?')[0]}\n")
    form = FormReader()
    form.feed(page)
    if form.action is None:
        log.write("no form on the page: done\n")
        return
    # The page's script would submit the form on load; so does this browser.
    target = urllib.parse.urljoin(where, form.action)
    body = urllib.parse.urlencode(form.fields).encode()
    log.write(f"{form.method} {target} fields={[k for k, _ in form.fields]}\n")
    req = urllib.request.Request(target, data=body, method=form.method)
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with opener.open(req, timeout=30) as r:
        log.write(f"-> {r.status}\n")


def main():
    if len(sys.argv) != 2:
        print("usage: browser.py URL", file=sys.stderr)
        return 2
    # Return at once, as a browser does, and carry on detached.
    if os.fork():
        return 0
    os.setsid()
    log_path = os.environ.get("CONFORMANCE_BROWSER_LOG", os.devnull)
    with open(log_path, "a", encoding="utf-8") as log:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            browse(sys.argv[1], log)
        except Exception as e:  # noqa: BLE001 - everything a browser can meet goes to the log
            log.write(f"failed: {e!r}\n")
            os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
