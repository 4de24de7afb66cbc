import warnings

import oss2
import oss2.defaults
import pytest

from arca_testlib import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    REGION,
    ArcaServer,
    cleanup_bucket,
    unique_bucket_name,
)


# A stuck request should fail a test in reasonable time, not after oss2's default 60 s.
oss2.defaults.connect_timeout = 30


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One Arca server for most tests, on a fresh temp data dir."""
    srv = ArcaServer(tmp_path_factory.mktemp("arca-main"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def endpoint(server):
    return server.endpoint


@pytest.fixture(scope="session")
def region():
    return REGION


@pytest.fixture(scope="session")
def auth():
    return oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture(scope="session")
def auth_v4():
    return oss2.AuthV4(ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture(scope="session")
def service(server, auth):
    return oss2.Service(auth, server.endpoint)


@pytest.fixture
def bucket_name(request, server, auth):
    """A fresh, unused bucket name; the bucket (if created) is removed afterwards."""
    name = unique_bucket_name(request.node.name)
    yield name
    _teardown(oss2.Bucket(auth, server.endpoint, name))


@pytest.fixture
def bucket(request, server, auth):
    """A freshly created bucket, emptied and deleted on teardown."""
    name = unique_bucket_name(request.node.name)
    b = oss2.Bucket(auth, server.endpoint, name)
    b.create_bucket()
    yield b
    _teardown(b)


@pytest.fixture
def bucket_v4(bucket, server, auth_v4, region):
    """The same bucket as `bucket`, accessed with signature V4."""
    return oss2.Bucket(auth_v4, server.endpoint, bucket.bucket_name, region=region)


def _teardown(b):
    try:
        cleanup_bucket(b)
    except Exception as e:  # noqa: BLE001 - teardown is best effort, never masks the test result
        warnings.warn("cleanup of bucket %s failed: %r" % (b.bucket_name, e))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        shown = [s for s in ArcaServer.instances if s.is_running()] or ArcaServer.instances[-1:]
        for srv in shown:
            tail = srv.log_tail(30)
            if tail:
                rep.sections.append(("arca log tail (%s)" % srv.base_dir.name, tail))
