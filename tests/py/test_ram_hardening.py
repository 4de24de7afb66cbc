"""Regression suite for the security review of RAM, bucket policies and KMS authorization.

Each test asserts the fixed behaviour of a defect the review confirmed (ReEncrypt bypass, RAM
resource confusion, cross-account Deny, empty/ARN principals, KMS use before authorization,
unaudited anonymous refusals, leaky deny messages, key-existence oracle, ACL headers without
the ACL permission), plus the legitimate uses each fix must keep working.

The module runs its own server so that its audit log and KMS metering see only these requests.
"""

import json
import time
import uuid
from urllib.parse import urlparse

import oss2
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.request import CommonRequest
from aliyunsdkkms.request.v20160120 import CreateKeyRequest, DescribeKeyRequest, EncryptRequest
from aliyunsdkram.request.v20150501 import AttachPolicyToGroupRequest, CreateAccessKeyRequest, CreateGroupRequest, CreateUserRequest

import test_ram as T
from arca_testlib import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ArcaServer, error_details, raw_request, unique_bucket_name, wait_until

KMS_VERSION = "2016-01-20"
RAM_VERSION = "2015-05-01"
GENERIC_DENY = "You are denied by bucket policy or your own policy."
RANDOM_KEY = str(uuid.uuid4())


