"""A failure's reproduction line names the key by variable, never by value, and reproduces the request."""
import json
import shlex

from conformance._process import run_command
from conformance.client import GymClient, curl_for

BODY = {"model": "m", "messages": [{"role": "user", "content": "it's \"quoted\" $HOME `id`"}]}


def test_the_curl_line_reads_the_key_from_the_environment_never_from_the_client():
    client = GymClient("http://h:1/v1", api_key="s3cret-abcdefgh")
    line = client.curl("http://h:1/v1/chat/completions", BODY)
    assert "s3cret" not in line
    assert '-H "Authorization: Bearer $OPENAI_API_KEY"' in line
    words = shlex.split(line)
    assert words[words.index("-d") + 1] == json.dumps(BODY)  # the body survives the shell quoting as is
    assert "Authorization: Bearer $OPENAI_API_KEY" in words
    get = 'curl -sS http://h:1/v1/models -H "Authorization: Bearer $OPENAI_API_KEY"'
    assert curl_for("http://h:1/v1/models") == get


def test_a_shell_expands_the_key_and_nothing_in_the_body():
    """Pasted into sh with OPENAI_API_KEY set, the header carries the key; the body's $ and backticks stay text."""
    line = curl_for("http://h:1/v1/chat/completions", BODY)
    echo = line.replace("curl -sS -X POST", "printf '%s\\n'", 1)
    done = run_command(["sh", "-c", echo], env={"OPENAI_API_KEY": "k-123"}, capture=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "Authorization: Bearer k-123" in lines
    assert json.loads(lines[-1]) == BODY
