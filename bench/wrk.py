"""Driving ``wrk``: a Lua script that POSTs JSON bodies with a bearer token, and its output.

wrk (Debian package ``wrk``) holds many connections open from a couple of
threads written in C, so the load generator is not what saturates first; the
Lua script cycles through a set of pre-formatted requests so the server sees
many different engineers, tenants and resources, not one cached question.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MISSING = "wrk is not installed: apt-get install wrk (Debian package 'wrk')"


def available() -> bool:
    return shutil.which("wrk") is not None


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    def merged(self, other: WrkResult) -> WrkResult:
        """Two wrk processes run side by side: rates add up, the worse latency is kept."""
        return WrkResult(
            self.rps + other.rps,
            max(self.p50_ms, other.p50_ms),
            max(self.p99_ms, other.p99_ms),
            self.requests + other.requests,
            self.non_2xx + other.non_2xx,
            self.socket_errors + other.socket_errors,
        )


def write_script(path: Path, url_path: str, bodies: list[dict[str, Any]], token: str) -> Path:
    """A script that cycles through ``bodies`` (each thread from its own offset)."""
    literals = ",\n".join(f"[==[{json.dumps(b, separators=(',', ':'))}]==]" for b in bodies)
    path.write_text(
        f"""
local bodies = {{
{literals}
}}
local headers = {{
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer {token}",
}}
local requests = {{}}
local index = 0
local threads = 0

setup = function(thread)
  thread:set("offset", threads * 97)
  threads = threads + 1
end

init = function(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "{url_path}", headers, body)
  end
  index = offset or 0
end

request = function()
  index = index % #requests + 1
  return requests[index]
end
"""
    )
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read the latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
    )


def start(
    url: str, script: Path, *, connections: int, threads: int, seconds: float
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float) -> WrkResult:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {output}")
    return parse(output)


def run(
    url: str, script: Path, *, connections: int = 50, threads: int = 2, seconds: float = 10
) -> WrkResult:
    process = start(url, script, connections=connections, threads=threads, seconds=seconds)
    return finish(process, seconds + 60)
