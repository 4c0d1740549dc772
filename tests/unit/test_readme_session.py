"""How the README test reads README.md: blocks, commands, claims (the rules in
``tests/e2e/readme_session``), on small made-up READMEs."""

from __future__ import annotations

from tests.e2e.readme_session import blocks, claim_problems, commands, expected_status

README = """\
# Title

<!-- not run: production only -->
```bash
nsc push -a QUIPU
```

```python
# worker.py
print("saved, not run")
```

- a list item

  ```bash
  curl -s $API/x -d '{"a":1,
    "b":"x"}' | field a   # -> 1
  ```

```bash
# prose, not a command
X=$(curl -s $API/y \\
  -H 'A: b')
echo "$X"
# -> {"id":"<id>","status":"failed","n":3,"score":0.5,
#      "nested":{"ok":true},...}
curl -s -X POST $API/z
# -> 409
.venv/bin/python worker.py &   # in the background
```
"""


def test_blocks_keep_their_language_marker_and_indentation_off() -> None:
    found = blocks(README)
    assert [(b.lang, b.not_run) for b in found] == [
        ("bash", "production only"),
        ("python", None),
        ("bash", None),
        ("bash", None),
    ]
    assert found[2].code.startswith("curl -s $API/x")  # the list item's indentation is gone
    assert found[0].line == 4


def test_commands_span_open_quotes_and_continuations_and_carry_claims() -> None:
    item, last = blocks(README)[2:]
    (only,) = commands(item)
    assert only.code.count("\n") == 1 and only.claim == "1"
    got = commands(last)
    assert [c.code.splitlines()[0] for c in got] == [
        "X=$(curl -s $API/y \\",
        'echo "$X"',
        "curl -s -X POST $API/z",
        ".venv/bin/python worker.py &   # in the background",
    ]
    assert got[1].claim.startswith('{"id":"<id>"') and got[1].claim.endswith("...}")
    assert expected_status(got[2].claim) == 409 and expected_status(got[1].claim) is None
    assert got[3].background and got[3].bare == ".venv/bin/python worker.py &"
    assert not got[0].background


def test_a_claim_checks_keys_and_literal_values_not_placeholders() -> None:
    claim = '{"id":"<id>","status":"failed","n":3,"score":0.5,"nested":{"ok":true},...}'
    answer = '{"id":"e1","status":"failed","n":3,"score":0.25,"nested":{"ok":true},"more":1}'
    assert claim_problems(claim, answer) == []
    assert claim_problems(claim, answer.replace('"failed"', '"running"')) == ["no 'status': \"failed\""]
    assert claim_problems(claim, answer.replace('"n":3', '"n":"3"')) == ["no 'n': 3"]
    assert claim_problems(claim, answer.replace('"score"', '"rank"')) == ["no key 'score'"]
    assert claim_problems("409", "anything") == []
    assert claim_problems("Quipu", "Quipu\n") == [] and claim_problems("Quipu", "Other") != []
    ndjson = '{"kind":"a"}\n{"kind":"b"}\n'
    assert claim_problems('{"kind":"b"}', ndjson) == []
