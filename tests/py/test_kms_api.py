"""The KMS API driven by the Alibaba Cloud KMS Python SDK (aliyun-python-sdk-kms),
and SSE-KMS on objects through oss2 (spec kms-ram.md Part A, oss-api.md 7)."""

import base64
import json
import os
import sqlite3
import time

import oss2
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkkms.request.v20160120 import (
    CancelKeyDeletionRequest,
    CreateAliasRequest,
    CreateKeyRequest,
    CreateKeyVersionRequest,
    DecryptRequest,
    DeleteAliasRequest,
    DescribeKeyRequest,
    DescribeKeyVersionRequest,
    DescribeRegionsRequest,
    DisableKeyRequest,
    EnableKeyRequest,
    EncryptRequest,
    GenerateDataKeyRequest,
    GenerateDataKeyWithoutPlaintextRequest,
    ListAliasesByKeyIdRequest,
    ListAliasesRequest,
    ListKeysRequest,
    ListKeyVersionsRequest,
    ScheduleKeyDeletionRequest,
    UpdateAliasRequest,
    UpdateKeyDescriptionRequest,
    UpdateRotationPolicyRequest,
)

from arca_testlib import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, ArcaServer, unique_bucket_name

# The server re-reads key records changed by another process within 1 s (arca_kms::LOOKUP_TTL).
KMS_LOOKUP_TTL = 1.1


class Kms:
    """Old-SDK client pointed at Arca's KMS endpoint (spec A4.6: endpoint with scheme on the request)."""

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

    def error(self, request_module, **params):
        with pytest.raises(ServerException) as e:
            self(request_module, **params)
        return e.value.get_http_status(), e.value.get_error_code()


@pytest.fixture(scope="module")
def kms(server):
    return Kms(server.kms_endpoint)


@pytest.fixture(scope="module")
def key(kms):
    return kms(CreateKeyRequest, Description="test key")["KeyMetadata"]


def test_create_and_describe_key(kms, key):
    assert key["KeyState"] == "Enabled"
    assert key["KeySpec"] == "Aliyun_AES_256"
    assert key["Origin"] == "Aliyun_KMS"
    assert key["KeyUsage"] == "ENCRYPT/DECRYPT"
    assert key["Arn"] == "acs:kms:%s:%s:key/%s" % (REGION, key["Creator"], key["KeyId"])
    assert len(key["KeyId"]) == 36 and key["PrimaryKeyVersion"]
    assert key["CreationDate"].endswith("Z") and key["DeleteDate"] == ""
    by_arn = kms(DescribeKeyRequest, KeyId=key["Arn"])["KeyMetadata"]
    assert by_arn["KeyId"] == key["KeyId"] and by_arn["Description"] == "test key"
    sm4 = kms(CreateKeyRequest, KeySpec="Aliyun_SM4")["KeyMetadata"]
    assert sm4["KeySpec"] == "Aliyun_SM4"
    assert kms.error(CreateKeyRequest, KeySpec="RSA_9999") == (400, "InvalidParameter")
    assert kms.error(DescribeKeyRequest, KeyId="00000000-0000-4000-8000-000000000000") == (404, "Forbidden.KeyNotFound")


def test_list_keys_pages_and_filters(kms, key):
    disabled = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    kms(DisableKeyRequest, KeyId=disabled)
    all_ids = []
    page = 1
    while True:
        r = kms(ListKeysRequest, PageNumber=page, PageSize=2)
        all_ids += [k["KeyId"] for k in r["Keys"]["Key"]]
        if page * 2 >= r["TotalCount"]:
            break
        page += 1
    assert key["KeyId"] in all_ids and disabled in all_ids
    assert len(all_ids) == len(set(all_ids))
    only_disabled = kms(ListKeysRequest, Filters=json.dumps([{"Key": "KeyState", "Values": ["Disabled"]}]))
    ids = [k["KeyId"] for k in only_disabled["Keys"]["Key"]]
    assert disabled in ids and key["KeyId"] not in ids


