"""The web console (`arca serve`, `console_listen`), server side: real HTTP with `requests` against a
real server, checked from outside the console with oss2, the RAM SDK and the KMS API.

1. sessions: sign-in with an access key or a RAM user's console password, the cookie, sign-out, and
   credentials or policies changing under a live session;
2. CSRF: every state-changing request needs the session's own token;
3. authorization: every page and action runs as the signed-in identity and shows the API's refusal;
4. pages: form errors next to their fields, object details, encryption column, KMS usage, simulate.

The module runs its own server so that the KMS usage counts and the account see only this file.
"""

import html
import http.cookiejar
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

import oss2
import pytest
import requests
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkkms.request.v20160120 import CreateKeyRequest, DescribeKeyRequest, ListKeysRequest
from aliyunsdkram.request.v20150501 import (
    AttachPolicyToUserRequest,
    CreateLoginProfileRequest,
    DeleteAccessKeyRequest,
    DeleteLoginProfileRequest,
    DeleteUserRequest,
    DetachPolicyFromUserRequest,
    GetPolicyRequest,
    GetUserRequest,
    ListPoliciesForUserRequest,
    UpdateAccessKeyRequest,
)

import test_ram as T
from arca_testlib import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    REGION,
    ArcaServer,
    crc64,
    object_records,
    unique_bucket_name,
)

CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')
COOKIE_RE = re.compile(r"^arca_session=([0-9a-f]{64}); Path=/; HttpOnly; SameSite=Strict$")
SSE = "x-oss-server-side-encryption"
SSE_KEY = "x-oss-server-side-encryption-key-id"
KMS_FORBIDDEN = "This request is forbidden by kms."
LOGIN_COOKIE_RE = re.compile(r"arca_login=([0-9a-f]+)")
BAD_KEY_LOGIN = "Wrong or inactive access key pair."
BAD_PASSWORD_LOGIN = "Wrong account, user name or password."
PASSWORD = "Console-pass-1234"
SECRET_BYTES = b"top secret object bytes " + uuid.uuid4().hex.encode()

# A stand-in for "send the session's own token".
OWN = object()


# ============================================================================ the console client


class Console:
    """One browser: keeps its session id itself (so tests can replay an old cookie) and never
    follows redirects."""

    def __init__(self, srv):
        self.url = srv.console_url
        self.http = requests.Session()
        self.http.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.sid = None
        self._csrf = None

    # -- signing in and out
    def login_key(self, key_id, secret):
        return self._login({"method": "key", "access_key_id": key_id, "access_key_secret": secret})

    def login_password(self, account, user, password):
        return self._login({"method": "password", "account": account, "user": user, "password": password})

    def _login(self, form):
        # The sign-in form is double-submit protected: fetch it for its token and cookie first.
        page = self.http.get(self.url + "/login", allow_redirects=False, timeout=30)
        token = re.search(r'name="login_token" value="([0-9a-f]+)"', page.text).group(1)
        cookie = LOGIN_COOKIE_RE.search(page.headers.get("set-cookie", "")).group(1)
        form = dict(form, login_token=token)
        r = self.http.post(
            self.url + "/login", data=form, headers={"Cookie": "arca_login=" + cookie}, allow_redirects=False, timeout=30
        )
        m = COOKIE_RE.match(r.headers.get("set-cookie", ""))
        if r.status_code == 303 and m:
            self.sid, self._csrf = m.group(1), None
        return r

    @property
    def csrf(self):
        """The session's CSRF token, read from a page's hidden field (the cheapest page: no such bucket)."""
        if self._csrf is None:
            r = self.get("/buckets/no-such-bucket-here")
            self._csrf = CSRF_RE.search(r.text).group(1)
        return self._csrf

    # -- requests
    def _headers(self, extra=None):
        h = dict(extra or {})
        if self.sid:
            h["Cookie"] = "arca_session=" + self.sid
        return h

    def get(self, path, **params):
        return self.http.get(self.url + path, params=params, headers=self._headers(), allow_redirects=False, timeout=60)

    def post(self, path, form=None, csrf=OWN, params=None, headers=None):
        form = dict(form or {})
        if csrf is OWN:
            form["csrf"] = self.csrf
        elif csrf is not None:
            form["csrf"] = csrf
        return self.http.post(
            self.url + path, data=form, params=params, headers=self._headers(headers), allow_redirects=False, timeout=60
        )

    def upload(self, bucket, key, data, sse="", token=OWN):
        headers = {"Content-Type": "application/octet-stream"}
        if token is OWN:
            headers["X-CSRF-Token"] = self.csrf
        elif token is not None:
            headers["X-CSRF-Token"] = token
        return self.http.put(
            "%s/buckets/%s/upload" % (self.url, bucket),
            params={"key": key, "sse": sse},
            data=data,
            headers=self._headers(headers),
            allow_redirects=False,
            timeout=60,
        )


# ============================================================================ page helpers


def text_of(page, element_id):
    """Unescaped text of the element with this id (up to its first child tag); None if absent."""
    m = re.search(r'id="%s"[^>]*>([^<]*)' % re.escape(element_id), page)
    return html.unescape(m.group(1)) if m else None


def bucket_row_encryption(page, name):
    """The Default encryption cell of a bucket's row in the buckets list."""
    m = re.search(r'<a href="/buckets/%s">%s</a>.*?<td class="encryption">([^<]*)</td>' % (name, name), page)
    return html.unescape(m.group(1)) if m else None


def is_login_redirect(r):
    return r.status_code == 303 and r.headers["location"].split("?")[0] == "/login"


def assert_csrf_refused(r):
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/plain")
    assert "CSRF" in r.text


def bucket_exists(srv, name):
    try:
        srv.bucket(name).get_bucket_info()
        return True
    except oss2.exceptions.NoSuchBucket:
        return False


