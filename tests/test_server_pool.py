"""The test session's server pool (tests/conftest.py): a server is shared by the tests that need it, stops after the
last of them, and starts again for a later test that asks for it by name at run time."""
from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[1]

CONFTEST = r'''
import sys, pytest
from tests.conftest import *  # noqa: F401,F403  the pool, its fixture and its hooks, as the real suite has them

OK = ("import http.server, sys\n"
      "class OK(http.server.BaseHTTPRequestHandler):\n"
      "    def do_GET(self):\n"
      "        self.send_response(200); self.end_headers()\n"
      "    def log_message(self, *a):\n"
      "        pass\n"
      "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), OK).serve_forever()\n")

@pytest.fixture(scope="session")
def web(server_pool):
    return server_pool.get("web", lambda port: [sys.executable, "-c", OK, str(port)], timeout=60)
'''

TESTS = '''
import json, pathlib, httpx, pytest
LOG = pathlib.Path("urls.json")

def seen():
    return json.loads(LOG.read_text()) if LOG.exists() else []

def up(url):
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False

def test_a(web):
    LOG.write_text(json.dumps([web])); assert up(web)

def test_b(web):
    assert seen() == [web] and up(web)  # shared: the same server, kept between its two users

def test_c():
    assert up(seen()[0])  # not used here, but test_d declares it: kept, not restarted

@pytest.mark.uses_servers("web")
def test_d(request):
    url = request.getfixturevalue("web")  # asked for by name, declared: the same server
    assert url == seen()[0] and up(url)

def test_e():
    assert not up(seen()[0])  # stopped after its last (declared) user

def test_f(request):
    url = request.getfixturevalue("web")  # undeclared: costs a restart, never a dead URL
    assert up(url) and url not in seen()
'''


def test_servers_stop_after_their_last_user_and_restart_on_demand(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_pool=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    uses_servers: server fixtures a test asks for by name\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6)
