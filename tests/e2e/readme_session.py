"""README.md as a reader meets it: its ```bash and ```python blocks, cut into the commands a
reader types one at a time, each with what the README says it answers, run in one shell.

Rules the README's blocks follow (and ``test_readme`` holds them to):

- ``<!-- not run: <reason> -->`` on the line before a block keeps it out (``make run`` itself,
  production commands); the reason is shown in the test's report.
- A ```python block whose first line is ``# <name>.py`` is a file the reader saves (a shell
  line below runs it); any other ```python block is run as a script where it stands, with the
  shell's variables in its environment.
- A ``# -> ...`` comment (on the lines right after a command, or at the end of its last line)
  says what it answers: an optional HTTP status (``# -> 409``), then JSON whose keys must all
  be in the answer and whose literal values (strings, integers, booleans, null) must be too;
  ``"<placeholders>"``, ``…`` and fractions stand for values that vary. Text that is not JSON
  must appear in the output as written. Without a status, every HTTP answer must be 2xx.
- A command ending in ``&`` runs in the background (the reader's ``worker.py``); it is stopped
  with SIGINT, as Ctrl-C would, once the README is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.+?)\s*-->$")
SAVED_FILE = re.compile(r"^#\s*(?P<name>[\w.-]+\.py)\b")
STATUS_CLAIM = re.compile(r"^(?P<status>[1-5]\d\d)\b\s*")
CLAIM_KEY = re.compile(r'"([^"\\]+)"\s*:')
CLAIM_LITERAL = re.compile(r'"([^"\\]+)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?![.\d])|true|false|null)(?=\s*[,}\]])')
HTTP_MARK = "::readme-http::"
DONE_MARK = "::readme-done::"


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # of the opening fence in README.md
    not_run: str | None  # the reason, when the README keeps it out


@dataclass
class Command:
    code: str
    line: int
    claim: str = ""  # what the README says it answers ("# -> ..."), joined

    @property
    def background(self) -> bool:
        return self.bare.endswith("&") and not self.bare.endswith("&&")

    @property
    def bare(self) -> str:
        """The code without comments, whitespace collapsed (to recognise a command)."""
        return " ".join(" ".join(_code_only(line) for line in self.code.splitlines()).split())


def blocks(text: str) -> list[Block]:
    """Every ```bash and ```python block, indented ones (in list items) included, in order."""
    found: list[Block] = []
    for m in FENCE.finditer(text):
        if m["lang"] not in ("bash", "python"):
            continue
        indent = len(m["indent"])
        code = "".join(line[indent:] for line in m["body"].splitlines(keepends=True))
        before = [line.strip() for line in text[: m.start()].splitlines() if line.strip()]
        marker = NOT_RUN.match(before[-1]) if before else None
        found.append(Block(m["lang"], code, text.count("\n", 0, m.start()) + 1, marker["reason"] if marker else None))
    return found


def _scan(line: str, quote: str | None) -> tuple[str | None, int | None]:
    """The quote still open at the end of ``line`` (None, "'" or '"') given the one open at
    its start, and where a comment starts (None: no comment)."""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote == "'":
            if ch == "'":
                quote = None
        elif ch == "\\":
            i += 1
        elif quote == '"':
            if ch == '"':
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t;"):
            return quote, i
        i += 1
    return quote, None


def _code_only(line: str) -> str:
    _, comment = _scan(line, None)
    return line if comment is None else line[:comment]


def commands(block: Block) -> list[Command]:
    """A bash block cut into commands: a command goes on while a quote is open or a line ends
    in a backslash; comment lines between commands are prose, except ``# -> ...`` claims."""
    out: list[Command] = []
    current: list[str] = []
    quote: str | None = None
    claiming = False
    for number, line in enumerate(block.code.splitlines(), start=block.line + 1):
        stripped = line.strip()
        if not current and quote is None:
            if stripped.startswith("# ->") and out:
                out[-1].claim += " " + stripped[4:].strip()
                claiming = True
                continue
            if stripped.startswith("#") and claiming and out and stripped[1:2] == " " and stripped[2:3] == " ":
                out[-1].claim += " " + stripped[1:].strip()  # a claim continued on an indented line
                continue
            claiming = False
            if not stripped or stripped.startswith("#"):
                continue
        start = line.rstrip()
        if not current:
            first_line = number
        current.append(line)
        quote, comment = _scan(line, quote)
        if quote is None and comment is not None and line[comment:].startswith("# ->"):
            start = line[:comment]
        if quote is None and not _code_only(start).rstrip().endswith("\\"):
            command = Command("\n".join(current), first_line)
            if comment is not None and line[comment:].startswith("# ->"):
                command.claim = line[comment + 4 :].strip()
            out.append(command)
            current, claiming = [], False
    assert not current, f"README.md line {block.line}: a command never ends (an unclosed quote?)"
    for command in out:
        command.claim = command.claim.strip()
    return out