def test_aliases(kms, key):
    kms(CreateAliasRequest, AliasName="alias/app-one", KeyId=key["KeyId"])
    assert kms(DescribeKeyRequest, KeyId="alias/app-one")["KeyMetadata"]["KeyId"] == key["KeyId"]
    assert kms.error(CreateAliasRequest, AliasName="alias/app-one", KeyId=key["KeyId"]) == (400, "AliasAlreadyExists")
    assert kms.error(CreateAliasRequest, AliasName="alias/acs/mine", KeyId=key["KeyId"]) == (400, "InvalidParameter")
    other = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    kms(UpdateAliasRequest, AliasName="alias/app-one", KeyId=other)
    assert kms(DescribeKeyRequest, KeyId="alias/app-one")["KeyMetadata"]["KeyId"] == other
    by_key = kms(ListAliasesByKeyIdRequest, KeyId=other)["Aliases"]["Alias"]
    assert [a["AliasName"] for a in by_key] == ["alias/app-one"]
    assert by_key[0]["AliasArn"].endswith(":alias/app-one")
    names = [a["AliasName"] for a in kms(ListAliasesRequest, PageSize=100)["Aliases"]["Alias"]]
    assert "alias/app-one" in names
    kms(DeleteAliasRequest, AliasName="alias/app-one")
    assert kms.error(DescribeKeyRequest, KeyId="alias/app-one") == (404, "Forbidden.AliasNotFound")


def test_data_keys_and_encryption_context(kms, key):
    ctx = {"bucket": "b", "object": "o"}
    g = kms(GenerateDataKeyRequest, KeyId=key["KeyId"], EncryptionContext=json.dumps(ctx))
    assert len(base64.b64decode(g["Plaintext"])) == 32
    assert g["KeyVersionId"] == key["PrimaryKeyVersion"]
    # Equivalent context with another key order and spacing decrypts; a different one does not.
    d = kms(DecryptRequest, CiphertextBlob=g["CiphertextBlob"], EncryptionContext='{"object":"o","bucket":"b"}')
    assert d["Plaintext"] == g["Plaintext"] and d["KeyId"] == key["KeyId"]
    assert kms.error(DecryptRequest, CiphertextBlob=g["CiphertextBlob"], EncryptionContext='{"bucket":"x"}')[1] == "InvalidParameter"
    assert kms.error(DecryptRequest, CiphertextBlob=g["CiphertextBlob"])[1] == "InvalidParameter"
    g16 = kms(GenerateDataKeyRequest, KeyId=key["KeyId"], NumberOfBytes=16)
    assert len(base64.b64decode(g16["Plaintext"])) == 16
    assert len(base64.b64decode(kms(GenerateDataKeyRequest, KeyId=key["KeyId"], KeySpec="AES_128")["Plaintext"])) == 16
    w = kms(GenerateDataKeyWithoutPlaintextRequest, KeyId=key["KeyId"])
    assert "Plaintext" not in w and w["CiphertextBlob"]
    plaintext = base64.b64encode(b"secret message").decode()
    e = kms(EncryptRequest, KeyId=key["KeyId"], Plaintext=plaintext)
    assert kms(DecryptRequest, CiphertextBlob=e["CiphertextBlob"])["Plaintext"] == plaintext
    assert kms.error(DecryptRequest, CiphertextBlob=base64.b64encode(b"x" * 80).decode())[0] in (400, 404)


def test_key_states_and_deletion_window(kms):
    k = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    blob = kms(EncryptRequest, KeyId=k, Plaintext="eA==")["CiphertextBlob"]
    kms(DisableKeyRequest, KeyId=k)
    assert kms(DescribeKeyRequest, KeyId=k)["KeyMetadata"]["KeyState"] == "Disabled"
    assert kms.error(GenerateDataKeyRequest, KeyId=k) == (409, "Rejected.Disabled")
    assert kms.error(DecryptRequest, CiphertextBlob=blob) == (409, "Rejected.Disabled")
    kms(EnableKeyRequest, KeyId=k)
    assert kms(DecryptRequest, CiphertextBlob=blob)["Plaintext"] == "eA=="
    assert kms.error(ScheduleKeyDeletionRequest, KeyId=k, PendingWindowInDays=3) == (400, "InvalidParameter")
    kms(ScheduleKeyDeletionRequest, KeyId=k, PendingWindowInDays=7)
    meta = kms(DescribeKeyRequest, KeyId=k)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and meta["DeleteDate"].endswith("Z")
    assert kms.error(EncryptRequest, KeyId=k, Plaintext="eA==") == (409, "Rejected.PendingDeletion")
    assert kms.error(EnableKeyRequest, KeyId=k) == (409, "Rejected.StateModifiedFailed")
    assert kms.error(UpdateKeyDescriptionRequest, KeyId=k, Description="x") == (409, "Rejected.PendingDeletion")
    kms(CancelKeyDeletionRequest, KeyId=k)
    assert kms(DescribeKeyRequest, KeyId=k)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.error(CancelKeyDeletionRequest, KeyId=k) == (409, "Rejected.StateModifiedFailed")


