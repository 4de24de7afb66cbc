"""RAM users and policies, bucket policies and ACLs, and SSE-KMS on behalf of the caller
(spec kms-ram.md Part B: B1 grammar, B2 evaluation, B3 OSS actions/ARNs, B4 KMS authorization,
B5 OSS-on-behalf; Part C: the RAM API), driven by the Alibaba Cloud RAM/KMS SDKs, oss2 and
the `arca admin` CLI.

The module runs its own server so that the audit log and the KMS metering only see this file's
requests.
"""

import json
import subprocess
import time
import uuid
from urllib.parse import urlparse

import oss2
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkkms.request.v20160120 import (
    CreateKeyRequest,
    DecryptRequest,
    DescribeKeyRequest,
    EncryptRequest,
    ListKeysRequest,
)
from aliyunsdkram.request.v20150501 import (
    AddUserToGroupRequest,
    AttachPolicyToGroupRequest,
    AttachPolicyToUserRequest,
    CreateAccessKeyRequest,
    CreateGroupRequest,
    CreatePolicyRequest,
    CreatePolicyVersionRequest,
    CreateUserRequest,
    DeleteUserRequest,
    DetachPolicyFromUserRequest,
    GetPolicyRequest,
    GetUserRequest,
    ListAccessKeysRequest,
    ListPoliciesRequest,
)

from arca_testlib import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    ARCA_BIN,
    REGION,
    ArcaServer,
    unique_bucket_name,
    wait_until,
)

SSE = "x-oss-server-side-encryption"
SSE_KEY = "x-oss-server-side-encryption-key-id"
KMS_FORBIDDEN = "This request is forbidden by kms."
CLI_BOUND = 5.0  # seconds we poll for a change made by another process (documented bound: 1 s)


# ============================================================================ clients and helpers


class Acs:
    """Old-SDK (aliyunsdkcore) client for the RPC APIs Arca serves on its KMS listener (KMS and RAM)."""

    def __init__(self, endpoint, key_id=ACCESS_KEY_ID, secret=ACCESS_KEY_SECRET):
        self.endpoint = endpoint
        self.client = AcsClient(key_id, secret, REGION)

    def __call__(self, request_module, **params):
        req = getattr(request_module, request_module.__name__.rsplit(".", 1)[-1])()
        req.set_endpoint(self.endpoint)
        req.set_accept_format("JSON")
        for name, value in params.items():
            getattr(req, "set_" + name)(value)
        return json.loads(self.client.do_action_with_exception(req))

    def fails(self, request_module, **params):
        """The ServerException of a call that must fail."""
        with pytest.raises(ServerException) as e:
            self(request_module, **params)
        return e.value

    def error(self, request_module, **params):
        e = self.fails(request_module, **params)
        return e.get_http_status(), e.get_error_code()

    def kms_usage(self):
        """{(key_id, action): count} from the KMS extension action DescribeKmsUsage (metering of the account)."""
        req = CommonRequest(domain=urlparse(self.endpoint).netloc, version="2016-01-20", action_name="DescribeKmsUsage")
        req.set_protocol_type("http")
        req.set_method("POST")
        req.set_accept_format("JSON")
        body = json.loads(self.client.do_action_with_exception(req))
        return {(e["KeyId"], e["Action"]): e["Count"] for e in body["Usage"]["Entry"]}


def metered(root, key_id, action="GenerateDataKey"):
    return root.kms_usage().get((key_id, action), 0)


# -- policies


def stmt(effect, actions, resources, condition=None, principal=None, sid=None):
    s = {"Effect": effect, "Action": actions, "Resource": resources}
    if sid:
        s["Sid"] = sid
    if condition:
        s["Condition"] = condition
    if principal is not None:
        s["Principal"] = principal
    return s


def allow(actions, resources, **kw):
    return stmt("Allow", actions, resources, **kw)


def deny(actions, resources, **kw):
    return stmt("Deny", actions, resources, **kw)


def doc(*statements):
    return json.dumps({"Version": "1", "Statement": list(statements)}, indent=2)


def oss_arn(uid, bucket="*", key=None):
    return "acs:oss:*:%s:%s" % (uid, bucket if key is None else "%s/%s" % (bucket, key))


def key_arn(uid, key_id):
    return "acs:kms:%s:%s:key/%s" % (REGION, uid, key_id)


def kms_allow(uid, key_id, *actions):
    return allow(["kms:" + a for a in actions], key_arn(uid, key_id))


# -- users


class User:
    def __init__(self, server, name, user_id, key_id, secret, account):
        self.server = server
        self.name = name
        self.user_id = user_id
        self.key_id = key_id
        self.secret = secret
        self.account = account

    @property
    def auth(self):
        return oss2.Auth(self.key_id, self.secret)

    def bucket(self, name):
        return oss2.Bucket(self.auth, self.server.endpoint, name)

    def acs(self):
        return Acs(self.server.kms_endpoint, self.key_id, self.secret)

    @property
    def principal(self):
        return "acs:ram::%s:user/%s" % (self.account, self.name)


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def create_policy(ram, document, name=None):
    name = name or unique("pol")
    ram(CreatePolicyRequest, PolicyName=name, PolicyDocument=document)
    return name


def attach(ram, user, policy, system=False):
    ram(AttachPolicyToUserRequest, PolicyType="System" if system else "Custom", PolicyName=policy, UserName=user.name)


def new_user(server, ram, uid, *policies):
    """A RAM user with one access key; each of `policies` is a system policy name or a list of statements
    (made into one custom policy). Returns the User; `user.policies` names what was attached."""
    name = unique("user")
    created = ram(CreateUserRequest, UserName=name)["User"]
    key = ram(CreateAccessKeyRequest, UserName=name)["AccessKey"]
    user = User(server, name, created["UserId"], key["AccessKeyId"], key["AccessKeySecret"], uid)
    user.policies = []
    for p in policies:
        if isinstance(p, str):
            attach(ram, user, p, system=True)
            user.policies.append(p)
        else:
            pname = create_policy(ram, doc(*p))
            attach(ram, user, pname)
            user.policies.append(pname)
    return user