# -- claims -------------------------------------------------------------------------------------------


def expected_status(claim: str) -> int | None:
    m = STATUS_CLAIM.match(claim)
    return int(m["status"]) if m else None


def _documents(output: str) -> list[Any]:
    """The JSON in ``output``: one document, or one per line (NDJSON, several answers)."""
    try:
        return [json.loads(output)]
    except ValueError:
        docs = []
        for line in output.splitlines():
            try:
                docs.append(json.loads(line))
            except ValueError:
                continue
        return docs


def _pairs(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _pairs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _pairs(v)


def claim_problems(claim: str, output: str) -> list[str]:
    """What in ``claim`` (the part after an HTTP status) the output does not bear out."""
    body = STATUS_CLAIM.sub("", claim, count=1).strip()
    if not body:
        return []
    if body[0] not in "{[":
        return [] if body in output else [f"output lacks {body!r}"]
    pairs = [p for doc in _documents(output) for p in _pairs(doc)]
    if not pairs:
        return [f"no JSON object in the output for {body}"]
    keys = {k for k, _ in pairs}
    problems = [f"no key {k!r}" for k in dict.fromkeys(CLAIM_KEY.findall(body)) if k not in keys]
    for key, literal in CLAIM_LITERAL.findall(body):
        value = json.loads(literal)
        if isinstance(value, str) and ("<" in value or "…" in value):
            continue
        if not any(k == key and v == value and type(v) is type(value) for k, v in pairs):
            problems.append(f"no {key!r}: {literal}")
    return problems


# -- the shell ----------------------------------------------------------------------------------------

PREAMBLE = f"""\
set -a  # every variable the README sets reaches python blocks and background commands
set -m  # background jobs get Ctrl-C (SIGINT), as in a terminal
# Each HTTP answer's status, on stderr (the README's curl lines never use -w themselves)
curl() {{ command curl -w '%{{stderr}}{HTTP_MARK} %{{http_code}}\\n' "$@"; }}
"""


@dataclass
class Outcome:
    exit_status: int
    stdout: str
    stderr: str
    http: list[int] = field(default_factory=list)


class Shell:
    """One bash session for the whole README, so variables set in one block reach the next."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self._n = 0
        self._proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        assert self._proc.stdout is not None
        out = self._proc.stdout

        def read() -> None:
            for line in iter(out.readline, ""):
                self._lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        self.jobs: list[tuple[int, Path]] = []  # (pid, its output file)
        (cwd / "readme-preamble.sh").write_text(PREAMBLE)
        assert self.run("source readme-preamble.sh").exit_status == 0

    def _send(self, line: str, timeout: float) -> int:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line + f'; echo "{DONE_MARK} $?"\n')
        self._proc.stdin.flush()
        deadline = time.monotonic() + timeout
        noise: list[str] = []
        while True:
            try:
                got = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError(f"no answer in {timeout} s; the shell said: {''.join(noise)}") from None
            if got.startswith(DONE_MARK):
                return int(got.split()[1])
            noise.append(got)

    def run(self, code: str, timeout: float = 60.0, *, background: bool = False) -> Outcome:
        """Run ``code`` as typed at the prompt; its stdout and stderr, apart. ``background``:
        it ends in ``&``, and its job is kept for ``stop_jobs``."""
        self._n += 1
        script, out, err = (self.cwd / f"readme-{self._n}.{ext}" for ext in ("sh", "out", "err"))
        script.write_text(code + "\n")
        line = f"source {script.name} > {out.name} 2> {err.name}"
        if background:  # keep the job's pid: `wait PID` gives its status even after it ended
            line += f"; s=$?; echo $! > readme-{self._n}.pid; (exit $s)"
        status = self._send(line, timeout)
        if background:
            self.jobs.append((int((self.cwd / f"readme-{self._n}.pid").read_text()), out))
        stderr_lines = err.read_text().splitlines(keepends=True)
        http = [int(x.split()[1]) for x in stderr_lines if x.startswith(HTTP_MARK)]
        stderr = "".join(x for x in stderr_lines if not x.startswith(HTTP_MARK))
        return Outcome(status, out.read_text(), stderr, http)

    def stop_jobs(self, timeout: float = 60.0) -> list[tuple[int, str]]:
        """Ctrl-C for each background job (its process group) still running; each job's exit
        status and output, in the order they started."""
        stopped: list[tuple[int, str]] = []
        for pid, out in self.jobs:
            # A job that ended by itself (an SSE stream after its run finished) is only waited for.
            status = self._send(f"kill -INT -- -{pid} 2>/dev/null; wait {pid}", timeout)
            stopped.append((status, out.read_text()))
        return stopped

    def abandon_jobs(self) -> list[str]:
        """What each background job printed, after killing it (for a report when the shell is
        stuck in a command and can take no other)."""
        for pid, _ in self.jobs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        return [out.read_text() for _, out in self.jobs]

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