def test_versions_and_rotation_policy(kms):
    k = kms(CreateKeyRequest)["KeyMetadata"]
    old = kms(EncryptRequest, KeyId=k["KeyId"], Plaintext="b2xk")
    v2 = kms(CreateKeyVersionRequest, KeyId=k["KeyId"])["KeyVersion"]
    assert v2["KeyId"] == k["KeyId"] and v2["KeyVersionId"] != k["PrimaryKeyVersion"]
    versions = kms(ListKeyVersionsRequest, KeyId=k["KeyId"])
    assert versions["TotalCount"] == 2
    assert [v["KeyVersionId"] for v in versions["KeyVersions"]["KeyVersion"]] == [k["PrimaryKeyVersion"], v2["KeyVersionId"]]
    new = kms(EncryptRequest, KeyId=k["KeyId"], Plaintext="bmV3")
    assert new["KeyVersionId"] == v2["KeyVersionId"]
    assert kms(DecryptRequest, CiphertextBlob=old["CiphertextBlob"])["Plaintext"] == "b2xk"
    assert kms(DescribeKeyVersionRequest, KeyId=k["KeyId"], KeyVersionId=v2["KeyVersionId"])["KeyVersion"]["KeyId"] == k["KeyId"]
    missing = kms.error(DescribeKeyVersionRequest, KeyId=k["KeyId"], KeyVersionId="00000000-0000-4000-8000-000000000000")
    assert missing == (404, "Forbidden.KeyVersionNotFound")
    assert kms.error(UpdateRotationPolicyRequest, KeyId=k["KeyId"], EnableAutomaticRotation=True, RotationInterval="1d") == (
        400,
        "InvalidParameter",
    )
    kms(UpdateRotationPolicyRequest, KeyId=k["KeyId"], EnableAutomaticRotation=True, RotationInterval="7d")
    meta = kms(DescribeKeyRequest, KeyId=k["KeyId"])["KeyMetadata"]
    assert meta["AutomaticRotation"] == "Enabled" and meta["RotationInterval"] == "604800s"


def test_signature_and_access_key_errors(server, kms):
    assert kms(DescribeRegionsRequest)["Regions"]["Region"] == [{"RegionId": REGION}]
    bad = Kms(server.kms_endpoint, secret="wrong-secret")
    # The server answers SignatureDoesNotMatch with its string to sign; the SDK
    # compares it with its own and, when they agree, reports a wrong secret.
    assert bad.error(ListKeysRequest) == (400, "InvalidAccessKeySecret")
    unknown = Kms(server.kms_endpoint, key_id="LTAInosuchkey")
    assert unknown.error(ListKeysRequest) == (404, "InvalidAccessKeyId.NotFound")


# ----------------------------------------------------------------- SSE-KMS via oss2

SSE = "x-oss-server-side-encryption"
SSE_KEY = "x-oss-server-side-encryption-key-id"
SSE_DATA = "x-oss-server-side-data-encryption"


def test_sse_kms_default_key_named_key_and_sm4(kms, bucket):
    data = os.urandom(200 * 1024 + 5)
    r1 = bucket.put_object("default-1", data, headers={SSE: "KMS"})
    r2 = bucket.put_object("default-2", b"x", headers={SSE: "KMS"})
    default_id = kms(DescribeKeyRequest, KeyId="alias/acs/oss")["KeyMetadata"]["KeyId"]
    assert r1.headers[SSE] == "KMS" and r1.headers[SSE_KEY] == default_id
    assert r2.headers[SSE_KEY] == default_id
    assert SSE_DATA not in r1.headers
    g = bucket.get_object("default-1")
    assert g.read() == data and g.headers[SSE_KEY] == default_id

    named = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    kms(CreateAliasRequest, AliasName="alias/oss-named", KeyId=named)
    r3 = bucket.put_object("named", data, headers={SSE: "KMS", SSE_KEY: "alias/oss-named", SSE_DATA: "SM4"})
    assert (r3.headers[SSE], r3.headers[SSE_KEY], r3.headers[SSE_DATA]) == ("KMS", named, "SM4")
    h = bucket.head_object("named")
    assert h.headers[SSE_KEY] == named and h.headers[SSE_DATA] == "SM4"
    assert bucket.get_object("named", byte_range=(65530, 65545)).read() == data[65530:65546]

    # Disable → GET and PUT fail with the spec's errors; enable → both work.
    kms(DisableKeyRequest, KeyId=named)
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.get_object("named")
    assert (e.value.status, e.value.code) == (409, "KeyDisabled")
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_object("named-2", b"x", headers={SSE: "KMS", SSE_KEY: named})
    assert (e.value.status, e.value.code) == (409, "KeyDisabled")
    assert not bucket.object_exists("named-2")
    kms(EnableKeyRequest, KeyId=named)
    assert bucket.get_object("named").read() == data

    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object("missing", b"x", headers={SSE: "KMS", SSE_KEY: "no-such-key"})
    assert not bucket.object_exists("missing")