def denied(fn, *args, **kwargs):
    """The oss2 AccessDenied of a call that must be refused."""
    with pytest.raises(oss2.exceptions.AccessDenied) as e:
        fn(*args, **kwargs)
    assert e.value.status == 403 and e.value.code == "AccessDenied"
    return e.value


def kms_denied(fn, *args, **kwargs):
    e = denied(fn, *args, **kwargs)
    assert e.message == KMS_FORBIDDEN, e.message
    return e


def not_kms_denied(fn, *args, **kwargs):
    e = denied(fn, *args, **kwargs)
    assert e.message != KMS_FORBIDDEN, "an OSS permission denial must not be reported as a KMS one"
    return e


def encryption_rule(bucket):
    """(algorithm, key id) of a bucket's default encryption, read as the bucket's root; None without a rule."""
    try:
        r = bucket.get_bucket_encryption()
    except oss2.exceptions.NoSuchServerSideEncryptionRule:
        return None
    return r.sse_algorithm, r.kms_master_keyid or ""


def kms_rule(key_id=""):
    return oss2.models.ServerSideEncryptionRule(sse_algorithm="KMS", kms_master_keyid=key_id)


def admin(server, *args, check=True):
    out = subprocess.run(
        [str(ARCA_BIN), "admin", "--data-dir", str(server.data_dir), *args], capture_output=True, text=True, timeout=60
    )
    if check:
        assert out.returncode == 0, "arca admin %s failed:\n%s%s" % (" ".join(args), out.stdout, out.stderr)
    return out.stdout


def parse_key_lines(text):
    fields = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    return fields["AccessKeyId"], fields["AccessKeySecret"]