# ============================================================================ fixtures


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = ArcaServer(tmp_path_factory.mktemp("arca-ram-hardening"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def root_auth():
    return oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture(scope="module")
def root(srv):
    return T.Acs(srv.kms_endpoint)


@pytest.fixture(scope="module")
def uid(srv, root_auth):
    b = oss2.Bucket(root_auth, srv.endpoint, unique_bucket_name("uid"))
    b.create_bucket()
    return b.get_bucket_info().owner.id


@pytest.fixture(scope="module")
def partner(srv):
    """A second account (B), made with the admin CLI: its id, root auth and data dir handle."""
    out = T.admin(srv, "account", "create", T.unique("partner"))
    first = out.splitlines()[0].split()
    assert first[0] == "account" and first[1].isdigit(), out
    key_id, secret = T.parse_key_lines(out)
    auth = oss2.Auth(key_id, secret)

    def seen():
        try:
            oss2.Service(auth, srv.endpoint).list_buckets()
            return True
        except oss2.exceptions.OssError:
            return False

    assert wait_until(seen, T.CLI_BOUND), "the new account's root key never reached the server"
    return {"uid": first[1], "auth": auth}


@pytest.fixture
def bucket(request, srv, root_auth):
    b = oss2.Bucket(root_auth, srv.endpoint, unique_bucket_name(request.node.name))
    b.create_bucket()
    return b


# ============================================================================ helpers


def rpc(acs, version, action, **params):
    """A raw RPC call (KMS or RAM) signed by `acs`; returns the JSON body."""
    req = CommonRequest(domain=urlparse(acs.endpoint).netloc, version=version, action_name=action)
    req.set_protocol_type("http")
    req.set_method("POST")
    req.set_accept_format("JSON")
    for k, v in params.items():
        req.add_query_param(k, v)
    return json.loads(acs.client.do_action_with_exception(req))


def rpc_error(acs, version, action, **params):
    """(status, code) of an RPC call that must fail."""
    with pytest.raises(ServerException) as e:
        rpc(acs, version, action, **params)
    return e.value.get_http_status(), e.value.get_error_code()


def ram_denied(acs, action, **params):
    assert rpc_error(acs, RAM_VERSION, action, **params) == (403, "NoPermission"), action


def kms_no_permission(acs, action, **params):
    assert rpc_error(acs, KMS_VERSION, action, **params) == (403, "Forbidden.NoPermission"), action


def new_key(root, description="hardening"):
    return root(CreateKeyRequest, Description=description)["KeyMetadata"]["KeyId"]


def anonymous(srv, name):
    return oss2.Bucket(oss2.AnonymousAuth(), srv.endpoint, name)


def new_audit_lines(srv, since):
    return T.audit_lines(srv)[since:]


def anonymous_denials(srv, since):
    return [l for l in new_audit_lines(srv, since) if l.get("decision") == "deny" and l.get("principal") == "anonymous"]


def user_with_key(root, uid, name, *statements):
    """A RAM user named `name` with one access key and (optionally) one custom policy of `statements`."""
    root(CreateUserRequest, UserName=name)
    key = root(CreateAccessKeyRequest, UserName=name)["AccessKey"]
    if statements:
        root(T.AttachPolicyToUserRequest, PolicyType="Custom", PolicyName=T.create_policy(root, T.doc(*statements)), UserName=name)
    return key


def policy_names_of(root, user_name):
    body = rpc(root, RAM_VERSION, "ListPoliciesForUser", UserName=user_name)
    return [p["PolicyName"] for p in body["Policies"]["Policy"]]


def group_names_of(root, user_name):
    body = rpc(root, RAM_VERSION, "ListGroupsForUser", UserName=user_name)
    return [g["GroupName"] for g in body["Groups"]["Group"]]


def partner_user(srv, partner, tmp_path, *statements):
    """A RAM user of account B made with `arca admin --account`: (name, user id, oss2 auth, policy name or None)."""
    acct = ("--account", partner["uid"])
    name = T.unique("b-user")
    out = T.admin(srv, *acct, "user", "create", name)
    user_id = out.split("(id ", 1)[1].split(")", 1)[0]
    assert user_id.isdigit(), out
    key_id, secret = T.parse_key_lines(T.admin(srv, *acct, "key", "create", "--user", name))
    policy = None
    if statements:
        f = tmp_path / ("%s.json" % name)
        f.write_text(T.doc(*statements))
        policy = T.unique("b-pol")
        T.admin(srv, *acct, "policy", "create", policy, str(f))
        T.admin(srv, *acct, "policy", "attach", policy, "--user", name)
    return name, user_id, oss2.Auth(key_id, secret), policy


def outcome(fn):
    """'allowed', or the OSS error code of a refused call (for polling CLI changes)."""
    try:
        fn()
        return "allowed"
    except oss2.exceptions.OssError as e:
        return e.code


def put_policy_error(bucket, policy):
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_bucket_policy(json.dumps(policy))
    return e.value.status, e.value.code


def stored_policy(bucket):
    try:
        return json.loads(bucket.get_bucket_policy().policy)
    except oss2.exceptions.ServerError as e:
        assert e.code == "NoSuchBucketPolicy", e.code
        return None


# ============================================================================ 1. ReEncrypt


def test_reencrypt_authorizes_the_key_of_the_blob_it_decrypts(srv, root, uid):
    secret_key = new_key(root, "victim")
    mine = new_key(root, "mine")
    victim_blob = root(EncryptRequest, KeyId=secret_key, Plaintext="top-secret")["CiphertextBlob"]
    user = T.new_user(srv, root, uid, [T.kms_allow(uid, mine, "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo")])
    ua = user.acs()
    kms_no_permission(ua, "Decrypt", CiphertextBlob=victim_blob)
    own_blob = rpc(ua, KMS_VERSION, "Encrypt", KeyId=mine, Plaintext="x")["CiphertextBlob"]
    # The review's bypass: the victim's blob is decrypted, the caller's own blob only authorized.
    kms_no_permission(ua, "ReEncrypt", CiphertextBlob=victim_blob, SourceCiphertextBlob=own_blob, DestinationKeyId=mine)
    kms_no_permission(ua, "ReEncrypt", CiphertextBlob=victim_blob, DestinationKeyId=mine)
    # Its own blob re-encrypts fine.
    again = rpc(ua, KMS_VERSION, "ReEncrypt", CiphertextBlob=own_blob, DestinationKeyId=mine)
    assert rpc(ua, KMS_VERSION, "Decrypt", CiphertextBlob=again["CiphertextBlob"])["Plaintext"] == "x"


def test_reencrypt_needs_reencrypt_to_on_the_destination(srv, root, uid):
    mine = new_key(root, "from")
    other = new_key(root, "to")
    user = T.new_user(srv, root, uid, [T.kms_allow(uid, mine, "Encrypt", "ReEncryptFrom", "ReEncryptTo")])
    ua = user.acs()
    blob = rpc(ua, KMS_VERSION, "Encrypt", KeyId=mine, Plaintext="aGk=")["CiphertextBlob"]
    kms_no_permission(ua, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=other)
    kms_no_permission(ua, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=RANDOM_KEY)


def test_reencrypt_by_crypto_user_round_trips(srv, root, uid):
    source = new_key(root, "src")
    dest = new_key(root, "dst")
    ua = T.new_user(srv, root, uid, "AliyunKMSCryptoUserAccess").acs()
    blob = rpc(ua, KMS_VERSION, "Encrypt", KeyId=source, Plaintext="aGVsbG8=")["CiphertextBlob"]
    r = rpc(ua, KMS_VERSION, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=dest)
    assert (r["KeyId"], r["SourceKeyId"]) == (dest, source)
    d = rpc(ua, KMS_VERSION, "Decrypt", CiphertextBlob=r["CiphertextBlob"])
    assert (d["Plaintext"], d["KeyId"]) == ("aGVsbG8=", dest)


# ============================================================================ 2-3. RAM resources per action


def test_ram_self_policy_cannot_escalate(srv, root, uid):
    admins = T.unique("admins")
    root(CreateGroupRequest, GroupName=admins)
    root(AttachPolicyToGroupRequest, GroupName=admins, PolicyType="System", PolicyName="AdministratorAccess")
    name = T.unique("self")
    key = user_with_key(root, uid, name, T.allow("ram:*", "acs:ram:*:%s:user/%s" % (uid, name)))
    ua = T.Acs(srv.kms_endpoint, key["AccessKeyId"], key["AccessKeySecret"])

    ram_denied(ua, "ListUsers")
    ram_denied(ua, "ListUsers", UserName=name)  # an unused parameter changes nothing
    group = T.unique("g")
    ram_denied(ua, "CreateGroup", GroupName=group, UserName=name)
    assert rpc_error(root, RAM_VERSION, "GetGroup", GroupName=group)[0] == 404, "a refused CreateGroup made the group"
    ram_denied(ua, "AddUserToGroup", GroupName=admins, UserName=name)  # needs group/<admins> as well
    assert admins not in group_names_of(root, name)
    time.sleep(1.2)  # past any policy cache
    ram_denied(ua, "CreateUser", UserName=T.unique("evil"))


def test_ram_self_policy_keeps_self_service(srv, root, uid):
    name = T.unique("self")
    key = user_with_key(root, uid, name, T.allow("ram:*", "acs:ram:*:%s:user/%s" % (uid, name)))
    ua = T.Acs(srv.kms_endpoint, key["AccessKeyId"], key["AccessKeySecret"])
    made = rpc(ua, RAM_VERSION, "CreateAccessKey")["AccessKey"]  # no UserName: for itself
    assert made["AccessKeyId"] and made["AccessKeySecret"]
    expected = {key["AccessKeyId"], made["AccessKeyId"]}
    mine = rpc(ua, RAM_VERSION, "ListAccessKeys")["AccessKeys"]["AccessKey"]
    assert {k["AccessKeyId"] for k in mine} == expected
    named = rpc(ua, RAM_VERSION, "ListAccessKeys", UserName=name)["AccessKeys"]["AccessKey"]
    assert {k["AccessKeyId"] for k in named} == expected
    assert rpc(ua, RAM_VERSION, "GetUser", UserName=name)["User"]["UserName"] == name
    # The new key is the user's and works.
    assert rpc(T.Acs(srv.kms_endpoint, made["AccessKeyId"], made["AccessKeySecret"]), RAM_VERSION, "GetUser", UserName=name)


def test_attach_policy_to_user_checks_the_target_user(srv, root, uid):
    helpdesk = T.unique("helpdesk")
    key = user_with_key(
        root, uid, helpdesk,
        T.allow("ram:AttachPolicyToUser", ["acs:ram:*:%s:user/dev-*" % uid, "acs:ram:*:%s:policy/AliyunOSSReadOnlyAccess" % uid]),
    )
    ua = T.Acs(srv.kms_endpoint, key["AccessKeyId"], key["AccessKeySecret"])
    prod = T.unique("prod")
    dev = T.unique("dev")
    root(CreateUserRequest, UserName=prod)
    root(CreateUserRequest, UserName=dev)

    ram_denied(ua, "AttachPolicyToUser", PolicyType="System", PolicyName="AliyunOSSReadOnlyAccess", UserName=prod)
    assert policy_names_of(root, prod) == []
    ram_denied(ua, "AttachPolicyToUser", PolicyType="System", PolicyName="AdministratorAccess", UserName=dev)  # policy not granted
    rpc(ua, RAM_VERSION, "AttachPolicyToUser", PolicyType="System", PolicyName="AliyunOSSReadOnlyAccess", UserName=dev)
    assert policy_names_of(root, dev) == ["AliyunOSSReadOnlyAccess"]


# ============================================================================ 4. cross-account: the caller's own Deny


def test_cross_account_users_own_deny_beats_bucket_policy_allow(srv, uid, partner, bucket, tmp_path):
    name = bucket.bucket_name
    bucket.put_object("shared/o", b"partner data")
    b_name, b_id, b_auth, deny_policy = partner_user(srv, partner, tmp_path, T.deny("oss:*", "*"))
    bucket.put_bucket_policy(T.doc(T.allow("oss:GetObject", T.oss_arn(uid, name, "shared/*"), principal=[b_id])))
    theirs = oss2.Bucket(b_auth, srv.endpoint, name)
    read = lambda: theirs.get_object("shared/o").read()  # noqa: E731

    assert wait_until(lambda: outcome(read) == "AccessDenied", T.CLI_BOUND), outcome(read)
    e = T.denied(read)
    assert e.message == GENERIC_DENY and uid not in e.message
    # Without its Deny, A's bucket policy lets it read.
    T.admin(srv, "--account", partner["uid"], "policy", "detach", deny_policy, "--user", b_name)
    assert wait_until(lambda: outcome(read) == "allowed", T.CLI_BOUND), outcome(read)
    assert read() == b"partner data"


# ============================================================================ 5-6. bucket policy principals


def test_empty_principal_maps_are_malformed(srv, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("o", b"private")
    resource = T.oss_arn(uid, name, "*")
    for principal in ({"RAM": []}, {}):
        bad = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Principal": principal, "Resource": resource}]}
        assert put_policy_error(bucket, bad) == (400, "MalformedPolicy"), principal
        assert stored_policy(bucket) is None, "a refused policy must not be stored"
    assert raw_request(srv.endpoint, "GET", name, "o", auth=None).status_code == 403

    # A refused policy leaves the previous one in place.
    previous = json.loads(T.doc(T.allow("oss:GetObject", T.oss_arn(uid, name, "pub/*"), principal=["*"])))
    bucket.put_bucket_policy(json.dumps(previous))
    bad = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Principal": {"RAM": []}, "Resource": resource}]}
    assert put_policy_error(bucket, bad) == (400, "MalformedPolicy")
    assert stored_policy(bucket) == previous
    assert raw_request(srv.endpoint, "GET", name, "o", auth=None).status_code == 403


def test_literal_empty_principal_list_still_means_everyone(srv, uid, bucket):
    bucket.put_object("o", b"public")
    bucket.put_bucket_policy(T.doc(T.allow("oss:GetObject", T.oss_arn(uid, bucket.bucket_name, "*"), principal=[])))
    assert anonymous(srv, bucket.bucket_name).get_object("o").read() == b"public"


def test_user_arn_principal_in_deny_blocks_that_user(srv, root, uid, bucket):
    name = bucket.bucket_name
    bucket.put_object("o", b"x")
    target = T.new_user(srv, root, uid, "AliyunOSSFullAccess")
    bystander = T.new_user(srv, root, uid, "AliyunOSSFullAccess")
    assert target.bucket(name).get_object("o").read() == b"x"
    by_arn = {"RAM": ["acs:ram::%s:user/%s" % (uid, target.name)]}
    bucket.put_bucket_policy(T.doc(T.deny("oss:*", T.oss_arn(uid, name, "*"), principal=by_arn)))
    T.denied(target.bucket(name).get_object, "o")
    T.denied(target.bucket(name).put_object, "p", b"y")
    assert not bucket.object_exists("p")
    assert bystander.bucket(name).get_object("o").read() == b"x"


def test_root_arn_principal_is_accepted_and_matches(srv, uid, partner, bucket):
    name = bucket.bucket_name
    bucket.put_object("o", b"for B")
    own = T.doc(T.allow("oss:GetObject", T.oss_arn(uid, name, "*"), principal={"RAM": ["acs:ram::%s:root" % uid]}))
    bucket.put_bucket_policy(own)
    assert stored_policy(bucket) == json.loads(own)
    theirs = oss2.Bucket(partner["auth"], srv.endpoint, name)
    T.denied(theirs.get_object, "o")
    bucket.put_bucket_policy(
        T.doc(T.allow("oss:GetObject", T.oss_arn(uid, name, "*"), principal={"RAM": ["acs:ram::%s:root" % partner["uid"]]}))
    )
    assert theirs.get_object("o").read() == b"for B"


# ============================================================================ 7. every KMS check before any key use


def test_copy_without_source_decrypt_uses_no_destination_key(srv, root, uid, bucket):
    name = bucket.bucket_name
    src_key = new_key(root, "copy-src")
    dst_key = new_key(root, "copy-dst")
    bucket.put_object("src", b"data", headers={T.SSE: "KMS", T.SSE_KEY: src_key})
    oss = T.allow(["oss:GetObject", "oss:PutObject"], T.oss_arn(uid, name, "*"))
    user = T.new_user(srv, root, uid, [oss, T.kms_allow(uid, dst_key, "GenerateDataKey")])
    dest = {T.SSE: "KMS", T.SSE_KEY: dst_key}
    before = T.metered(root, dst_key)
    since = len(T.audit_lines(srv))

    T.kms_denied(user.bucket(name).copy_object, name, "src", "dst", headers=dest)
    assert not bucket.object_exists("dst")
    assert T.metered(root, dst_key) == before, "a refused copy generated a data key"
    uses = [l for l in new_audit_lines(srv, since) if l.get("decision") == "allow" and l.get("principal") == user.principal]
    assert uses == [], uses

    both = T.new_user(srv, root, uid, [oss, T.kms_allow(uid, dst_key, "GenerateDataKey"), T.kms_allow(uid, src_key, "Decrypt")])
    both.bucket(name).copy_object(name, "src", "dst", headers=dest)
    assert bucket.get_object("dst").read() == b"data"
    assert T.metered(root, dst_key) == before + 1


def test_upload_part_copy_without_upload_decrypt_uses_no_source_key(srv, root, uid, bucket):
    name = bucket.bucket_name
    s = new_key(root, "upc-src")
    u = new_key(root, "upc-upload")
    bucket.put_object("src", b"s" * 100, headers={T.SSE: "KMS", T.SSE_KEY: s})
    up = bucket.init_multipart_upload("mp", headers={T.SSE: "KMS", T.SSE_KEY: u})
    user = T.new_user(
        srv, root, uid,
        [
            T.allow(["oss:GetObject", "oss:PutObject"], T.oss_arn(uid, name, "*")),
            T.kms_allow(uid, s, "Decrypt"),
            T.kms_allow(uid, u, "GenerateDataKey"),  # may write parts, but not Decrypt under U
        ],
    )
    before = T.metered(root, s, "Decrypt")
    T.kms_denied(user.bucket(name).upload_part_copy, name, "src", (0, 99), "mp", up.upload_id, 1)
    assert T.metered(root, s, "Decrypt") == before, "a refused UploadPartCopy decrypted the source's data key"
    assert bucket.list_parts("mp", up.upload_id).parts == []

    # With Decrypt under U as well the copy runs, and it does meter the source's Decrypt.
    full = T.new_user(
        srv, root, uid,
        [
            T.allow(["oss:GetObject", "oss:PutObject"], T.oss_arn(uid, name, "*")),
            T.kms_allow(uid, s, "Decrypt"),
            T.kms_allow(uid, u, "GenerateDataKey", "Decrypt"),
        ],
    )
    full.bucket(name).upload_part_copy(name, "src", (0, 99), "mp", up.upload_id, 1)
    assert [p.part_number for p in bucket.list_parts("mp", up.upload_id).parts] == [1]
    assert T.metered(root, s, "Decrypt") > before


# ============================================================================ 8. anonymous refusals are audited


def test_anonymous_sse_kms_refusals_are_audited(srv, bucket):
    name = bucket.bucket_name
    bucket.put_object("k", b"x", headers={T.SSE: "KMS"})
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    since = len(T.audit_lines(srv))
    r = raw_request(srv.endpoint, "GET", name, "k", auth=None)
    assert r.status_code == 403, r.status_code
    assert anonymous_denials(srv, since), "anonymous GET of an SSE-KMS object left no deny line"

    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    since = len(T.audit_lines(srv))
    r = raw_request(srv.endpoint, "PUT", name, "k2", auth=None, data=b"x", headers={T.SSE: "KMS"})
    assert r.status_code == 403, r.status_code
    assert anonymous_denials(srv, since), "anonymous SSE-KMS PUT left no deny line"
    assert not bucket.object_exists("k2")


def test_anonymous_account_level_refusals_are_audited(srv, root_auth):
    since = len(T.audit_lines(srv))
    r = raw_request(srv.endpoint, "GET", auth=None)
    assert r.status_code == 403, r.status_code
    assert anonymous_denials(srv, since), "anonymous ListBuckets left no deny line"

    new_name = unique_bucket_name("anon")
    since = len(T.audit_lines(srv))
    r = raw_request(srv.endpoint, "PUT", new_name, auth=None)
    assert r.status_code == 403, r.status_code
    assert anonymous_denials(srv, since), "anonymous PutBucket left no deny line"
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        oss2.Bucket(root_auth, srv.endpoint, new_name).get_bucket_info()


# ============================================================================ 9. deny messages


def test_explicit_deny_message_is_generic_outside_the_owner_account(srv, root, uid, partner, bucket):
    name = bucket.bucket_name
    sid = "BlockContractorsFromSecretProject"
    bucket.put_object("o", b"x")
    bucket.put_bucket_policy(json.dumps({"Version": "1", "Statement": [
        {"Sid": sid, "Effect": "Deny", "Action": "oss:*", "Principal": ["*"], "Resource": "acs:oss:*:*:%s/*" % name}]}))

    r = raw_request(srv.endpoint, "GET", name, "o", auth=None)
    assert r.status_code == 403
    anon_msg = error_details(r).get("Message", "")
    partner_msg = T.denied(oss2.Bucket(partner["auth"], srv.endpoint, name).get_object, "o").message
    for msg in (anon_msg, partner_msg):
        assert msg == GENERIC_DENY, msg
        assert uid not in msg and sid not in msg, msg

    # The bucket owner's own RAM user still learns the deciding statement.
    own = T.new_user(srv, root, uid, "AliyunOSSFullAccess")
    msg = T.denied(own.bucket(name).get_object, "o").message
    assert "bucket policy statement 1" in msg and sid in msg, msg


# ============================================================================ 10. no key-existence oracle


def test_sse_header_key_gives_same_refusal_whether_or_not_it_exists(srv, root, uid, bucket):
    real = new_key(root, "oracle")
    user = T.new_user(srv, root, uid, [T.allow("oss:PutObject", T.oss_arn(uid, bucket.bucket_name, "*"))])
    refusals = []
    for i, key_id in enumerate((real, RANDOM_KEY)):
        e = T.kms_denied(user.bucket(bucket.bucket_name).put_object, "x%d" % i, b"x", headers={T.SSE: "KMS", T.SSE_KEY: key_id})
        refusals.append((e.status, e.code, e.message))
        assert not bucket.object_exists("x%d" % i)
    assert refusals[0] == refusals[1] == (403, "AccessDenied", T.KMS_FORBIDDEN), refusals


def test_describe_key_gives_same_refusal_whether_or_not_it_exists(srv, root, uid):
    real = new_key(root, "oracle-api")
    nobody = T.new_user(srv, root, uid).acs()
    assert nobody.error(DescribeKeyRequest, KeyId=real) == (403, "Forbidden.NoPermission")
    assert nobody.error(DescribeKeyRequest, KeyId=RANDOM_KEY) == (403, "Forbidden.NoPermission")
    assert root.error(DescribeKeyRequest, KeyId=RANDOM_KEY) == (404, "Forbidden.KeyNotFound")


# ============================================================================ 11. ACLs set while writing


def test_object_acl_header_needs_put_object_acl(srv, root, uid, bucket):
    name = bucket.bucket_name
    public = {"x-oss-object-acl": oss2.OBJECT_ACL_PUBLIC_READ}
    writer = T.new_user(srv, root, uid, [T.allow("oss:PutObject", T.oss_arn(uid, name, "*"))])
    T.not_kms_denied(writer.bucket(name).put_object, "pub", b"x", headers=public)
    assert not bucket.object_exists("pub")
    writer.bucket(name).put_object("plain", b"x")
    assert bucket.get_object("plain").read() == b"x"

    publisher = T.new_user(srv, root, uid, [T.allow(["oss:PutObject", "oss:PutObjectAcl"], T.oss_arn(uid, name, "*"))])
    publisher.bucket(name).put_object("pub", b"y", headers=public)
    assert bucket.get_object_acl("pub").acl == oss2.OBJECT_ACL_PUBLIC_READ
    assert anonymous(srv, name).get_object("pub").read() == b"y"


def test_public_bucket_creation_needs_put_bucket_acl(srv, root, uid, root_auth):
    creator = T.new_user(srv, root, uid, [T.allow("oss:PutBucket", T.oss_arn(uid, "*"))])
    public_name = unique_bucket_name("pub")
    T.not_kms_denied(creator.bucket(public_name).create_bucket, oss2.BUCKET_ACL_PUBLIC_READ)
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        oss2.Bucket(root_auth, srv.endpoint, public_name).get_bucket_info()
    private_name = unique_bucket_name("priv")
    creator.bucket(private_name).create_bucket()
    assert oss2.Bucket(root_auth, srv.endpoint, private_name).get_bucket_acl().acl == oss2.BUCKET_ACL_PRIVATE

    full = T.new_user(srv, root, uid, [T.allow(["oss:PutBucket", "oss:PutBucketAcl"], T.oss_arn(uid, "*"))])
    full.bucket(public_name).create_bucket(oss2.BUCKET_ACL_PUBLIC_READ)
    assert oss2.Bucket(root_auth, srv.endpoint, public_name).get_bucket_acl().acl == oss2.BUCKET_ACL_PUBLIC_READ
