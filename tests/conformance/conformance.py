#!/usr/bin/env python3
"""Do real Microsoft clients accept the sandbox? Unmodified MSAL Python and azure-identity
against `hal-onboard sandbox serve`.

    python tests/conformance/conformance.py target/debug/hal-onboard

The clients are only pointed at the sandbox, as their documentation allows for any authority:
the authority `https://127.0.0.1:{port}/{tenant}` with instance discovery off (MSAL's
`instance_discovery=False`, azure-identity's `authority=` and `disable_instance_discovery=True`),
and the sandbox's CA trusted through `REQUESTS_CA_BUNDLE`. A person's part is played over HTTPS
as a person would: the device code is typed into the sandbox's sign-in page, and
tests/conformance/browser.py stands in for the web browser of the interactive sign-in.

Checks: device code, refresh token, authorization code with PKCE and client credentials, with
each client; every check reads the token's claims (tid, aud, scp or roles). One line per check,
then `conformance: N passed, M failed`; the exit status is 1 if any failed.
"""

import base64
import hashlib
import html.parser
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
TENANT_ID = "7c0e7d1a-5b7e-4c39-9f0e-3a1c5e0d2b61"
DOMAIN = "conformance.onmicrosoft.com"
UPN = f"admin@{DOMAIN}"
GRAPH_CLI = "14d82eec-204b-4c2f-b7e8-296a70dab67e"  # Microsoft Graph Command Line Tools
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # azure-identity's default public client
ARM = "https://management.core.windows.net/"
TIMEOUT = 60  # seconds any one sign-in may take

# One tenant whose technician approves a device code only when a person enters it on the
# sign-in page (no automatic approval), polled once a second.
SCENARIO = {
    "tenants": [
        {
            "id": TENANT_ID,
            "displayName": "Conformance (sandbox)",
            "domains": [DOMAIN],
            "signedInUser": {"upn": UPN, "displayName": "Conformance Admin"},
            "deviceCodeApproveAfterPolls": 4294967295,
            "deviceCodeInterval": 1,
        }
    ]
}


def claims(jwt):
    """A JWT's payload, read as clients read it."""
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Form(html.parser.HTMLParser):
    """The first form of a page and its text field."""

    def __init__(self):
        super().__init__()
        self.action, self.field = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        if tag == "input" and a.get("type", "text") == "text" and self.field is None:
            self.field = a.get("name")