def audit_lines(server):
    path = server.data_dir / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ============================================================================ fixtures


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """This module's own server: its audit log and metering see only these tests."""
    s = ArcaServer(tmp_path_factory.mktemp("arca-ram"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def root_auth():
    return oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture(scope="module")
def root(srv):
    """Root-signed KMS/RAM client (both APIs share the KMS listener)."""
    return Acs(srv.kms_endpoint)




@pytest.fixture(scope="module")
def uid(srv, root_auth):
    """The root account's UID (the bucket owner id)."""
    b = oss2.Bucket(root_auth, srv.endpoint, unique_bucket_name("uid"))
    b.create_bucket()
    owner = b.get_bucket_info().owner.id
    assert owner.isdigit() and len(owner) == 16, owner
    assert oss2.Service(root_auth, srv.endpoint).list_buckets().owner.id == owner
    return owner


@pytest.fixture(scope="module")
def cmk(root):
    """A CMK named explicitly (by id) in bucket rules and headers."""
    return root(CreateKeyRequest, Description="ram tests")["KeyMetadata"]


@pytest.fixture
def bucket(request, srv, root_auth):
    """A fresh private bucket of the root account, handled as root."""
    b = oss2.Bucket(root_auth, srv.endpoint, unique_bucket_name(request.node.name))
    b.create_bucket()
    return b


@pytest.fixture
def bucket_factory(request, srv, root_auth):
    """Makes more fresh private buckets of the root account."""

    def make():
        b = oss2.Bucket(root_auth, srv.endpoint, unique_bucket_name(request.node.name))
        b.create_bucket()
        return b

    return make


@pytest.fixture
def cmk_bucket(bucket, cmk):
    """A bucket whose default encryption names the CMK."""
    bucket.put_bucket_encryption(kms_rule(cmk["KeyId"]))
    return bucket


@pytest.fixture
def default_kms_bucket(bucket):
    """A bucket whose default encryption is KMS with the service key alias/acs/oss."""
    bucket.put_bucket_encryption(kms_rule())
    return bucket


# ============================================================================ 1. SSE-KMS with a named CMK


def test_put_bucket_encryption_naming_a_cmk_needs_kms_list_and_describe(srv, root, uid, cmk, bucket):
    oss_only = new_user(srv, root, uid, [allow(["oss:PutBucketEncryption", "oss:GetBucketEncryption"], oss_arn(uid, bucket.bucket_name))])
    kms_denied(oss_only.bucket(bucket.bucket_name).put_bucket_encryption, kms_rule(cmk["KeyId"]))
    assert encryption_rule(bucket) is None, "a refused rule must not be stored"

    # With a rule already in place, a refused change leaves it as it was.
    bucket.put_bucket_encryption(oss2.models.ServerSideEncryptionRule(sse_algorithm="AES256"))
    kms_denied(oss_only.bucket(bucket.bucket_name).put_bucket_encryption, kms_rule(cmk["KeyId"]))
    assert encryption_rule(bucket) == ("AES256", "")

    with_kms = new_user(
        srv, root, uid,
        [
            allow(["oss:PutBucketEncryption", "oss:GetBucketEncryption"], oss_arn(uid, bucket.bucket_name)),
            allow(["kms:List*", "kms:DescribeKey"], key_arn(uid, cmk["KeyId"])),
            allow("kms:List*", ["acs:kms:%s:%s:key" % (REGION, uid), "acs:kms:%s:%s:alias" % (REGION, uid)]),
        ],
    )
    ub = with_kms.bucket(bucket.bucket_name)
    ub.put_bucket_encryption(kms_rule(cmk["KeyId"]))
    assert encryption_rule(bucket) == ("KMS", cmk["KeyId"])
    r = ub.get_bucket_encryption()
    assert (r.sse_algorithm, r.kms_master_keyid) == ("KMS", cmk["KeyId"])


def test_upload_into_cmk_bucket_needs_kms_generate_data_key(srv, root, uid, cmk, cmk_bucket, bucket_factory):
    name = cmk_bucket.bucket_name
    plain = bucket_factory()  # no default encryption: the CMK is named by the request header
    header = {SSE: "KMS", SSE_KEY: cmk["KeyId"]}
    oss_only = new_user(srv, root, uid, [allow("oss:PutObject", oss_arn(uid, "*"))])
    before = metered(root, cmk["KeyId"])
    kms_denied(oss_only.bucket(name).put_object, "denied", b"secret")
    assert not cmk_bucket.object_exists("denied")
    kms_denied(oss_only.bucket(plain.bucket_name).put_object, "denied-header", b"x", headers=header)
    assert not plain.object_exists("denied-header")
    assert metered(root, cmk["KeyId"]) == before, "a refused upload must not generate a data key"

    writer = new_user(srv, root, uid, [allow("oss:PutObject", oss_arn(uid, "*")), kms_allow(uid, cmk["KeyId"], "GenerateDataKey")])
    r = writer.bucket(name).put_object("allowed", b"secret")
    assert (r.headers[SSE], r.headers[SSE_KEY]) == ("KMS", cmk["KeyId"])
    assert cmk_bucket.get_object("allowed").read() == b"secret"
    r = writer.bucket(plain.bucket_name).put_object("allowed-header", b"named", headers=header)
    assert (r.headers[SSE], r.headers[SSE_KEY]) == ("KMS", cmk["KeyId"])
    assert plain.get_object("allowed-header").read() == b"named"
    assert metered(root, cmk["KeyId"]) == before + 2


def test_download_of_cmk_object_full_and_range_needs_kms_decrypt(srv, root, uid, cmk, cmk_bucket):
    name = cmk_bucket.bucket_name
    data = bytes(range(256)) * 400
    cmk_bucket.put_object("obj", data)
    oss_only = new_user(srv, root, uid, [allow("oss:GetObject", oss_arn(uid, name, "*"))])
    ub = oss_only.bucket(name)
    before = metered(root, cmk["KeyId"], "Decrypt")
    kms_denied(ub.get_object, "obj")
    kms_denied(ub.get_object, "obj", byte_range=(1000, 1999))
    assert metered(root, cmk["KeyId"], "Decrypt") == before

    reader = new_user(
        srv, root, uid, [allow("oss:GetObject", oss_arn(uid, name, "*")), kms_allow(uid, cmk["KeyId"], "Decrypt")]
    )
    g = reader.bucket(name).get_object("obj")
    assert g.read() == data
    assert (g.headers[SSE], g.headers[SSE_KEY]) == ("KMS", cmk["KeyId"])
    assert reader.bucket(name).get_object("obj", byte_range=(1000, 1999)).read() == data[1000:2000]


# ============================================================================ 1'. the default service key alias/acs/oss


def test_put_bucket_encryption_with_default_key_needs_only_the_oss_permission(srv, root, uid, bucket):
    name = bucket.bucket_name
    no_oss = new_user(srv, root, uid, [allow("oss:GetBucketEncryption", oss_arn(uid, name))])
    not_kms_denied(no_oss.bucket(name).put_bucket_encryption, kms_rule())
    assert encryption_rule(bucket) is None

    oss_only = new_user(srv, root, uid, [allow("oss:PutBucketEncryption", oss_arn(uid, name))])
    oss_only.bucket(name).put_bucket_encryption(kms_rule())
    assert encryption_rule(bucket) == ("KMS", "")


def test_upload_with_default_key_needs_only_oss_put_object(srv, root, uid, default_kms_bucket):
    name = default_kms_bucket.bucket_name
    reader_only = new_user(srv, root, uid, [allow("oss:GetObject", oss_arn(uid, name, "*"))])
    not_kms_denied(reader_only.bucket(name).put_object, "denied", b"x")
    not_kms_denied(reader_only.bucket(name).put_object, "denied-header", b"x", headers={SSE: "KMS"})
    assert not default_kms_bucket.object_exists("denied")
    assert not default_kms_bucket.object_exists("denied-header")

    writer = new_user(srv, root, uid, [allow("oss:PutObject", oss_arn(uid, name, "*"))])
    r = writer.bucket(name).put_object("allowed", b"by default key")
    service_key = root(DescribeKeyRequest, KeyId="alias/acs/oss")["KeyMetadata"]["KeyId"]
    assert (r.headers[SSE], r.headers[SSE_KEY]) == ("KMS", service_key)
    before = metered(root, service_key)
    not_kms_denied(reader_only.bucket(name).put_object, "denied-again", b"x")
    assert metered(root, service_key) == before, "a refused upload must not generate a data key"
    assert default_kms_bucket.get_object("allowed").read() == b"by default key"


def test_download_with_default_key_needs_only_oss_get_object(srv, root, uid, default_kms_bucket):
    name = default_kms_bucket.bucket_name
    data = b"0123456789" * 1000
    default_kms_bucket.put_object("obj", data)
    writer_only = new_user(srv, root, uid, [allow("oss:PutObject", oss_arn(uid, name, "*"))])
    not_kms_denied(writer_only.bucket(name).get_object, "obj")
    not_kms_denied(writer_only.bucket(name).get_object, "obj", byte_range=(5, 14))

    reader = new_user(srv, root, uid, [allow("oss:GetObject", oss_arn(uid, name, "*"))])
    g = reader.bucket(name).get_object("obj")
    assert g.read() == data and g.headers[SSE] == "KMS"
    assert reader.bucket(name).get_object("obj", byte_range=(5, 14)).read() == data[5:15]


def test_anonymous_sse_kms_requests_always_fail(srv, default_kms_bucket):
    name = default_kms_bucket.bucket_name
    default_kms_bucket.put_object("obj", b"kms data")
    default_kms_bucket.put_object("plain", b"plain data", headers={SSE: "AES256"})
    default_kms_bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    anon = oss2.Bucket(oss2.AnonymousAuth(), srv.endpoint, name)
    assert anon.get_object("plain").read() == b"plain data"  # AES256 needs no KMS permission
    denied(anon.get_object, "obj")
    denied(anon.put_object, "anon-kms", b"x")
    assert not default_kms_bucket.object_exists("anon-kms")
    anon.put_object("anon-aes", b"y", headers={SSE: "AES256"})
    assert default_kms_bucket.get_object("anon-aes").read() == b"y"


def test_aes256_and_sm4_need_no_kms_permission(srv, root, uid, bucket):
    name = bucket.bucket_name
    user = new_user(srv, root, uid, [allow(["oss:PutObject", "oss:GetObject"], oss_arn(uid, name, "*"))])
    ub = user.bucket(name)
    for algorithm in ("AES256", "SM4"):
        r = ub.put_object(algorithm, algorithm.encode(), headers={SSE: algorithm})
        assert r.headers[SSE] == algorithm and SSE_KEY not in r.headers
        assert ub.get_object(algorithm).read() == algorithm.encode()
        assert ub.get_object(algorithm, byte_range=(1, 2)).read() == algorithm.encode()[1:3]


# ============================================================================ 2. multipart, append, copy


def test_multipart_initiate_into_cmk_bucket_without_generate_data_key_stores_no_upload(srv, root, uid, cmk, cmk_bucket):
    name = cmk_bucket.bucket_name
    user = new_user(srv, root, uid, [allow(["oss:PutObject", "oss:ListMultipartUploads"], [oss_arn(uid, name), oss_arn(uid, name, "*")])])
    before = metered(root, cmk["KeyId"])
    kms_denied(user.bucket(name).init_multipart_upload, "mp")
    assert cmk_bucket.list_multipart_uploads().upload_list == []
    assert metered(root, cmk["KeyId"]) == before


def test_upload_part_and_append_continuing_a_cmk_object_need_decrypt(srv, root, uid, cmk, cmk_bucket):
    name = cmk_bucket.bucket_name
    user = new_user(
        srv, root, uid, [allow("oss:PutObject", oss_arn(uid, name, "*")), kms_allow(uid, cmk["KeyId"], "GenerateDataKey")]
    )
    up = cmk_bucket.init_multipart_upload("mp")
    kms_denied(user.bucket(name).upload_part, "mp", up.upload_id, 1, b"p" * 1024)
    assert cmk_bucket.list_parts("mp", up.upload_id).parts == []

    cmk_bucket.append_object("app", 0, b"first")
    kms_denied(user.bucket(name).append_object, "app", 5, b"second")
    assert cmk_bucket.get_object("app").read() == b"first"

    full = new_user(
        srv, root, uid,
        [allow("oss:PutObject", oss_arn(uid, name, "*")), kms_allow(uid, cmk["KeyId"], "GenerateDataKey", "Decrypt")],
    )
    part = full.bucket(name).upload_part("mp", up.upload_id, 1, b"p" * 1024)
    cmk_bucket.complete_multipart_upload("mp", up.upload_id, [oss2.models.PartInfo(1, part.etag)])
    assert cmk_bucket.get_object("mp").read() == b"p" * 1024
    full.bucket(name).append_object("app", 5, b"second")
    assert cmk_bucket.get_object("app").read() == b"firstsecond"


def test_copy_from_cmk_object_without_decrypt_stores_nothing(srv, root, uid, cmk, cmk_bucket, bucket_factory):
    name = cmk_bucket.bucket_name
    cmk_bucket.put_object("src", b"copy me")
    plain = bucket_factory()  # destination without default encryption: no GenerateDataKey involved
    oss = allow(["oss:GetObject", "oss:PutObject"], [oss_arn(uid, name, "*"), oss_arn(uid, plain.bucket_name, "*")])
    user = new_user(srv, root, uid, [oss, kms_allow(uid, cmk["KeyId"], "GenerateDataKey")])
    kms_denied(user.bucket(plain.bucket_name).copy_object, name, "src", "dst")
    assert not plain.object_exists("dst")
    kms_denied(user.bucket(name).copy_object, name, "src", "dst")
    assert not cmk_bucket.object_exists("dst")

    # Into a KMS destination the copy also needs GenerateDataKey.
    plain.put_object("plain-src", b"plain")
    decrypt_only = new_user(srv, root, uid, [oss, kms_allow(uid, cmk["KeyId"], "Decrypt")])
    kms_denied(decrypt_only.bucket(name).copy_object, plain.bucket_name, "plain-src", "dst2")
    assert not cmk_bucket.object_exists("dst2")

    both = new_user(srv, root, uid, [oss, kms_allow(uid, cmk["KeyId"], "Decrypt", "GenerateDataKey")])
    both.bucket(plain.bucket_name).copy_object(name, "src", "dst")
    assert plain.get_object("dst").read() == b"copy me"


# ============================================================================ 3. bucket policies and ACLs


def test_bucket_policy_roundtrip_and_missing_policy(uid, bucket):
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.get_bucket_policy()
    assert (e.value.status, e.value.code) == (404, "NoSuchBucketPolicy")
    policy = doc(allow("oss:GetObject", oss_arn(uid, bucket.bucket_name, "*"), principal=["*"]))
    bucket.put_bucket_policy(policy)
    assert json.loads(bucket.get_bucket_policy().policy) == json.loads(policy)
    bucket.delete_bucket_policy()
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.get_bucket_policy()
    assert e.value.code == "NoSuchBucketPolicy"


def test_anonymous_read_through_public_read_acl(srv, bucket):
    bucket.put_object("o", b"public")
    anon = oss2.Bucket(oss2.AnonymousAuth(), srv.endpoint, bucket.bucket_name)
    denied(anon.get_object, "o")
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert anon.get_object("o").read() == b"public"
    assert anon.head_object("o").content_length == 6
    assert [o.key for o in anon.list_objects().object_list] == ["o"]
    denied(anon.put_object, "anon-write", b"x")  # public-read is not public-read-write
    assert not bucket.object_exists("anon-write")


def test_anonymous_read_through_bucket_policy_only_under_its_prefix(srv, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("public/a", b"a")
    bucket.put_object("private/b", b"b")
    bucket.put_bucket_policy(doc(allow("oss:GetObject", oss_arn(uid, name, "public/*"), principal=["*"])))
    anon = oss2.Bucket(oss2.AnonymousAuth(), srv.endpoint, name)
    assert anon.get_object("public/a").read() == b"a"
    denied(anon.get_object, "private/b")
    denied(anon.list_objects)  # the policy grants objects, not ListObjects on the bucket
    denied(anon.put_object, "public/new", b"x")


def test_explicit_deny_in_bucket_policy_beats_full_access(srv, root, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("open/x", b"open")
    bucket.put_object("secret/x", b"secret")
    user = new_user(srv, root, uid, "AliyunOSSFullAccess")
    ub = user.bucket(name)
    assert ub.get_object("secret/x").read() == b"secret"
    bucket.put_bucket_policy(doc(deny("oss:*", oss_arn(uid, name, "secret/*"), principal=["*"])))
    denied(ub.get_object, "secret/x")
    denied(ub.put_object, "secret/y", b"y")
    assert ub.get_object("open/x").read() == b"open"
    assert bucket.get_object("secret/x").read() == b"secret", "the owner's root is not subject to policies"


def test_explicit_deny_in_identity_policy_beats_full_access(srv, root, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("open/x", b"open")
    bucket.put_object("secret/x", b"secret")
    user = new_user(srv, root, uid, "AliyunOSSFullAccess", [deny("oss:GetObject", oss_arn(uid, name, "secret/*"))])
    denied(user.bucket(name).get_object, "secret/x")
    assert user.bucket(name).get_object("open/x").read() == b"open"


def test_source_ip_conditions(srv, root, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("o", b"data")
    user = new_user(srv, root, uid, "AliyunOSSFullAccess")
    ub = user.bucket(name)
    assert ub.get_object("o").read() == b"data"
    # Deny everything from outside 10.0.0.0/8: the tests come from 127.0.0.1.
    bucket.put_bucket_policy(
        doc(
            deny(
                "oss:*",
                [oss_arn(uid, name), oss_arn(uid, name, "*")],
                principal=["*"],
                condition={"NotIpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}},
            )
        )
    )
    denied(ub.get_object, "o")
    denied(ub.list_objects)
    # Allow anonymous reads from 127.0.0.1/32 only.
    anon = oss2.Bucket(oss2.AnonymousAuth(), srv.endpoint, name)
    bucket.put_bucket_policy(
        doc(allow("oss:GetObject", oss_arn(uid, name, "*"), principal=["*"], condition={"IpAddress": {"acs:SourceIp": "127.0.0.1/32"}}))
    )
    assert anon.get_object("o").read() == b"data"
    assert ub.get_object("o").read() == b"data"
    bucket.put_bucket_policy(
        doc(allow("oss:GetObject", oss_arn(uid, name, "*"), principal=["*"], condition={"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}))
    )
    denied(anon.get_object, "o")


def test_list_objects_allowed_only_under_a_prefix_condition(srv, root, uid, bucket):
    name = bucket.bucket_name
    for k in ("allowed/1", "allowed/2", "other/3"):
        bucket.put_object(k, b"x")
    user = new_user(srv, root, uid)  # no identity policy: the bucket policy alone decides
    bucket.put_bucket_policy(
        doc(
            allow(
                "oss:ListObjects",
                oss_arn(uid, name),
                principal=[user.user_id],
                condition={"StringLike": {"oss:Prefix": ["allowed/*"]}},
            )
        )
    )
    ub = user.bucket(name)
    assert [o.key for o in ub.list_objects(prefix="allowed/").object_list] == ["allowed/1", "allowed/2"]
    denied(ub.list_objects, prefix="other/")
    denied(ub.list_objects)
    other = new_user(srv, root, uid)  # not named by the policy
    denied(other.bucket(name).list_objects, prefix="allowed/")


def test_list_objects_v2_with_prefix_and_delimiter_conditions_in_identity_policy(srv, root, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("home/alice/a", b"x")
    bucket.put_object("home/bob/b", b"x")
    condition = {"StringLike": {"oss:Prefix": "home/alice/*"}, "StringEquals": {"oss:Delimiter": "/"}}
    user = new_user(srv, root, uid, [allow("oss:ListObjects", oss_arn(uid, name), condition=condition)])
    ub = user.bucket(name)
    assert [o.key for o in ub.list_objects_v2(prefix="home/alice/", delimiter="/").object_list] == ["home/alice/a"]
    denied(ub.list_objects_v2, prefix="home/alice/")  # no delimiter: the StringEquals condition fails
    denied(ub.list_objects_v2, prefix="home/bob/", delimiter="/")


def test_malformed_bucket_policy_reports_line_and_column(uid, bucket):
    name = bucket.bucket_name
    text = '{\n  "Version": "1", // a comment\n  "Statement": []\n}'
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_bucket_policy(text)
    assert (e.value.status, e.value.code) == (400, "MalformedPolicy")
    assert "line 2" in e.value.message and "column" in e.value.message, e.value.message
    # No Principal: a bucket policy needs one.
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_bucket_policy(doc(allow("oss:GetObject", oss_arn(uid, name, "*"))))
    assert (e.value.status, e.value.code) == (400, "MalformedPolicy")
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.get_bucket_policy()
    assert e.value.code == "NoSuchBucketPolicy", "a refused policy must not be stored"


def test_bucket_policy_resource_of_another_bucket_is_refused(uid, bucket):
    other = unique_bucket_name("elsewhere")
    for resource in (oss_arn(uid, other, "*"), oss_arn(uid, other)):
        with pytest.raises(oss2.exceptions.ServerError) as e:
            bucket.put_bucket_policy(doc(allow("oss:GetObject", resource, principal=["*"])))
        assert (e.value.status, e.value.code) == (400, "MalformedPolicy"), resource
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.get_bucket_policy()
    assert e.value.code == "NoSuchBucketPolicy"


def test_other_account_is_denied_until_a_bucket_policy_names_it(srv, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("shared/o", b"for the partner")
    out = admin(srv, "account", "create", unique("partner"))
    first = out.splitlines()[0].split()
    assert first[0] == "account" and len(first[1]) == 16 and first[1].isdigit(), out
    other_uid = first[1]
    assert other_uid != uid
    key_id, secret = parse_key_lines(out)
    theirs = oss2.Bucket(oss2.Auth(key_id, secret), srv.endpoint, name)

    def code():
        try:
            theirs.get_object("shared/o").read()
            return "allowed"
        except oss2.exceptions.OssError as e:
            return e.code

    # The new account's key reaches the running server within the bound; then it is refused.
    assert wait_until(lambda: code() == "AccessDenied", CLI_BOUND), code()
    denied(theirs.put_object, "shared/new", b"x")
    # Its own root may create its own bucket, which our root may not read.
    own = oss2.Bucket(oss2.Auth(key_id, secret), srv.endpoint, unique_bucket_name("partner-own"))
    own.create_bucket()
    own.put_object("o", b"partner's")
    denied(oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), srv.endpoint, own.bucket_name).get_object, "o")

    bucket.put_bucket_policy(doc(allow("oss:GetObject", oss_arn(uid, name, "shared/*"), principal=[other_uid])))
    assert theirs.get_object("shared/o").read() == b"for the partner"
    denied(theirs.put_object, "shared/new", b"x")
    assert not bucket.object_exists("shared/new")


# ============================================================================ 4. the RAM API


def test_ram_sdk_flow_user_works_exactly_as_its_policy_says(srv, root, uid, bucket):
    name = bucket.bucket_name
    user_name = unique("sdk")
    created = root(CreateUserRequest, UserName=user_name, DisplayName="SDK user")["User"]
    assert created["UserName"] == user_name and created["UserId"]
    key = root(CreateAccessKeyRequest, UserName=user_name)["AccessKey"]
    assert key["Status"] == "Active" and key["AccessKeySecret"] and key["CreateDate"].endswith("Z")
    listed = root(ListAccessKeysRequest, UserName=user_name)["AccessKeys"]["AccessKey"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert all("AccessKeySecret" not in k for k in listed)

    policy_name = unique("writer")
    document = doc(allow(["oss:PutObject", "oss:GetObject"], oss_arn(uid, name, "uploads/*"), sid="Uploads"))
    p = root(CreatePolicyRequest, PolicyName=policy_name, PolicyDocument=document, Description="uploads only")["Policy"]
    assert (p["PolicyName"], p["PolicyType"], p["DefaultVersion"]) == (policy_name, "Custom", "v1")
    got = root(GetPolicyRequest, PolicyName=policy_name, PolicyType="Custom")
    assert json.loads(got["DefaultPolicyVersion"]["PolicyDocument"]) == json.loads(document)
    names = [x["PolicyName"] for x in root(ListPoliciesRequest, PolicyType="Custom", MaxItems=1000)["Policies"]["Policy"]]
    assert policy_name in names
    system = [x["PolicyName"] for x in root(ListPoliciesRequest, PolicyType="System")["Policies"]["Policy"]]
    assert {"AdministratorAccess", "AliyunOSSFullAccess", "AliyunOSSReadOnlyAccess", "AliyunKMSFullAccess"} <= set(system)
    root(AttachPolicyToUserRequest, PolicyType="Custom", PolicyName=policy_name, UserName=user_name)

    ub = oss2.Bucket(oss2.Auth(key["AccessKeyId"], key["AccessKeySecret"]), srv.endpoint, name)
    ub.put_object("uploads/a", b"mine")
    assert ub.get_object("uploads/a").read() == b"mine"
    denied(ub.put_object, "elsewhere/a", b"x")
    denied(ub.delete_object, "uploads/a")
    denied(ub.list_objects)
    denied(oss2.Service(oss2.Auth(key["AccessKeyId"], key["AccessKeySecret"]), srv.endpoint).list_buckets)
    assert bucket.get_object("uploads/a").read() == b"mine"
    assert not bucket.object_exists("elsewhere/a")


def test_group_policies_are_inherited(srv, root, uid, bucket):
    bucket.put_object("o", b"via group")
    user = new_user(srv, root, uid)
    denied(user.bucket(bucket.bucket_name).get_object, "o")
    group = unique("readers")
    root(CreateGroupRequest, GroupName=group)
    root(AttachPolicyToGroupRequest, PolicyType="System", PolicyName="AliyunOSSReadOnlyAccess", GroupName=group)
    root(AddUserToGroupRequest, GroupName=group, UserName=user.name)
    assert user.bucket(bucket.bucket_name).get_object("o").read() == b"via group"
    denied(user.bucket(bucket.bucket_name).put_object, "p", b"x")  # read-only: Get*, List*


def test_user_without_ram_permissions_cannot_manage_ram(srv, root, uid):
    user = new_user(srv, root, uid, "AliyunOSSFullAccess")
    assert user.acs().error(CreateUserRequest, UserName=unique("nope")) == (403, "NoPermission")
    assert user.acs().error(CreatePolicyRequest, PolicyName=unique("nope"), PolicyDocument=doc(allow("*", "*"))) == (403, "NoPermission")
    # Nor can it grant itself more.
    assert user.acs().error(AttachPolicyToUserRequest, PolicyType="System", PolicyName="AdministratorAccess", UserName=user.name) == (
        403,
        "NoPermission",
    )
    reader = new_user(srv, root, uid, "AliyunRAMReadOnlyAccess")
    assert reader.acs()(GetUserRequest, UserName=user.name)["User"]["UserName"] == user.name
    assert reader.acs().error(CreateUserRequest, UserName=unique("nope")) == (403, "NoPermission")
    admin_user = new_user(srv, root, uid, "AliyunRAMFullAccess")
    made = unique("by-admin")
    assert admin_user.acs()(CreateUserRequest, UserName=made)["User"]["UserName"] == made


def test_ram_errors(srv, root, uid):
    name = unique("dup")
    root(CreateUserRequest, UserName=name)
    assert root.error(CreateUserRequest, UserName=name) == (409, "EntityAlreadyExists.User")
    root(CreateAccessKeyRequest, UserName=name)
    assert root.error(DeleteUserRequest, UserName=name) == (409, "DeleteConflict.User.AccessKey")
    assert root(GetUserRequest, UserName=name)["User"]["UserName"] == name, "a refused delete keeps the user"
    missing = unique("missing")
    assert root.error(GetUserRequest, UserName=missing) == (404, "EntityNotExist.User")
    assert root.error(DeleteUserRequest, UserName=missing) == (404, "EntityNotExist.User")
    assert root.error(CreateAccessKeyRequest, UserName=missing) == (404, "EntityNotExist.User")

    bad = '{\n  "Version": "1", // not JSON\n  "Statement": []\n}'
    e = root.fails(CreatePolicyRequest, PolicyName=unique("bad"), PolicyDocument=bad)
    assert (e.get_http_status(), e.get_error_code()) == (400, "MalformedPolicyDocument")
    msg = e.get_error_msg()
    assert "line 2" in msg and "column 19" in msg and "comment" in msg, msg  # the "//" is at column 19
    e = root.fails(CreatePolicyRequest, PolicyName=unique("bad"), PolicyDocument=json.dumps({"Version": "2", "Statement": []}))
    assert (e.get_http_status(), e.get_error_code()) == (400, "MalformedPolicyDocument")


# ============================================================================ 5. policy changes take effect


def test_detach_takes_effect_on_the_next_request(srv, root, uid, bucket):
    bucket.put_object("o", b"x")
    user = new_user(srv, root, uid, [allow("oss:GetObject", oss_arn(uid, bucket.bucket_name, "*"))])
    ub = user.bucket(bucket.bucket_name)
    assert ub.get_object("o").read() == b"x"
    root(DetachPolicyFromUserRequest, PolicyType="Custom", PolicyName=user.policies[0], UserName=user.name)
    denied(ub.get_object, "o")
    attach(root, user, user.policies[0])
    assert ub.get_object("o").read() == b"x"


def test_new_default_policy_version_takes_effect_on_the_next_request(srv, root, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("a/o", b"a")
    bucket.put_object("b/o", b"b")
    user = new_user(srv, root, uid, [allow("oss:GetObject", oss_arn(uid, name, "*"))])
    ub = user.bucket(name)
    assert ub.get_object("b/o").read() == b"b"
    v = root(
        CreatePolicyVersionRequest,
        PolicyName=user.policies[0],
        PolicyDocument=doc(allow("oss:GetObject", oss_arn(uid, name, "a/*"))),
        SetAsDefault="true",
    )["PolicyVersion"]
    assert v["VersionId"] == "v2"
    denied(ub.get_object, "b/o")
    assert ub.get_object("a/o").read() == b"a"
    # A non-default version changes nothing.
    root(CreatePolicyVersionRequest, PolicyName=user.policies[0], PolicyDocument=doc(allow("oss:*", "*")), SetAsDefault="false")
    denied(ub.get_object, "b/o")


def test_changes_made_by_the_admin_cli_reach_the_running_server(srv, root, uid, bucket, tmp_path):
    name = bucket.bucket_name
    bucket.put_object("o", b"cli")
    user_name = unique("cli")
    assert user_name in admin(srv, "user", "create", user_name)
    key_id, secret = parse_key_lines(admin(srv, "key", "create", "--user", user_name))
    ub = oss2.Bucket(oss2.Auth(key_id, secret), srv.endpoint, name)

    def code():
        try:
            ub.get_object("o").read()
            return "allowed"
        except oss2.exceptions.OssError as e:
            return e.code

    assert wait_until(lambda: code() == "AccessDenied", CLI_BOUND), code()
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(doc(allow("oss:GetObject", oss_arn(uid, name, "*"))))
    policy = unique("clipol")
    admin(srv, "policy", "create", policy, str(policy_file))
    admin(srv, "policy", "attach", policy, "--user", user_name)
    t0 = time.monotonic()
    assert wait_until(lambda: code() == "allowed", CLI_BOUND), code()
    granted_after = time.monotonic() - t0

    admin(srv, "policy", "detach", policy, "--user", user_name)
    t0 = time.monotonic()
    assert wait_until(lambda: code() == "AccessDenied", CLI_BOUND), code()
    revoked_after = time.monotonic() - t0

    admin(srv, "policy", "attach", "AliyunOSSReadOnlyAccess", "--user", user_name, "--system")
    assert wait_until(lambda: code() == "allowed", CLI_BOUND), code()
    # Informational: the documented bound is 1 s (the polls above allow for a loaded machine).
    print("CLI grant seen after %.2fs, revoke after %.2fs" % (granted_after, revoked_after))


# ============================================================================ 6. the KMS API for RAM users


def test_kms_api_without_policy_is_forbidden(srv, root, uid, cmk):
    user = new_user(srv, root, uid)
    kms = user.acs()
    assert kms.error(DescribeKeyRequest, KeyId=cmk["KeyId"]) == (403, "Forbidden.NoPermission")
    assert kms.error(ListKeysRequest) == (403, "Forbidden.NoPermission")
    assert kms.error(CreateKeyRequest) == (403, "Forbidden.NoPermission")


def test_kms_read_only_access_lists_but_cannot_create(srv, root, uid, cmk):
    user = new_user(srv, root, uid, "AliyunKMSReadOnlyAccess")
    kms = user.acs()
    ids = [k["KeyId"] for k in kms(ListKeysRequest, PageSize=100)["Keys"]["Key"]]
    assert cmk["KeyId"] in ids
    assert kms(DescribeKeyRequest, KeyId=cmk["KeyId"])["KeyMetadata"]["KeyId"] == cmk["KeyId"]
    assert kms.error(CreateKeyRequest) == (403, "Forbidden.NoPermission")
    assert kms.error(EncryptRequest, KeyId=cmk["KeyId"], Plaintext="eA==") == (403, "Forbidden.NoPermission")


def test_kms_encrypt_allowed_decrypt_not(srv, root, uid, cmk):
    other = root(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    user = new_user(srv, root, uid, [kms_allow(uid, cmk["KeyId"], "Encrypt")])
    kms = user.acs()
    blob = kms(EncryptRequest, KeyId=cmk["KeyId"], Plaintext="aGVsbG8=")["CiphertextBlob"]
    assert kms.error(DecryptRequest, CiphertextBlob=blob) == (403, "Forbidden.NoPermission")
    assert kms.error(EncryptRequest, KeyId=other, Plaintext="aGVsbG8=") == (403, "Forbidden.NoPermission")
    assert root(DecryptRequest, CiphertextBlob=blob)["Plaintext"] == "aGVsbG8="

    # Decrypt is authorized on the key inside the blob, not on anything the caller names.
    decrypter = new_user(srv, root, uid, [kms_allow(uid, other, "Decrypt")])
    assert decrypter.acs().error(DecryptRequest, CiphertextBlob=blob) == (403, "Forbidden.NoPermission")
    right = new_user(srv, root, uid, [kms_allow(uid, cmk["KeyId"], "Decrypt")])
    assert right.acs()(DecryptRequest, CiphertextBlob=blob)["Plaintext"] == "aGVsbG8="


# ============================================================================ 7. the audit log


def test_audit_log_records_denials_and_key_uses(srv, root, uid, cmk, cmk_bucket):
    name = cmk_bucket.bucket_name
    cmk_bucket.put_object("secret", b"s")
    nobody = new_user(srv, root, uid)
    denied(nobody.bucket(name).get_object, "secret")

    def deny_line():
        return [
            l
            for l in audit_lines(srv)
            if l.get("decision") == "deny" and l.get("principal") == nobody.principal and l.get("action") == "oss:GetObject"
        ]

    lines = wait_until(deny_line, 5)
    assert lines, "no deny line for %s" % nobody.principal
    line = lines[-1]
    # The request's resource carries the bucket's region (policies write "*" there, which matches it).
    assert line["resource"] in (oss_arn(uid, name, "secret"), "acs:oss:%s:%s:%s/secret" % (REGION, uid, name)), line
    assert line["reason"] and line["time"], line

    writer = new_user(
        srv, root, uid, [allow("oss:PutObject", oss_arn(uid, name, "*")), kms_allow(uid, cmk["KeyId"], "GenerateDataKey")]
    )
    writer.bucket(name).put_object("audited", b"a")
    version = root(DescribeKeyRequest, KeyId=cmk["KeyId"])["KeyMetadata"]["PrimaryKeyVersion"]

    def use_line():
        return [
            l
            for l in audit_lines(srv)
            if l.get("decision") == "allow" and l.get("action") == "kms:GenerateDataKey" and l.get("principal") == writer.principal
        ]

    uses = wait_until(use_line, 5)
    assert uses, "no key-use line for the upload by %s" % writer.principal
    use = uses[-1]
    assert use["key_id"] == cmk["KeyId"] and use["key_version"] == version, use
    assert use["resource"] == key_arn(uid, cmk["KeyId"]), use


# ============================================================================ 8. arca admin simulate


def test_admin_simulate_names_the_deciding_policy(srv, root, uid, tmp_path):
    user_name = unique("sim")
    admin(srv, "user", "create", user_name)
    policy = unique("simpol")
    f = tmp_path / "sim.json"
    f.write_text(
        doc(
            allow("oss:GetObject", oss_arn(uid, "sim-bucket", "*"), sid="ReadAll"),
            deny("oss:GetObject", oss_arn(uid, "sim-bucket", "private/*")),
            deny("oss:PutObject", oss_arn(uid, "sim-bucket", "*"), condition={"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}}),
            allow("oss:PutObject", oss_arn(uid, "sim-bucket", "*")),
        )
    )
    admin(srv, "policy", "create", policy, str(f))
    admin(srv, "policy", "attach", policy, "--user", user_name)

    def simulate(action, resource, *context):
        args = ["simulate", "--user", user_name, "--action", action, "--resource", resource]
        for c in context:
            args += ["--context", c]
        return admin(srv, *args).strip()

    assert simulate("oss:GetObject", oss_arn(uid, "sim-bucket", "public/a")) == "Allow (by %s statement 1 (Sid ReadAll))" % policy
    assert simulate("oss:GetObject", oss_arn(uid, "sim-bucket", "private/a")) == "Deny (explicitly, by %s statement 2)" % policy
    assert simulate("oss:DeleteObject", oss_arn(uid, "sim-bucket", "public/a")) == "ImplicitDeny (no statement allows it)"
    assert simulate("oss:PutObject", oss_arn(uid, "sim-bucket", "x"), "acs:SourceIp=10.1.2.3") == "Allow (by %s statement 4)" % policy
    assert (
        simulate("oss:PutObject", oss_arn(uid, "sim-bucket", "x"), "acs:SourceIp=192.168.1.1")
        == "Deny (explicitly, by %s statement 3)" % policy
    )
    # System policies are named too.
    admin(srv, "policy", "attach", "AliyunOSSReadOnlyAccess", "--user", user_name, "--system")
    assert simulate("oss:ListObjects", oss_arn(uid, "sim-bucket")).startswith("Allow (by AliyunOSSReadOnlyAccess statement ")