def test_sse_kms_bucket_default_multipart_append_copy(kms, bucket):
    named = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    bucket.put_bucket_encryption(oss2.models.ServerSideEncryptionRule(sse_algorithm="KMS", kms_master_keyid=named))
    r = bucket.put_object("by-default", b"hello")
    assert r.headers[SSE_KEY] == named
    up = bucket.init_multipart_upload("mp", headers={SSE: "KMS", SSE_DATA: "SM4"})
    assert up.headers[SSE] == "KMS" and up.headers[SSE_DATA] == "SM4"
    parts = []
    chunks = [os.urandom(102400), os.urandom(777)]
    for i, c in enumerate(chunks, 1):
        pr = bucket.upload_part("mp", up.upload_id, i, c)
        assert pr.headers[SSE_KEY] == up.headers[SSE_KEY]
        parts.append(oss2.models.PartInfo(i, pr.etag))
    done = bucket.complete_multipart_upload("mp", up.upload_id, parts)
    assert done.headers[SSE_DATA] == "SM4"
    assert bucket.get_object("mp").read() == b"".join(chunks)
    a1 = bucket.append_object("app", 0, b"123", headers={SSE: "KMS"})
    a2 = bucket.append_object("app", 3, b"456")
    assert a1.headers[SSE_KEY] == a2.headers[SSE_KEY]
    assert bucket.get_object("app").read() == b"123456"
    bucket.copy_object(bucket.bucket_name, "mp", "mp-copy", headers={SSE: "AES256"})
    h = bucket.head_object("mp-copy")
    assert h.headers[SSE] == "AES256" and SSE_KEY not in h.headers
    assert bucket.get_object("mp-copy").read() == b"".join(chunks)


def test_kms_deletion_makes_objects_unreadable_forever_and_calls_are_metered(tmp_path):
    srv = ArcaServer(tmp_path / "kms-del", extra_config={"kms_day_secs": 1})
    srv.start()
    try:
        kms = Kms(srv.kms_endpoint)
        b = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), srv.endpoint, unique_bucket_name("kmsdel"))
        b.create_bucket()
        k = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
        for i in range(3):
            b.put_object("o%d" % i, b"data %d" % i, headers={SSE: "KMS", SSE_KEY: k})
        for i in range(2):
            assert b.get_object("o%d" % i).read() == b"data %d" % i
        kms(ScheduleKeyDeletionRequest, KeyId=k, PendingWindowInDays=7)
        with pytest.raises(oss2.exceptions.ServerError) as e:
            b.get_object("o0")
        assert e.value.code == "KeyPendingDeletion"
        time.sleep(7.5)  # the window: 7 "days" of one second each
        with pytest.raises(oss2.exceptions.AccessDenied) as e:
            b.get_object("o0")
        assert "deleted" in e.value.message
        assert kms.error(DescribeKeyRequest, KeyId=k) == (404, "Forbidden.KeyNotFound")
        # A scripted scenario's calls, as the KMS counted them (GenerateDataKey per put, Decrypt per get).
        db = sqlite3.connect(str(srv.data_dir / "meta.sqlite"))
        counts = dict(db.execute("SELECT action, count FROM kms_usage WHERE key_id = ?", (k,)).fetchall())
        db.close()
        assert counts.get("GenerateDataKey") == 3
        assert counts.get("Decrypt") == 2
        assert counts.get("CreateKey") == 1
    finally:
        srv.stop()


# ----------------------------------------------------------------- BYOK