class Sandbox:
    """`hal-onboard sandbox serve`, started and read as a user would."""

    def __init__(self, exe, work):
        scenario = os.path.join(work, "scenario.json")
        with open(scenario, "w", encoding="utf-8") as f:
            json.dump(SCENARIO, f)
        self.log = open(os.path.join(work, "serve.log"), "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [exe, "--home", work, "sandbox", "serve", "--scenario", scenario],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            line = ""
        if not line.strip():
            self.stop()
            raise SystemExit(f"conformance: `{exe} sandbox serve` printed no JSON line (see {self.log.name})")
        self.info = json.loads(line)
        self.host = self.info["authority"].rstrip("/")
        self.graph = self.info["graph"]
        self.ca = self.info["caCert"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="hal-conformance-")
    sb = Sandbox(exe, work)
    try:
        return run(sb, work)
    finally:
        sb.stop()
        shutil.rmtree(work, ignore_errors=True)


def run(sb, work):
    # The only two things the clients are told: where the authority is, and which CA to trust.
    os.environ["REQUESTS_CA_BUNDLE"] = sb.ca
    os.environ["BROWSER"] = os.path.join(HERE, "browser.py")
    browser_log = os.path.join(work, "browser.log")
    os.environ["CONFORMANCE_BROWSER_LOG"] = browser_log

    import msal  # noqa: E402 - after the environment is set
    import requests
    from azure.identity import (
        ClientSecretCredential,
        DeviceCodeCredential,
        InteractiveBrowserCredential,
    )

    authority = f"{sb.host}/{TENANT_ID}"
    graph_root = sb.graph.rstrip("/")  # the sandbox's Graph, e.g. https://127.0.0.1:port/graph
    graph_scope = f"{sb.graph}.default"  # a token for the Graph URL the client calls
    http = requests.Session()
    http.verify = sb.ca
    print(f"conformance: msal {msal.__version__}, sandbox at {sb.host}, tenant {TENANT_ID}")

    def approve(verification_uri, user_code):
        """A person opens the sign-in page, types the code into its form and submits it."""
        page = http.get(verification_uri, timeout=10)
        expect(page.status_code == 200, f"sign-in page: HTTP {page.status_code}")
        form = Form()
        form.feed(page.text)
        expect(form.action is not None and form.field, "the sign-in page has a code field")
        done = http.post(
            urllib.parse.urljoin(verification_uri, form.action),
            data={form.field: user_code},
            timeout=10,
        )
        expect(done.status_code == 200 and "You have signed in" in done.text,
               f"the sign-in page took the code: HTTP {done.status_code}")

    state = {}
    results = []

    def check(name, fn):
        try:
            detail = fn()
            results.append(True)
            print(f"ok    {len(results)} {name}: {detail}")
        except Exception as e:  # noqa: BLE001 - a failed check is reported, the others still run
            results.append(False)
            print(f"FAIL  {len(results)} {name}: {type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stderr)

    def user_token(at, aud, scope_word):
        c = claims(at)
        expect(c.get("tid") == TENANT_ID, f"tid {c.get('tid')}")
        expect(c.get("aud") == aud, f"aud {c.get('aud')} (want {aud})")
        expect(scope_word in (c.get("scp") or "").split(), f"scp {c.get('scp')} lacks {scope_word}")
        return c

    # --- MSAL Python ------------------------------------------------------------------------
    def public_app():
        # Made in a check: MSAL reads the OpenID configuration here, and may refuse.
        if "msal" not in state:
            state["msal"] = msal.PublicClientApplication(
                GRAPH_CLI, authority=authority, instance_discovery=False)
        return state["msal"]

    def msal_device_code():
        app = public_app()
        flow = app.initiate_device_flow(scopes=[graph_scope])
        expect("user_code" in flow, f"device flow: {flow}")
        approve(flow["verification_uri"], flow["user_code"])
        deadline = time.time() + TIMEOUT
        r = app.acquire_token_by_device_flow(flow, exit_condition=lambda _: time.time() > deadline)
        expect("access_token" in r, f"no token: {r.get('error')} {r.get('error_description')}")
        c = user_token(r["access_token"], graph_root, "Application.ReadWrite.All")
        idt = r["id_token_claims"]
        expect(idt.get("tid") == TENANT_ID and idt.get("aud") == GRAPH_CLI, f"id token {idt}")
        expect(idt.get("preferred_username") == UPN and idt.get("ver") == "2.0", f"id token {idt}")
        accounts = app.get_accounts()
        expect(len(accounts) == 1 and accounts[0]["home_account_id"] == f"{c['oid']}.{TENANT_ID}",
               f"account from client_info: {accounts}")
        state["graph_token"] = r["access_token"]
        return f"tid ok, aud={c['aud']}, scp has Application.ReadWrite.All, account {UPN}"

    def msal_refresh_token():
        app = public_app()
        accounts = app.get_accounts(username=UPN)
        expect(accounts, "needs the device code sign-in's account")
        account = accounts[0]
        # No token for Azure Resource Manager is cached: MSAL redeems its refresh token.
        r = app.acquire_token_silent([ARM + "/.default"], account=account)
        expect(r and "access_token" in r, f"silent: {r}")
        c = user_token(r["access_token"], ARM, "user_impersonation")
        expect(r.get("token_source") in (None, "identity_provider"), f"source {r.get('token_source')}")
        return f"refresh token -> aud={c['aud']}, scp={c['scp']}"

    def msal_auth_code_pkce():
        app = public_app()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MSAL recommends form_post; query is the default
            flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri="http://localhost:8765")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(flow["auth_uri"]).query))
        expect(query.get("code_challenge_method") == "S256" and query.get("nonce"), "PKCE and nonce sent")
        # The browser goes to the sign-in page, which signs the technician in and redirects back.
        back = http.get(flow["auth_uri"], allow_redirects=False, timeout=10)
        expect(back.status_code == 302, f"authorize: HTTP {back.status_code} {back.text[:200]}")
        location = urllib.parse.urlsplit(back.headers["Location"])
        expect(location.netloc == "localhost:8765", f"redirected to {location.netloc}")
        r = app.acquire_token_by_auth_code_flow(flow, dict(urllib.parse.parse_qsl(location.query)))
        expect("access_token" in r, f"no token: {r.get('error')} {r.get('error_description')}")
        c = user_token(r["access_token"], "https://graph.microsoft.com", "User.Read")
        nonce = hashlib.sha256(flow["nonce"].encode()).hexdigest()
        expect(r["id_token_claims"].get("nonce") == nonce, "the id token echoes the nonce")
        return f"code + verifier -> aud={c['aud']}, scp={c['scp']}, nonce echoed"

    def make_app():
        """With the delegated token for the sandbox's Graph URL: an app, a secret, a grant."""
        h = {"Authorization": f"Bearer {state['graph_token']}"}
        g = sb.graph + "v1.0/"

        def call(method, path, body=None, ok=(200, 201)):
            r = http.request(method, g + path, json=body, headers=h, timeout=10)
            expect(r.status_code in ok, f"{method} {path}: HTTP {r.status_code} {r.text[:300]}")
            return r.json()

        a = call("POST", "applications", {"displayName": "conformance-client-credentials"})
        secret = call("POST", f"applications/{a['id']}/addPassword",
                      {"passwordCredential": {"displayName": "conformance"}})["secretText"]
        sp = call("POST", "servicePrincipals", {"appId": a["appId"]})
        graph_sp = call("GET", "servicePrincipals(appId='00000003-0000-0000-c000-000000000000')")
        role = next(r["id"] for r in graph_sp["appRoles"] if r["value"] == "Application.Read.All")
        call("POST", f"servicePrincipals/{graph_sp['id']}/appRoleAssignedTo",
             {"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": role})
        state["app"] = (a["appId"], secret)

    def app_token(at, aud, app_id):
        c = claims(at)
        expect(c.get("tid") == TENANT_ID, f"tid {c.get('tid')}")
        expect(c.get("aud") == aud, f"aud {c.get('aud')} (want {aud})")
        expect(c.get("appid") == app_id, f"appid {c.get('appid')}")
        expect("Application.Read.All" in c.get("roles", []), f"roles {c.get('roles')}")
        return c

    def msal_client_credentials():
        expect("graph_token" in state, "needs the device code sign-in")
        make_app()
        app_id, secret = state["app"]
        cca = msal.ConfidentialClientApplication(
            app_id, client_credential=secret, authority=authority, instance_discovery=False)
        r = cca.acquire_token_for_client(["https://graph.microsoft.com/.default"])
        expect("access_token" in r, f"no token: {r.get('error')} {r.get('error_description')}")
        c = app_token(r["access_token"], "https://graph.microsoft.com", app_id)
        return f"app made through Graph; aud={c['aud']}, roles={c['roles']}"

    check("msal device code", msal_device_code)
    check("msal refresh token", msal_refresh_token)
    check("msal auth code + PKCE", msal_auth_code_pkce)
    check("msal client credentials", msal_client_credentials)

    # --- azure-identity ---------------------------------------------------------------------
    prompts = []

    def prompt(verification_uri, user_code, expires_on):
        prompts.append(user_code)
        approve(verification_uri, user_code)

    def device_credential():
        if "device" not in state:
            state["device"] = DeviceCodeCredential(
                tenant_id=TENANT_ID,
                authority=sb.host,
                disable_instance_discovery=True,
                prompt_callback=prompt,
                timeout=TIMEOUT,
            )
        return state["device"]

    def azure_device_code():
        t = device_credential().get_token(graph_scope)
        c = user_token(t.token, graph_root, "Application.ReadWrite.All")
        expect(c.get("appid") == AZURE_CLI and len(prompts) == 1, f"appid {c.get('appid')}, prompts {prompts}")
        return f"DeviceCodeCredential: aud={c['aud']}, appid={c['appid']}"

    def azure_refresh_token():
        expect(len(prompts) == 1, "needs the device code sign-in")
        t = device_credential().get_token(ARM + "/.default")
        c = user_token(t.token, ARM, "user_impersonation")
        expect(len(prompts) == 1, f"asked the user again: {prompts}")
        return f"DeviceCodeCredential, no new prompt: aud={c['aud']}, scp={c['scp']}"

    def azure_auth_code_pkce():
        browser = InteractiveBrowserCredential(
            tenant_id=TENANT_ID, authority=sb.host, disable_instance_discovery=True, timeout=TIMEOUT)
        t = browser.get_token("https://graph.microsoft.com/.default")
        c = user_token(t.token, "https://graph.microsoft.com", "Application.ReadWrite.All")
        with open(browser_log, encoding="utf-8") as f:
            seen = f.read()
        expect("POST http://localhost:" in seen, f"the browser posted Entra's form: {seen}")
        return f"InteractiveBrowserCredential via $BROWSER (form_post): aud={c['aud']}"

    def azure_client_credentials():
        expect("app" in state, "needs the app made through Graph")
        app_id, secret = state["app"]
        cred = ClientSecretCredential(
            TENANT_ID, app_id, secret, authority=sb.host, disable_instance_discovery=True)
        t = cred.get_token(graph_scope)
        c = app_token(t.token, graph_root, app_id)
        r = http.get(sb.graph + "v1.0/applications?$select=id,appId",
                     headers={"Authorization": f"Bearer {t.token}"}, timeout=10)
        expect(r.status_code == 200 and any(a["appId"] == app_id for a in r.json()["value"]),
               f"Graph with the app's token: HTTP {r.status_code} {r.text[:200]}")
        expect(r.json()["@odata.context"].endswith("#applications(id,appId)"), "@odata.context")
        return f"ClientSecretCredential: aud={c['aud']}, roles={c['roles']}, Graph answered"

    check("azure-identity device code", azure_device_code)
    check("azure-identity refresh token", azure_refresh_token)
    check("azure-identity auth code + PKCE", azure_auth_code_pkce)
    check("azure-identity client credentials", azure_client_credentials)

    passed = sum(results)
    failed = len(results) - passed
    print(f"conformance: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
