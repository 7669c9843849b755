"""docs/protocol.md is normative: every error code and every event the server
handles must be documented there. docs/design/audit.md names every audit
action the code records, and every detail key the log accepts."""

from __future__ import annotations

import ast
import re

from chatserver.domain.audit import ALLOWED_DETAIL_KEYS
from chatserver.errors import all_codes
from chatserver.settings import REPO_ROOT
from chatserver.transport.liaison import LiaisonNamespace
from chatserver.transport.staff import StaffNamespace
from chatserver.transport.youth import YouthNamespace

PROTOCOL = (REPO_ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
AUDIT_DOC = (REPO_ROOT / "docs" / "design" / "audit.md").read_text(encoding="utf-8")


def test_every_error_code_is_in_the_table() -> None:
    missing = sorted(c for c in all_codes() if f"| `{c}` |" not in PROTOCOL)
    assert missing == []


def test_every_event_is_documented() -> None:
    events = set(YouthNamespace.EVENTS) | set(StaffNamespace.EVENTS) | set(LiaisonNamespace.EVENTS)
    missing = sorted(e for e in events if f"`{e}`" not in PROTOCOL)
    assert missing == []


def _recorded_actions() -> set[str]:
    """Every action name the code hands the audit log as a literal: the second
    argument of ``AuditLog.record`` and ``_append``, ``Outcome.audit`` and ``_audit_only``, the
    first of auth's ``fail``, the second of the partner bank's ``_write``; both arms of
    ``"a" if x else "b"``."""
    found: set[str] = set()
    for path in (REPO_ROOT / "chatserver").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else (
                func.id if isinstance(func, ast.Name) else "")
            if name in ("record", "audit", "_audit_only", "_append"):
                position = 1
            elif name == "fail" and path.name == "auth.py":
                position = 0
            elif name == "_write" and path.name == "partner_bank.py":
                position = 1
            else:
                continue
            if len(node.args) <= position:
                continue
            arg = node.args[position]
            for value in (arg.body, arg.orelse) if isinstance(arg, ast.IfExp) else (arg,):
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.add(value.value)
    return found


def _documented_actions() -> set[str]:
    section = AUDIT_DOC.split("\n## Actions\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def test_every_audit_action_is_in_the_table_and_no_other() -> None:
    recorded = _recorded_actions()
    assert {"login_ok", "claim", "return_issued", "audit_keyed"} <= recorded  # the walk works
    assert sorted(recorded - _documented_actions()) == []
    assert sorted(_documented_actions() - recorded) == []


def test_every_allowed_detail_key_is_named_in_the_audit_design() -> None:
    assert sorted(k for k in ALLOWED_DETAIL_KEYS if f"`{k}`" not in AUDIT_DOC) == []


# ---------------------------------------------------------------- protocol.md's tables
#
# The tables are read as tables: a row's first cell names the code, the call
# or the event, so a name mentioned in passing elsewhere does not count.


def _protocol_section(heading: str) -> str:
    """The text under the ``## `` heading that starts with ``heading``."""
    for part in PROTOCOL.split("\n## ")[1:]:
        if part.startswith(heading):
            return part
    raise AssertionError(f"docs/protocol.md has no section {heading!r}")


def _tables(text: str) -> list[tuple[str, list[str]]]:
    """(header's first cell, first cells of the rows) of every Markdown table."""
    tables: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|") or (i and lines[i - 1].startswith("|")):
            continue
        block = []
        for row in lines[i:]:
            if not row.startswith("|"):
                break
            block.append(row.split("|")[1].strip())
        tables.append((block[0], block[2:]))
    return tables


def _names(cells: list[str]) -> set[str]:
    return {name for cell in cells for name in re.findall(r"`([a-z_]+)`", cell)}


def _table_names(text: str, header: str) -> set[str]:
    return {name for head, rows in _tables(text) if head == header for name in _names(rows)}


def test_the_error_table_names_every_code_and_no_other() -> None:
    table = _table_names(_protocol_section("Calls, acks and errors"), "code")
    assert {"bad_payload", "internal"} <= table  # the table was found
    assert sorted(table - set(all_codes())) == []
    assert sorted(set(all_codes()) - table) == []


def test_each_namespace_documents_exactly_its_own_calls() -> None:
    youth = _protocol_section("Youth namespace")
    # /youth: one "### `event`" heading per call, the continuity calls as a list.
    youth_doc = set(re.findall(r"^### `([a-z_]+)`", youth, re.M)) | \
        set(re.findall(r"^- `([a-z_]+)` `\{", youth, re.M))
    assert youth_doc == set(YouthNamespace.EVENTS)
    for heading, namespace in (("Liaison namespace", LiaisonNamespace),
                               ("Staff namespace", StaffNamespace)):
        calls = _table_names(_protocol_section(heading), "call")
        assert calls == set(namespace.EVENTS), heading


def _emitted_events() -> set[str]:
    """Every event name the server hands ``emit`` (or builds an ``Emit``
    with) as a literal (domain and transport; the Python client's emits are
    calls, not server events)."""
    found: set[str] = set()
    paths = [*(REPO_ROOT / "chatserver" / "domain").rglob("*.py"),
             *(REPO_ROOT / "chatserver" / "transport").glob("*.py"),
             REPO_ROOT / "chatserver" / "app.py"]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = (isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "emit") or
                (isinstance(node.func, ast.Name) and node.func.id == "Emit")))
            if named and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def test_every_server_event_is_in_a_server_table_and_no_other() -> None:
    emitted = _emitted_events()
    assert {"box", "roster", "queue", "ops"} <= emitted  # the walk works
    tables = set()
    for heading in ("Youth namespace", "Liaison namespace", "Staff namespace"):
        tables |= _table_names(_protocol_section(heading), "event")
    liaison = _protocol_section("Liaison namespace")
    in_prose = _names([liaison.split("Server → liaison:", 1)[1].split("\n\n", 1)[0]])
    assert sorted(emitted - (tables | in_prose)) == []
    assert sorted(tables - emitted) == []
