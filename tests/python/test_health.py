"""The health endpoint and the harness itself, against the real binary."""

import urllib.error
import urllib.request


def test_healthz_answers_200_once_ports_are_up(start_flowgate):
    fg, url = start_flowgate()
    with urllib.request.urlopen(url + "/healthz") as r:
        assert r.status == 200
        assert r.read() == b"ok\n"
    try:
        urllib.request.urlopen(url + "/no/such/path")
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    # HEAD is GET without a body; other methods are not allowed here.
    for path in ("/healthz", "/readyz", "/metrics"):
        with urllib.request.urlopen(urllib.request.Request(url + path, method="HEAD")) as r:
            assert r.status == 200 and r.read() == b"", path
        try:
            urllib.request.urlopen(urllib.request.Request(url + path, data=b"", method="POST"))
            raise AssertionError(f"expected 405 from POST {path}")
        except urllib.error.HTTPError as e:
            assert (e.code, e.headers["Allow"]) == (405, "GET, HEAD"), path
    fg.wait_output(lambda t: "flows active" in t, "a stats line")
    assert fg.stop() == 0
    assert "mbufs in use after close: 0 (no leak)" in fg.text()