def object_body(srv, bucket, key):
    """The object's bytes as root, or None if it does not exist."""
    try:
        return srv.bucket(bucket).get_object(key).read()
    except oss2.exceptions.NoSuchKey:
        return None


def ram_exists(root, request, **params):
    try:
        root(request, **params)
        return True
    except ServerException as e:
        assert e.get_error_code().startswith("EntityNotExist"), e
        return False


def key_state(root, key_id):
    return root(DescribeKeyRequest, KeyId=key_id)["KeyMetadata"]["KeyState"]


def key_ids(root):
    return sorted(k["KeyId"] for k in root(ListKeysRequest, PageSize=100)["Keys"]["Key"])


def encryption(srv, bucket):
    return T.encryption_rule(srv.bucket(bucket))


def attached_policies(root, user_name):
    got = root(ListPoliciesForUserRequest, UserName=user_name)["Policies"]["Policy"]
    return sorted((p["PolicyType"], p["PolicyName"]) for p in got)


def policy_doc(*statements):
    return T.doc(*statements)


# ============================================================================ fixtures


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = ArcaServer(tmp_path_factory.mktemp("arca-console"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def root(srv):
    """Root-signed RAM/KMS client."""
    return T.Acs(srv.kms_endpoint)


@pytest.fixture(scope="module")
def uid(srv):
    owner = srv.service().list_buckets().owner.id
    assert owner.isdigit() and len(owner) == 16, owner
    return owner


@pytest.fixture(scope="module")
def cmk(root):
    return root(CreateKeyRequest, Description="console tests")["KeyMetadata"]["KeyId"]


@pytest.fixture(scope="module")
def world(srv, root, uid, cmk):
    """Things a user without permissions must not see: a bucket with an object, another user, a
    custom policy (the CMK is the `cmk` fixture)."""
    name = unique_bucket_name("console-world")
    b = srv.bucket(name)
    b.create_bucket()
    b.put_object("secret.txt", SECRET_BYTES)
    bystander = T.new_user(srv, root, uid)
    sid = "Sid" + uuid.uuid4().hex[:12]
    policy = T.create_policy(root, policy_doc(T.allow("oss:GetObject", T.oss_arn(uid, name, "*"), sid=sid)))
    return dict(bucket=name, key="secret.txt", bystander=bystander, policy=policy, policy_sid=sid)


@pytest.fixture
def bucket(srv):
    """A fresh empty bucket of the root account."""
    name = unique_bucket_name("console")
    srv.bucket(name).create_bucket()
    return name


@pytest.fixture
def root_console(srv):
    c = Console(srv)
    assert c.login_key(ACCESS_KEY_ID, ACCESS_KEY_SECRET).status_code == 303
    return c


def set_password(root, user, password=PASSWORD):
    root(CreateLoginProfileRequest, UserName=user.name, Password=password)


def password_user(srv, root, uid, *policies):
    """A RAM user (see test_ram.new_user) with a console password."""
    user = T.new_user(srv, root, uid, *policies)
    set_password(root, user)
    return user


def signed_in(srv, user):
    """A console session of `user`, signed in with the user's console password."""
    c = Console(srv)
    r = c.login_password(user.account, user.name, PASSWORD)
    assert r.status_code == 303, (r.status_code, r.text[:500])
    return c


# ============================================================================ 1. sessions


def test_unauthenticated_get_redirects_to_login_and_post_is_refused(srv, world):
    c = Console(srv)
    for path in ("/", "/buckets", "/buckets/%s" % world["bucket"], "/kms", "/ram"):
        r = c.get(path)
        assert is_login_redirect(r), (path, r.status_code)
    r = c.post("/buckets", {"name": unique_bucket_name("anon"), "region": REGION}, csrf="00" * 32)
    assert r.status_code == 401 and "Sign in" in r.text
    r = c.upload(world["bucket"], "anon.txt", b"x", token="00" * 32)
    assert r.status_code == 401
    assert object_body(srv, world["bucket"], "anon.txt") is None
    # A made-up session id is no session.
    c.sid = secrets.token_hex(32)
    assert is_login_redirect(c.get("/buckets"))


def test_root_key_login_sets_a_strict_httponly_session_cookie(srv, uid):
    c = Console(srv)
    r = c.login_key(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert r.status_code == 303 and r.headers["location"] == "/buckets"
    assert COOKIE_RE.match(r.headers["set-cookie"]), r.headers["set-cookie"]
    page = c.get("/buckets")
    assert page.status_code == 200
    assert text_of(page.text, "create-bucket-title") == "Create Bucket"
    assert "root of %s" % uid in page.text


def test_pages_are_not_cached_framed_or_open_to_foreign_scripts(srv, root_console, world):
    for path in ("/buckets", "/buckets/%s" % world["bucket"], "/kms", "/ram"):
        r = root_console.get(path)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-frame-options"] == "DENY", path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
    r = root_console.get("/buckets/%s/download" % world["bucket"], key=world["key"])
    assert r.content == SECRET_BYTES and r.headers["cache-control"] == "no-store"
    login = Console(srv).get("/login")
    assert login.status_code == 200 and login.headers["cache-control"] == "no-store"
    assert login.headers["x-frame-options"] == "DENY"


def test_session_id_and_csrf_token_are_fresh_per_login(srv):
    a, b = Console(srv), Console(srv)
    a.login_key(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    b.login_key(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert a.sid and b.sid and a.sid != b.sid
    assert len(a.csrf) == 64 and a.csrf != b.csrf
    assert a.get("/buckets").status_code == 200 and b.get("/buckets").status_code == 200


@pytest.mark.parametrize("case", ["wrong secret", "unknown key id", "disabled key"])
def test_bad_access_key_login_is_refused(srv, root, uid, case):
    user = T.new_user(srv, root, uid)
    assert Console(srv).login_key(user.key_id, user.secret).status_code == 303  # the pair itself is good
    key_id, secret = user.key_id, user.secret
    if case == "wrong secret":
        secret = user.secret[:-1] + ("A" if user.secret[-1] != "A" else "B")
    elif case == "unknown key id":
        key_id = "LTAI" + uuid.uuid4().hex[:20]
    else:
        root(UpdateAccessKeyRequest, UserName=user.name, UserAccessKeyId=user.key_id, Status="Inactive")
    r = Console(srv).login_key(key_id, secret)
    assert r.status_code == 401
    assert "arca_session" not in r.headers.get("set-cookie", "")
    assert text_of(r.text, "login-error") == BAD_KEY_LOGIN


def test_console_password_set_with_the_ram_api_signs_in(srv, root, uid):
    user = password_user(srv, root, uid)
    c = signed_in(srv, user)
    assert COOKIE_RE.match("arca_session=%s; Path=/; HttpOnly; SameSite=Strict" % c.sid)
    assert "%s @ %s" % (user.name, uid) in c.get("/buckets").text


def test_console_password_set_by_root_in_the_console_signs_in(srv, root, uid, root_console):
    user = T.new_user(srv, root, uid)
    r = root_console.post("/ram/users/%s/password" % user.name, {"password": PASSWORD})
    assert r.status_code == 303, r.text[:500]
    c = signed_in(srv, user)
    assert "%s @ %s" % (user.name, uid) in c.get("/ram").text


def test_failed_password_logins_look_the_same(srv, root, uid):
    with_password = password_user(srv, root, uid)
    without_password = T.new_user(srv, root, uid)
    attempts = [
        (uid, with_password.name, PASSWORD + "x"),  # wrong password
        (uid, "nobody-" + uuid.uuid4().hex[:8], PASSWORD),  # unknown user
        (uid, without_password.name, PASSWORD),  # user without a console password
        (uid, without_password.name, ""),
        ("1" * 16, with_password.name, PASSWORD),  # another (unknown) account
    ]
    answers = set()
    for account, user, password in attempts:
        r = Console(srv).login_password(account, user, password)
        assert "arca_session" not in r.headers.get("set-cookie", ""), (account, user)
        answers.add((r.status_code, text_of(r.text, "login-error")))
    assert answers == {(401, BAD_PASSWORD_LOGIN)}


def test_logout_ends_the_session(srv, root_console):
    old_sid, token = root_console.sid, root_console.csrf
    r = root_console.post("/logout")
    assert is_login_redirect(r)
    assert "Max-Age=0" in r.headers["set-cookie"] and r.headers["set-cookie"].startswith("arca_session=;")
    # The old cookie is no longer a session: pages redirect, actions are refused.
    replay = Console(srv)
    replay.sid = old_sid
    assert is_login_redirect(replay.get("/buckets"))
    name = unique_bucket_name("after-logout")
    r = replay.post("/buckets", {"name": name, "region": REGION}, csrf=token)
    assert r.status_code == 401
    assert not bucket_exists(srv, name)


@pytest.mark.parametrize("change", ["delete", "disable"])
def test_session_of_a_deleted_or_disabled_access_key_ends_at_the_next_request(srv, root, uid, world, change):
    user = T.new_user(srv, root, uid, "AliyunOSSFullAccess")
    c = Console(srv)
    assert c.login_key(user.key_id, user.secret).status_code == 303
    assert world["bucket"] in c.get("/buckets").text
    token = c.csrf
    if change == "delete":
        root(DeleteAccessKeyRequest, UserName=user.name, UserAccessKeyId=user.key_id)
    else:
        root(UpdateAccessKeyRequest, UserName=user.name, UserAccessKeyId=user.key_id, Status="Inactive")
    # The very next request, an action, is not done: the session is over.
    name = unique_bucket_name("dead-key")
    r = c.post("/buckets", {"name": name, "region": REGION}, csrf=token)
    assert is_login_redirect(r) and "notice=" in r.headers["location"], (r.status_code, r.headers)
    assert not bucket_exists(srv, name)
    r = c.get("/buckets")
    assert is_login_redirect(r) and world["bucket"] not in r.text


def test_session_of_a_deleted_user_ends_at_the_next_request(srv, root, uid):
    user = T.new_user(srv, root, uid)
    set_password(root, user)
    c = signed_in(srv, user)
    assert c.get("/buckets").status_code == 200
    root(DeleteAccessKeyRequest, UserName=user.name, UserAccessKeyId=user.key_id)
    root(DeleteUserRequest, UserName=user.name)
    assert is_login_redirect(c.get("/buckets"))


def test_password_session_ends_when_the_console_password_is_removed(srv, root, uid):
    """Removing a user's console password (RAM DeleteLoginProfile) revokes console access, as disabling
    an access key ends the sessions signed in with it."""
    user = password_user(srv, root, uid, "AliyunOSSFullAccess")
    c = signed_in(srv, user)
    assert c.get("/buckets").status_code == 200
    root(DeleteLoginProfileRequest, UserName=user.name)
    assert Console(srv).login_password(uid, user.name, PASSWORD).status_code == 401
    r = c.get("/buckets")
    assert is_login_redirect(r), "the password session still works after DeleteLoginProfile (%d)" % r.status_code


def test_policy_change_is_seen_on_the_very_next_request(srv, root, uid, world):
    user = password_user(srv, root, uid, "AliyunOSSFullAccess")
    c = signed_in(srv, user)
    before = c.get("/buckets").text
    assert world["bucket"] in before and "Buckets cannot be listed" not in before
    root(DetachPolicyFromUserRequest, PolicyType="System", PolicyName="AliyunOSSFullAccess", UserName=user.name)
    after = c.get("/buckets")
    assert after.status_code == 200
    assert "Buckets cannot be listed: You are not authorized to do oss:ListBuckets" in html.unescape(after.text)
    assert world["bucket"] not in after.text
    root(AttachPolicyToUserRequest, PolicyType="System", PolicyName="AliyunOSSReadOnlyAccess", UserName=user.name)
    assert world["bucket"] in c.get("/buckets").text


# ============================================================================ 2. CSRF


@dataclass
class Action:
    """A console POST, and how to see (from outside the console) whether it took effect."""

    path: str
    form: dict
    observe: Callable[[], object]
    params: Optional[dict] = None
    # For actions whose only effect is their answer (simulate): checks the accepted response.
    accepted: Optional[Callable[[requests.Response], None]] = None


def _create_bucket(ctx):
    name = unique_bucket_name("csrf")
    form = {"name": name, "region": REGION, "acl": "private", "storage_class": "Standard", "sse": "None"}
    return Action("/buckets", form, lambda: bucket_exists(ctx.srv, name))


def _save_encryption(ctx):
    return Action(
        "/buckets/%s/encryption" % ctx.bucket, {"sse": "AES256", "kms_key": ""}, lambda: encryption(ctx.srv, ctx.bucket)
    )


def _delete_object(ctx):
    ctx.srv.bucket(ctx.bucket).put_object("victim.txt", b"still here")
    return Action(
        "/buckets/%s/delete-object" % ctx.bucket,
        {"key": "victim.txt"},
        lambda: object_body(ctx.srv, ctx.bucket, "victim.txt"),
    )


def _delete_bucket(ctx):
    return Action("/buckets/%s/delete" % ctx.bucket, {}, lambda: bucket_exists(ctx.srv, ctx.bucket))


def _create_key(ctx):
    form = {"spec": "Aliyun_AES_256", "origin": "Aliyun_KMS", "description": "csrf", "alias": "", "rotation_days": ""}
    return Action("/kms/keys", form, lambda: key_ids(ctx.root), params={"region": REGION})


def _disable_key(ctx):
    key_id = ctx.root(CreateKeyRequest, Description="csrf target")["KeyMetadata"]["KeyId"]
    return Action("/kms/keys/%s/disable" % key_id, {}, lambda: key_state(ctx.root, key_id), params={"region": REGION})


def _create_user(ctx):
    name = T.unique("csrfuser")
    return Action(
        "/ram/users", {"name": name, "display_name": ""}, lambda: ram_exists(ctx.root, GetUserRequest, UserName=name)
    )


def _set_password(ctx):
    user = T.new_user(ctx.srv, ctx.root, ctx.uid)

    def can_sign_in():
        return Console(ctx.srv).login_password(ctx.uid, user.name, PASSWORD).status_code == 303

    return Action("/ram/users/%s/password" % user.name, {"password": PASSWORD}, can_sign_in)


def _create_policy(ctx):
    name = T.unique("csrfpol")
    document = policy_doc(T.allow("oss:GetObject", "*"))
    return Action(
        "/ram/policies",
        {"name": name, "description": "", "document": document},
        lambda: ram_exists(ctx.root, GetPolicyRequest, PolicyName=name, PolicyType="Custom"),
    )


def _simulate(ctx):
    def accepted(r):
        assert r.status_code == 200 and text_of(r.text, "simulate-result").startswith("Allow")

    form = {"user": "", "action": "oss:GetObject", "resource": T.oss_arn(ctx.uid, "b", "k"), "source_ip": ""}
    return Action("/ram/simulate", form, lambda: None, accepted=accepted)


def _logout(ctx):
    return Action("/logout", {}, lambda: ctx.console.get("/buckets").status_code)


CSRF_ACTIONS = {
    "create bucket": _create_bucket,
    "save encryption": _save_encryption,
    "delete object": _delete_object,
    "delete bucket": _delete_bucket,
    "create key": _create_key,
    "disable key": _disable_key,
    "create user": _create_user,
    "set password": _set_password,
    "create policy": _create_policy,
    "simulate": _simulate,
    "logout": _logout,
}


@dataclass
class CsrfCtx:
    srv: ArcaServer
    root: T.Acs
    uid: str
    bucket: str
    console: Console


@pytest.mark.parametrize("action", list(CSRF_ACTIONS))
def test_post_without_the_session_csrf_token_is_refused_and_changes_nothing(srv, root, uid, bucket, root_console, action):
    ctx = CsrfCtx(srv, root, uid, bucket, root_console)
    act = CSRF_ACTIONS[action](ctx)
    before = act.observe()
    other = Console(srv)
    other.login_key(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    for label, token, headers in [
        ("no token", None, None),
        ("empty token", "", None),
        ("wrong token", secrets.token_hex(32), None),
        ("token of another session", other.csrf, None),
        ("truncated token", root_console.csrf[:-2], None),
        ("wrong token in the header", None, {"X-CSRF-Token": secrets.token_hex(32)}),
    ]:
        r = root_console.post(act.path, act.form, csrf=token, params=act.params, headers=headers)
        assert_csrf_refused(r)
        assert act.observe() == before, "%s: %s took effect" % (label, action)
    # The same request with the session's token does what it says (so the refusals above were CSRF's).
    r = root_console.post(act.path, act.form, params=act.params)
    assert r.status_code in (200, 303), (r.status_code, r.text[:500])
    if act.accepted:
        act.accepted(r)
    else:
        assert act.observe() != before, "%s with the right token had no effect" % action


def test_upload_without_the_csrf_header_is_refused_and_stores_nothing(srv, bucket, root_console):
    other = Console(srv)
    other.login_key(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    for token in (None, "", secrets.token_hex(32), other.csrf):
        r = root_console.upload(bucket, "up.txt", b"payload", sse="AES256", token=token)
        assert_csrf_refused(r)
        assert object_body(srv, bucket, "up.txt") is None
    # The token in the query or a form field does not count for uploads: only the header.
    r = root_console.http.put(
        "%s/buckets/%s/upload" % (root_console.url, bucket),
        params={"key": "up.txt", "csrf": root_console.csrf},
        data=b"payload",
        headers=root_console._headers(),
        timeout=30,
    )
    assert_csrf_refused(r)
    r = root_console.upload(bucket, "up.txt", b"payload", sse="AES256")
    assert r.status_code == 200 and r.json()["encryption"] == "AES256"
    assert object_body(srv, bucket, "up.txt") == b"payload"
    assert srv.bucket(bucket).head_object("up.txt").headers[SSE] == "AES256"


def test_csrf_token_of_one_session_is_refused_in_another(srv, root, uid, bucket):
    alice = password_user(srv, root, uid, "AliyunOSSFullAccess")
    victim, attacker = signed_in(srv, alice), Console(srv)
    attacker.login_key(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    name = unique_bucket_name("cross")
    assert_csrf_refused(victim.post("/buckets", {"name": name, "region": REGION}, csrf=attacker.csrf))
    assert_csrf_refused(attacker.post("/buckets", {"name": name, "region": REGION}, csrf=victim.csrf))
    assert_csrf_refused(victim.upload(bucket, "x", b"x", token=attacker.csrf))
    assert not bucket_exists(srv, name) and object_body(srv, bucket, "x") is None
    # A token does not survive its session either.
    old = victim.csrf
    assert victim.post("/logout").status_code == 303
    signed_in_again = signed_in(srv, alice)
    assert signed_in_again.csrf != old
    assert_csrf_refused(signed_in_again.post("/buckets", {"name": name, "region": REGION}, csrf=old))
    assert not bucket_exists(srv, name)


# ============================================================================ 3. authorization as the signed-in identity


@pytest.fixture(scope="module")
def nobody(srv, root, uid):
    """A RAM user with no policies at all, and its console session (password sign-in)."""
    user = password_user(srv, root, uid)
    return user, signed_in(srv, user)


GET_REFUSALS = [
    # (path template, query, status, message the page shows)
    ("/buckets", {}, 200, "Buckets cannot be listed: You are not authorized to do oss:ListBuckets"),
    ("/buckets/{bucket}", {}, 200, "Objects cannot be listed: You are not authorized to do oss:ListObjects"),
    ("/buckets/{bucket}/settings", {}, 403, "You are not authorized to do oss:GetBucketInfo"),
    ("/buckets/{bucket}/object", {"key": "{key}"}, 403, "You are not authorized to do oss:GetObject"),
    ("/buckets/{bucket}/download", {"key": "{key}"}, 403, "cannot be downloaded: You are not authorized to do oss:"),
    ("/kms", {}, 200, "Keys cannot be listed: Forbidden.NoPermission"),
    ("/kms/keys/{cmk}", {}, 403, "Forbidden.NoPermission"),
    ("/ram", {}, 200, "Users cannot be listed: NoPermission"),
    ("/ram/users/{bystander}", {}, 403, "NoPermission: You are not authorized to do ram:GetUser"),
    ("/ram/policies/{policy}", {}, 403, "NoPermission: You are not authorized to do ram:GetPolicy"),
]


@pytest.mark.parametrize("path,query,status,message", GET_REFUSALS, ids=[g[0] for g in GET_REFUSALS])
def test_user_without_policies_sees_only_refusals(srv, root, uid, cmk, world, nobody, path, query, status, message):
    user, c = nobody
    names = dict(bucket=world["bucket"], key=world["key"], cmk=cmk, bystander=world["bystander"].name, policy=world["policy"])
    r = c.get(path.format(**names), **{k: v.format(**names) for k, v in query.items()})
    page = html.unescape(r.text)
    assert r.status_code == status, (r.status_code, page[:800])
    assert message in page, page[:3000]
    # Nothing of the account leaks beyond what the URL itself names.
    assert SECRET_BYTES.decode() not in page
    head = srv.bucket(world["bucket"]).head_object(world["key"])
    assert head.etag not in page and str(head.server_crc) not in page
    if "{bucket}" not in path:
        assert world["bucket"] not in page
    if "{cmk}" not in path:
        assert cmk not in page
    assert world["bystander"].name not in page or "{bystander}" in path
    assert world["bystander"].user_id not in page and world["bystander"].key_id not in page
    assert world["policy"] not in page or "{policy}" in path
    assert world["policy_sid"] not in page
    assert 'id="key-details"' not in page and 'id="object-details"' not in page


def _refused_actions(srv, root, world, cmk, user):
    """(label, send(console) -> response, message, observe) for the actions a user without policies tries."""
    b, k = world["bucket"], world["key"]
    new_bucket, new_user, new_policy = unique_bucket_name("nobody"), T.unique("nobodyuser"), T.unique("nobodypol")
    return [
        (
            "create bucket",
            lambda c: c.post("/buckets", {"name": new_bucket, "region": REGION, "acl": "private", "sse": "AES256"}),
            "Access denied: You are not authorized to do oss:PutBucket",
            lambda: bucket_exists(srv, new_bucket),
        ),
        (
            "save encryption",
            lambda c: c.post("/buckets/%s/encryption" % b, {"sse": "KMS", "kms_key": cmk}),
            "You are not authorized to do oss:",
            lambda: encryption(srv, b),
        ),
        (
            "upload",
            lambda c: c.upload(b, "intruder.txt", b"intruder", sse="AES256"),
            "You are not authorized to do oss:PutObject",
            lambda: object_body(srv, b, "intruder.txt"),
        ),
        (
            "overwrite",
            lambda c: c.upload(b, k, b"overwritten"),
            "You are not authorized to do oss:PutObject",
            lambda: object_body(srv, b, k),
        ),
        (
            "delete object",
            lambda c: c.post("/buckets/%s/delete-object" % b, {"key": k}),
            "You are not authorized to do oss:DeleteObject",
            lambda: object_body(srv, b, k),
        ),
        (
            "delete bucket",
            lambda c: c.post("/buckets/%s/delete" % b),
            "You are not authorized to do oss:DeleteBucket",
            lambda: bucket_exists(srv, b),
        ),
        (
            "create key",
            lambda c: c.post("/kms/keys", {"spec": "Aliyun_AES_256", "origin": "Aliyun_KMS"}, params={"region": REGION}),
            "Forbidden.NoPermission",
            lambda: key_ids(root),
        ),
        (
            "disable key",
            lambda c: c.post("/kms/keys/%s/disable" % cmk, params={"region": REGION}),
            "Forbidden.NoPermission: This operation for acs:kms:%s:%s:key/%s is forbidden" % (REGION, user.account, cmk),
            lambda: key_state(root, cmk),
        ),
        (
            "create user",
            lambda c: c.post("/ram/users", {"name": new_user}),
            "NoPermission: You are not authorized to do ram:CreateUser",
            lambda: ram_exists(root, GetUserRequest, UserName=new_user),
        ),
        (
            "create policy",
            lambda c: c.post("/ram/policies", {"name": new_policy, "document": policy_doc(T.allow("oss:*", "*"))}),
            "NoPermission: You are not authorized to do ram:CreatePolicy",
            lambda: ram_exists(root, GetPolicyRequest, PolicyName=new_policy, PolicyType="Custom"),
        ),
        (
            "give itself a policy",
            lambda c: c.post("/ram/users/%s/attach" % user.name, {"policy": "System:AliyunOSSFullAccess"}),
            # (the console answers with the user page, whose ram:GetUser is refused too)
            "NoPermission: You are not authorized to do ram:",
            lambda: attached_policies(root, user.name),
        ),
    ]


REFUSED_ACTIONS = [
    "create bucket",
    "save encryption",
    "upload",
    "overwrite",
    "delete object",
    "delete bucket",
    "create key",
    "disable key",
    "create user",
    "create policy",
    "give itself a policy",
]


@pytest.mark.parametrize("label", REFUSED_ACTIONS)
def test_user_without_policies_cannot_act(srv, root, cmk, world, nobody, label):
    user, c = nobody
    _, send, message, observe = next(a for a in _refused_actions(srv, root, world, cmk, user) if a[0] == label)
    before = observe()
    r = send(c)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:800])
    shown = r.json()["error"] if r.headers["content-type"].startswith("application/json") else html.unescape(r.text)
    assert message in shown, shown[:3000]
    assert observe() == before


def test_read_only_user_lists_and_downloads_but_cannot_write(srv, root, uid, world):
    user = password_user(srv, root, uid, "AliyunOSSReadOnlyAccess")
    c = signed_in(srv, user)
    b, k = world["bucket"], world["key"]
    assert b in c.get("/buckets").text
    listing = c.get("/buckets/%s" % b)
    assert listing.status_code == 200 and 'data-key="%s"' % k in listing.text
    details = c.get("/buckets/%s/object" % b, key=k)
    assert details.status_code == 200 and text_of(details.text, "detail-size").startswith("%d bytes" % len(SECRET_BYTES))
    got = c.get("/buckets/%s/download" % b, key=k)
    assert got.status_code == 200 and got.content == SECRET_BYTES
    assert got.headers["content-disposition"] == "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (k, k)

    r = c.upload(b, "ro.txt", b"nope")
    assert r.status_code == 403 and "oss:PutObject" in r.json()["error"]
    assert object_body(srv, b, "ro.txt") is None
    r = c.post("/buckets/%s/delete-object" % b, {"key": k})
    assert r.status_code == 403 and "oss:DeleteObject" in r.text
    assert object_body(srv, b, k) == SECRET_BYTES
    r = c.post("/buckets/%s/encryption" % b, {"sse": "AES256"})
    assert r.status_code == 400
    assert "Access denied: You are not authorized to do oss:PutBucketEncryption" in text_of(r.text, "encryption-error")
    assert encryption(srv, b) is None


def test_download_of_cmk_object_without_kms_decrypt_shows_the_kms_refusal(srv, root, uid, cmk, bucket):
    b = srv.bucket(bucket)
    b.put_object("kms.bin", b"kms plaintext", headers={SSE: "KMS", SSE_KEY: cmk})
    b.put_object("aes.bin", b"aes plaintext", headers={SSE: "AES256"})
    user = password_user(srv, root, uid, [T.allow("oss:*", [T.oss_arn(uid, bucket), T.oss_arn(uid, bucket, "*")])])
    c = signed_in(srv, user)
    r = c.get("/buckets/%s/download" % bucket, key="kms.bin")
    assert r.status_code == 403
    assert KMS_FORBIDDEN in html.unescape(r.text)
    assert b"kms plaintext" not in r.content
    r = c.get("/buckets/%s/download" % bucket, key="aes.bin")
    assert r.status_code == 200 and r.content == b"aes plaintext"
    # The object page needs no key: it shows the metadata.
    assert text_of(c.get("/buckets/%s/object" % bucket, key="kms.bin").text, "detail-cmk") == cmk


def test_kms_key_page_names_only_buckets_the_user_may_see(srv, root, uid, cmk, bucket):
    """A user who may read a key but not list buckets must not learn bucket names from the key page."""
    srv.bucket(bucket).put_bucket_encryption(T.kms_rule(cmk))
    user = password_user(srv, root, uid, "AliyunKMSReadOnlyAccess")
    c = signed_in(srv, user)
    assert "You are not authorized to do oss:ListBuckets" in html.unescape(c.get("/buckets").text)
    r = c.get("/kms/keys/%s" % cmk, region=REGION)
    assert r.status_code == 200 and text_of(r.text, "key-state") == "Enabled"
    assert bucket not in r.text, "the key page lists bucket %s to a user without oss:ListBuckets" % bucket


# ============================================================================ 4. pages


def test_create_bucket_with_invalid_name_shows_the_error_next_to_the_field(srv, root_console):
    r = root_console.post("/buckets", {"name": "Bad_Name", "region": REGION, "acl": "private", "sse": "AES256"})
    assert r.status_code == 400
    assert text_of(r.text, "bucket-name-error") == "The specified bucket is not valid."
    # The dialog stays open with what was typed.
    assert re.search(r'<dialog id="create-bucket"[^>]* open', r.text)
    assert 'value="Bad_Name"' in r.text and 'id="create-sse-AES256" checked' in r.text
    assert not bucket_exists(srv, "bad-name") and "Bad_Name" not in [b.name for b in srv.service().list_buckets().buckets]


def test_create_bucket_with_unknown_region_is_refused(srv, root_console):
    name = unique_bucket_name("region")
    r = root_console.post("/buckets", {"name": name, "region": "mars-1"})
    assert r.status_code == 400 and text_of(r.text, "create-error") == "Choose one of the listed regions."
    assert not bucket_exists(srv, name)


def test_create_bucket_with_cmk_and_the_encryption_column(srv, root_console, cmk):
    names = {sse: unique_bucket_name("col-" + sse) for sse in ("None", "AES256", "SM4", "KMS")}
    for sse, name in names.items():
        form = {"name": name, "region": REGION, "acl": "private", "storage_class": "Standard", "sse": sse}
        if sse == "KMS":
            form.update(kms_key=cmk, kms_data_sm4="on")
        r = root_console.post("/buckets", form)
        assert r.status_code == 303 and r.headers["location"].startswith("/buckets/%s?notice=" % name)
    assert encryption(srv, names["None"]) is None
    assert encryption(srv, names["AES256"]) == ("AES256", "")
    assert encryption(srv, names["SM4"]) == ("SM4", "")
    assert encryption(srv, names["KMS"]) == ("KMS", cmk)
    assert srv.bucket(names["KMS"]).get_bucket_encryption().kms_data_encryption == "SM4"
    page = root_console.get("/buckets").text
    assert bucket_row_encryption(page, names["None"]) == "None"
    assert bucket_row_encryption(page, names["AES256"]) == "AES256"
    assert bucket_row_encryption(page, names["SM4"]) == "SM4"
    assert bucket_row_encryption(page, names["KMS"]) == "KMS (%s, data SM4)" % cmk


def test_save_encryption_in_basic_settings(srv, root_console, bucket, cmk):
    r = root_console.post("/buckets/%s/encryption" % bucket, {"sse": "KMS", "kms_key": cmk})
    assert r.status_code == 303
    assert encryption(srv, bucket) == ("KMS", cmk)
    page = root_console.get("/buckets/%s/settings" % bucket).text
    assert text_of(page, "current-encryption") == "KMS (%s)" % cmk
    assert root_console.post("/buckets/%s/encryption" % bucket, {"sse": "None"}).status_code == 303
    assert encryption(srv, bucket) is None


def test_policy_with_a_comment_shows_line_and_column(srv, root, root_console):
    name = T.unique("commented")
    document = '{\n  "Version": "1", // a comment\n  "Statement": []\n}'
    r = root_console.post("/ram/policies", {"name": name, "description": "d", "document": document})
    assert r.status_code == 400
    error = text_of(r.text, "policy-error")
    assert error and "line" in error and "column" in error, error
    assert "line 2" in error, error
    assert text_of(r.text, "policy-document") == document, "the editor keeps the document"
    assert not ram_exists(root, GetPolicyRequest, PolicyName=name, PolicyType="Custom")


@pytest.mark.parametrize("sse", ["KMS", "AES256", "SM4"])
def test_object_details_match_head_object(srv, root, root_console, bucket, cmk, sse):
    data = b"details " + uuid.uuid4().bytes * 100
    headers = {SSE: sse}
    if sse == "KMS":
        headers[SSE_KEY] = cmk
    srv.bucket(bucket).put_object("dir/obj.bin", data, headers=headers)
    head = srv.bucket(bucket).head_object("dir/obj.bin")
    stored = object_records(srv.data_dir)[(bucket, "dir/obj.bin")]["encryption"]
    page = root_console.get("/buckets/%s/object" % bucket, key="dir/obj.bin")
    assert page.status_code == 200
    t = page.text
    assert text_of(t, "detail-size").startswith("%d bytes" % len(data)) and head.content_length == len(data)
    assert text_of(t, "detail-etag") == head.etag
    assert text_of(t, "detail-crc64") == str(head.server_crc) == str(crc64(data))
    assert text_of(t, "detail-encryption") == head.headers[SSE] == sse
    if sse == "KMS":
        assert text_of(t, "detail-cmk") == head.headers[SSE_KEY] == cmk
        # The version number as stored with the object (the KMS API names versions by UUID instead).
        assert text_of(t, "detail-key-version") == str(stored["key_version"]) == "1"
        assert text_of(t, "detail-data-algorithm") == "AES256"
    else:
        assert text_of(t, "detail-cmk") is None
        assert text_of(t, "detail-key-version") == str(stored["key_version"])
        assert text_of(t, "detail-data-algorithm") == sse
    got = root_console.get("/buckets/%s/download" % bucket, key="dir/obj.bin")
    assert got.content == data and got.headers["content-disposition"] == (
        "attachment; filename=\"obj.bin\"; filename*=UTF-8''obj.bin"
    )


def test_kms_usage_grows_after_a_kms_upload(srv, root, root_console, bucket, cmk):
    def usage():
        page = root_console.get("/kms", region=REGION).text
        return int(text_of(page, "usage-total")), page

    total, page = usage()
    assert 'data-key-id="%s"' % cmk in page
    r = root_console.upload(bucket, "k.bin", b"kms via console", sse="KMS:" + cmk)
    assert r.status_code == 200 and r.json()["encryption"] == "KMS", r.text
    head = srv.bucket(bucket).head_object("k.bin")
    assert (head.headers[SSE], head.headers[SSE_KEY]) == ("KMS", cmk)
    after, page = usage()
    assert after > total
    assert after == sum(root.kms_usage().values())
    row = re.search(r"<tr><td>%s</td><td>GenerateDataKey</td><td>(\d+)</td></tr>" % cmk, page)
    assert row and int(row.group(1)) == T.metered(root, cmk, "GenerateDataKey") >= 1


def test_simulate_shows_allow_and_deny(srv, root, uid, root_console, bucket):
    user = T.new_user(
        srv,
        root,
        uid,
        [
            T.allow("oss:GetObject", T.oss_arn(uid, bucket, "*")),
            T.deny("oss:GetObject", T.oss_arn(uid, bucket, "private/*")),
        ],
    )
    policy = user.policies[0]

    def simulate(user_name, action, resource):
        r = root_console.post("/ram/simulate", {"user": user_name, "action": action, "resource": resource, "source_ip": ""})
        assert r.status_code == 200
        return text_of(r.text, "simulate-result")

    assert simulate(user.name, "oss:GetObject", T.oss_arn(uid, bucket, "a.txt")) .startswith("Allow — by %s" % policy)
    assert simulate(user.name, "oss:GetObject", T.oss_arn(uid, bucket, "private/a.txt")).startswith(
        "Deny (explicit) — by %s" % policy
    )
    assert simulate(user.name, "oss:PutObject", T.oss_arn(uid, bucket, "a.txt")) == "Implicit deny — no statement allows it"
    assert simulate("", "oss:PutObject", T.oss_arn(uid, bucket, "a.txt")).startswith("Allow")
    # A user who may not read the user's policies cannot simulate it.
    nosy = signed_in(srv, password_user(srv, root, uid))
    r = nosy.post("/ram/simulate", {"user": user.name, "action": "oss:GetObject", "resource": T.oss_arn(uid, bucket, "a")})
    assert "NoPermission" in text_of(r.text, "simulate-result")


# ============================================================================ object keys the console must address exactly


def test_keys_with_surrounding_spaces_are_shown_downloaded_and_deleted_exactly(srv, root_console, bucket):
    b = srv.bucket(bucket)
    b.put_object("k", b"plain")
    b.put_object("k ", b"trailing space")
    page = root_console.get("/buckets/%s/object" % bucket, key="k ")
    assert text_of(page.text, "detail-size").startswith("14 bytes"), "details of 'k ' show another object"
    assert root_console.get("/buckets/%s/download" % bucket, key="k ").content == b"trailing space"
    r = root_console.post("/buckets/%s/delete-object" % bucket, {"key": "k "})
    assert r.status_code == 303
    assert object_body(srv, bucket, "k") == b"plain", "deleting 'k ' deleted 'k'"
    assert object_body(srv, bucket, "k ") is None


def test_download_of_a_key_with_a_control_character_answers(srv, root_console, bucket):
    srv.bucket(bucket).put_object("line\nbreak.txt", b"nl")
    try:
        r = root_console.get("/buckets/%s/download" % bucket, key="line\nbreak.txt")
    except requests.ConnectionError as e:
        pytest.fail("the console dropped the connection without a response: %r" % e)
    assert r.status_code == 200 and r.content == b"nl"


def test_sign_in_needs_the_forms_own_token(srv):
    """Login CSRF: a sign-in posted from elsewhere (no token, or a token without its cookie) is refused."""
    url = srv.console_url + "/login"
    form = {"method": "key", "access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET}
    r = requests.post(url, data=form, allow_redirects=False, timeout=30)
    assert r.status_code == 403 and "arca_session" not in r.headers.get("set-cookie", "")
    page = requests.get(url, timeout=30)
    token = re.search(r'name="login_token" value="([0-9a-f]+)"', page.text).group(1)
    r = requests.post(url, data=dict(form, login_token=token), allow_redirects=False, timeout=30)
    assert r.status_code == 403, "a token without its cookie is not enough"
    cookie = LOGIN_COOKIE_RE.search(page.headers["set-cookie"]).group(1)
    assert "SameSite=Strict" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    r = requests.post(
        url, data=dict(form, login_token=token), headers={"Cookie": "arca_login=" + cookie}, allow_redirects=False, timeout=30
    )
    assert r.status_code == 303 and "arca_session=" in r.headers["set-cookie"]


def test_a_new_access_keys_secret_is_shown_once_and_never_in_a_url(srv, root, uid, root_console):
    user = T.new_user(srv, root, uid)
    r = root_console.post("/ram/users/%s/create-key" % user.name)
    assert r.status_code == 303
    location = r.headers["location"]
    key_id = re.search(r"new_key_id=([A-Za-z0-9]+)", location).group(1)
    page = root_console.get(location.split("?")[0], new_key_id=key_id)
    secret = text_of(page.text, "new-key-secret")
    assert len(secret) == 30 and secret not in location
    # The pair works, and the secret is gone on the next view of the page.
    assert Console(srv).login_key(key_id, secret).status_code == 303
    again = root_console.get(location.split("?")[0], new_key_id=key_id)
    assert secret not in again.text and 'id="new-key-secret"' not in again.text