from aliyunsdkkms.request.v20160120 import (  # noqa: E402
    DeleteKeyMaterialRequest,
    GetParametersForImportRequest,
    ImportKeyMaterialRequest,
)
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402


def _wrap(public_key_b64, material, algorithm):
    pub = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    if algorithm == "RSAES_PKCS1_V1_5":
        pad = padding.PKCS1v15()
    else:
        h = hashes.SHA1() if algorithm == "RSAES_OAEP_SHA_1" else hashes.SHA256()
        pad = padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)
    return base64.b64encode(pub.encrypt(material, pad)).decode()


def _import(kms, key_id, material, algorithm="RSAES_OAEP_SHA_256"):
    params = kms(GetParametersForImportRequest, KeyId=key_id, WrappingKeySpec="RSA_2048", WrappingAlgorithm=algorithm)
    assert params["KeyId"] == key_id and params["TokenExpireTime"].endswith("Z")
    kms(
        ImportKeyMaterialRequest,
        KeyId=key_id,
        EncryptedKeyMaterial=_wrap(params["PublicKey"], material, algorithm),
        ImportToken=params["ImportToken"],
    )
    return params


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5"])
def test_byok_import_encrypt_delete_reimport(kms, bucket, algorithm):
    k = kms(CreateKeyRequest, Origin="EXTERNAL")["KeyMetadata"]
    assert (k["Origin"], k["KeyState"]) == ("EXTERNAL", "PendingImport")
    assert kms.error(GenerateDataKeyRequest, KeyId=k["KeyId"]) == (409, "Rejected.PendingImport")
    normal = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    assert kms.error(GetParametersForImportRequest, KeyId=normal, WrappingKeySpec="RSA_2048", WrappingAlgorithm=algorithm) == (
        400,
        "Unsupported.Origin",
    )
    material = os.urandom(32)
    params = _import(kms, k["KeyId"], material, algorithm)
    assert kms(DescribeKeyRequest, KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"

    data = os.urandom(70_000)
    bucket.put_object("byok", data, headers={SSE: "KMS", SSE_KEY: k["KeyId"]})
    assert bucket.get_object("byok").read() == data

    kms(DeleteKeyMaterialRequest, KeyId=k["KeyId"])
    assert kms(DescribeKeyRequest, KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.get_object("byok")
    assert e.value.status == 409

    # Other material is refused; the same material brings the object back.
    other = kms(GetParametersForImportRequest, KeyId=k["KeyId"], WrappingKeySpec="RSA_2048", WrappingAlgorithm=algorithm)
    with pytest.raises(ServerException) as e:
        kms(ImportKeyMaterialRequest, KeyId=k["KeyId"], ImportToken=other["ImportToken"],
            EncryptedKeyMaterial=_wrap(other["PublicKey"], os.urandom(32), algorithm))
    assert e.value.get_error_code() == "InvalidKeyMaterial"
    with pytest.raises(ServerException) as e:
        kms(ImportKeyMaterialRequest, KeyId=k["KeyId"], ImportToken=base64.b64encode(b"nope").decode(),
            EncryptedKeyMaterial=_wrap(other["PublicKey"], material, algorithm))
    assert e.value.get_error_code() == "InvalidImportToken"
    kms(ImportKeyMaterialRequest, KeyId=k["KeyId"], ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=_wrap(params["PublicKey"], material, algorithm))
    assert bucket.get_object("byok").read() == data


# ----------------------------------------------------------------- arca kms CLI

import subprocess  # noqa: E402

from arca_testlib import ARCA_BIN  # noqa: E402


def test_kms_cli_manages_the_keys_the_server_uses(tmp_path):
    srv = ArcaServer(tmp_path / "kms-cli")
    srv.start()
    try:

        def cli(*args):
            out = subprocess.run([str(ARCA_BIN), "kms", "--config", str(srv.config_path), *args], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            if args[0] in ("disable", "enable", "rotate", "service", "alias", "unalias", "import"):
                # Another process changed key records: the server sees it within LOOKUP_TTL (1 s).
                time.sleep(KMS_LOOKUP_TTL)
            return out.stdout

        key_id = cli("create", "--alias", "alias/cli-key", "--description", "from the CLI").strip()
        assert len(key_id) == 36
        assert "alias/cli-key" in cli("list")
        b = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), srv.endpoint, unique_bucket_name("kmscli"))
        b.create_bucket()
        r = b.put_object("o", b"payload", headers={SSE: "KMS", SSE_KEY: "alias/cli-key"})
        assert r.headers[SSE_KEY] == key_id
        cli("disable", key_id)
        with pytest.raises(oss2.exceptions.ServerError) as e:
            b.get_object("o")
        assert e.value.code == "KeyDisabled"
        cli("enable", "alias/cli-key")
        assert b.get_object("o").read() == b"payload"
        new_version = cli("rotate", key_id).strip()
        assert new_version in cli("describe", key_id)
        assert b.get_object("o").read() == b"payload"
        cli("rotation-policy", key_id, "--days", "30")
        assert "rotation=30d" in cli("describe", key_id)

        external = cli("create", "--origin", "EXTERNAL").strip()
        material = tmp_path / "material.bin"
        material.write_bytes(os.urandom(32))
        assert "imported" in cli("import", external, str(material))
        r = b.put_object("ext", b"external", headers={SSE: "KMS", SSE_KEY: external})
        assert b.get_object("ext").read() == b"external"

        def count(usage, action):
            lines = [l for l in usage.splitlines() if l.startswith(key_id) and " %s " % action in l]
            return int(lines[0].split()[-1]) if lines else 0

        # The server writes its metering once a second; the CLI reads the store.
        deadline = time.monotonic() + 15
        while True:
            usage = cli("usage")
            if (count(usage, "GenerateDataKey"), count(usage, "Decrypt")) == (1, 2) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (count(usage, "GenerateDataKey"), count(usage, "Decrypt")) == (1, 2), usage
    finally:
        srv.stop()


# ----------------------------------------------------------------- the new SDK (alibabacloud_kms20160120)


@pytest.mark.parametrize("signature_algorithm", [None, "v2"])
def test_new_sdk_with_acs3_and_rpc_signatures(server, signature_algorithm):
    from alibabacloud_kms20160120 import models
    from alibabacloud_kms20160120.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    host = server.kms_endpoint.split("//", 1)[1]
    config = open_api_models.Config(
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        endpoint=host,
        protocol="http",
        region_id=REGION,
    )
    if signature_algorithm:
        config.signature_algorithm = signature_algorithm
    client = Client(config)
    key = client.create_key(models.CreateKeyRequest(description="new sdk", key_spec="Aliyun_SM4")).body.key_metadata
    assert key.key_spec == "Aliyun_SM4" and key.key_state == "Enabled"
    client.create_alias(models.CreateAliasRequest(alias_name="alias/new-sdk-%s" % (signature_algorithm or "v3"), key_id=key.key_id))
    g = client.generate_data_key(
        models.GenerateDataKeyRequest(key_id=key.key_id, number_of_bytes=16, encryption_context={"app": "test", "n": "1"})
    ).body
    assert len(base64.b64decode(g.plaintext)) == 16
    d = client.decrypt(models.DecryptRequest(ciphertext_blob=g.ciphertext_blob, encryption_context={"n": "1", "app": "test"})).body
    assert d.plaintext == g.plaintext and d.key_id == key.key_id
    listed = client.list_keys(models.ListKeysRequest(page_size=100)).body
    assert key.key_id in [k.key_id for k in listed.keys.key]
    client.disable_key(models.DisableKeyRequest(key_id=key.key_id))
    with pytest.raises(Exception) as e:
        client.encrypt(models.EncryptRequest(key_id=key.key_id, plaintext="eA=="))
    assert "Rejected.Disabled" in str(e.value)
    bad = Client(open_api_models.Config(access_key_id=ACCESS_KEY_ID, access_key_secret="wrong", endpoint=host,
                                        protocol="http", region_id=REGION))
    with pytest.raises(Exception) as e:
        bad.list_keys(models.ListKeysRequest())
    assert "SignatureDoesNotMatch" in str(e.value) or "InvalidAccessKeySecret" in str(e.value)


def test_deleting_a_key_that_a_bucket_default_names_needs_force(kms, bucket):
    k = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    bucket.put_bucket_encryption(oss2.models.ServerSideEncryptionRule(sse_algorithm="KMS", kms_master_keyid=k))
    status, code = kms.error(ScheduleKeyDeletionRequest, KeyId=k, PendingWindowInDays=7)
    assert (status, code) == (409, "Rejected.ResourceInUse")
    with pytest.raises(ServerException) as e:
        kms(ScheduleKeyDeletionRequest, KeyId=k, PendingWindowInDays=7)
    assert bucket.bucket_name in e.value.get_error_msg()
    bucket.delete_bucket_encryption()
    kms(ScheduleKeyDeletionRequest, KeyId=k, PendingWindowInDays=7)
    assert kms(DescribeKeyRequest, KeyId=k)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_no_key_material_at_rest_or_in_debug_logs_service_switch_and_rotation(tmp_path):
    srv = ArcaServer(tmp_path / "kms-rest", extra_config={"log": "debug"})
    srv.start()
    try:
        kms = Kms(srv.kms_endpoint)
        b = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), srv.endpoint, unique_bucket_name("kmsrest"))
        b.create_bucket()
        k = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
        secrets_seen = []
        for _ in range(3):
            g = kms(GenerateDataKeyRequest, KeyId=k)
            secrets_seen += [g["Plaintext"].encode(), base64.b64decode(g["Plaintext"])]
        material = os.urandom(32)
        ext = kms(CreateKeyRequest, Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
        _import(kms, ext, material)
        secrets_seen += [material, base64.b64encode(material)]
        marker = b"KMS-PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
        b.put_object("o", marker * 1000, headers={SSE: "KMS", SSE_KEY: k})
        assert b.get_object("o").read() == marker * 1000

        # Rotation: old objects still read, new ones record the new version.
        kms(CreateKeyVersionRequest, KeyId=k)
        b.put_object("after-rotation", b"new", headers={SSE: "KMS", SSE_KEY: k})
        assert b.get_object("o").read() == marker * 1000
        db = sqlite3.connect(str(srv.data_dir / "meta.sqlite"))
        versions = {}
        for key, record in db.execute("SELECT key, record FROM objects"):
            rec = json.loads(record)
            if rec.get("encryption"):
                versions[bytes(key).decode()] = rec["encryption"]["key_version"]
        db.close()
        assert versions["o"] == 1 and versions["after-rotation"] == 2

        # KMS switched off for the account: SSE-KMS writes and reads fail, nothing stored.
        subprocess.run([str(ARCA_BIN), "kms", "--config", str(srv.config_path), "service", "off"], check=True, timeout=60)
        time.sleep(KMS_LOOKUP_TTL)
        with pytest.raises(oss2.exceptions.ServerError) as e:
            b.put_object("off", b"x", headers={SSE: "KMS"})
        assert (e.value.status, e.value.code) == (403, "KmsServiceNotEnabled")
        assert not b.object_exists("off")
        with pytest.raises(oss2.exceptions.ServerError) as e:
            b.get_object("o")
        assert e.value.code == "KmsServiceNotEnabled"
        assert kms.error(ListKeysRequest) == (403, "Forbidden.KmsServiceNotEnabled")
        subprocess.run([str(ARCA_BIN), "kms", "--config", str(srv.config_path), "service", "on"], check=True, timeout=60)
        time.sleep(KMS_LOOKUP_TTL)
        assert b.get_object("o").read() == marker * 1000
    finally:
        srv.stop()
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        content = path.read_bytes()
        assert marker not in content, "plaintext object data in %s" % path
        for s in secrets_seen:
            assert s not in content, "key material in %s" % path
    assert b"DEBUG" in srv.stderr_path.read_bytes(), "the scan must have covered debug-level logs"


def test_reencrypt_and_update_description(kms, key):
    from aliyunsdkkms.request.v20160120 import ReEncryptRequest

    other = kms(CreateKeyRequest)["KeyMetadata"]["KeyId"]
    e = kms(EncryptRequest, KeyId=key["KeyId"], Plaintext="cmUtZW5j", EncryptionContext='{"a":"1"}')
    r = kms(ReEncryptRequest, CiphertextBlob=e["CiphertextBlob"], DestinationKeyId=other,
            SourceEncryptionContext='{"a":"1"}', DestinationEncryptionContext='{"b":"2"}')
    assert r["KeyId"] == other and r["SourceKeyId"] == key["KeyId"]
    assert kms(DecryptRequest, CiphertextBlob=r["CiphertextBlob"], EncryptionContext='{"b":"2"}')["Plaintext"] == "cmUtZW5j"
    kms(UpdateKeyDescriptionRequest, KeyId=other, Description="renamed")
    assert kms(DescribeKeyRequest, KeyId=other)["KeyMetadata"]["Description"] == "renamed"
