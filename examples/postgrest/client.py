#!/usr/bin/env python3
"""The PostgREST example driven from a Python backend with psycopg 3.

A backend that talks to PostgreSQL itself (instead of through PostgREST) can
use the same pre-request function and row-level security: per request, in one
transaction, hand over the request headers, switch to the api role, call
api_keys.api_key_authenticate(), then query. This script does exactly that
and checks what each organisation's key may see and do.

Environment:
  API_KEYS_EXAMPLE_DSN                superuser connection string (required),
                                      e.g. postgresql://postgres@127.0.0.1:25329/api_keys
  API_KEYS_EXAMPLE_AUTHENTICATOR_DSN  connection string for the authenticator
                                      role (default: the DSN above with
                                      user=authenticator)
  API_KEYS_EXAMPLE_ROLE_SUFFIX        append _<suffix> to the role names
                                      authenticator, anon and api (the test
                                      suite uses this to isolate runs)

It creates the extension and loads schema.sql when they are missing, seeds
two organisations with fresh ids, issues their keys as the superuser, runs the
checks as the authenticator, prints one line per check and finally
`N passed, N failed`. Exit status 0 only if every check passed.

Requires: pip install 'psycopg[binary]'
"""

import json
import os
import re
import secrets
import sys
import traceback
from pathlib import Path

import psycopg
from psycopg import sql

HERE = Path(__file__).resolve().parent
ROLE_WORDS = re.compile(r"\b(authenticator|anon|api)\b")


def role_names():
    suffix = os.environ.get("API_KEYS_EXAMPLE_ROLE_SUFFIX", "").strip()
    if suffix and not re.fullmatch(r"[a-z0-9_]{1,32}", suffix):
        raise SystemExit("API_KEYS_EXAMPLE_ROLE_SUFFIX must match [a-z0-9_]{1,32}")
    return {base: f"{base}_{suffix}" if suffix else base for base in ("authenticator", "anon", "api")}


def schema_sql(roles):
    text = (HERE / "schema.sql").read_text()
    return ROLE_WORDS.sub(lambda m: roles[m.group(1)], text)


def ensure_schema(admin, roles):
    """CREATE EXTENSION and schema.sql, only when something is missing."""
    admin.execute("CREATE EXTENSION IF NOT EXISTS api_keys")
    missing = admin.execute(
        "SELECT to_regclass('app.todos') IS NULL"
        " OR to_regprocedure('app_private.authenticate_request()') IS NULL"
        " OR (SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)) < 3",
        [list(roles.values())],
    ).fetchone()[0]
    if missing:
        admin.execute(schema_sql(roles))
    return missing


def issue_key(admin, org, scopes, name):
    """Issues a key for organisation `org`: (id, token). The token is shown once."""
    return admin.execute(
        "SELECT id, token FROM api_keys.api_key_issue("
        " owner_type => 'org', owner_id => %s, name => %s, scopes => %s::text[])",
        [org, name, scopes],
    ).fetchone()


class Rejected(Exception):
    """The database refused the request (SQLSTATE and message)."""

    def __init__(self, err):
        self.sqlstate = err.sqlstate
        self.message = err.diag.message_primary or str(err)
        super().__init__(f"{self.sqlstate}: {self.message}")


def request(conn, role, method, path, headers, query, params=(), pre_request="api_keys.api_key_authenticate"):
    """One request, as PostgREST runs it: a transaction with the request's
    headers (names lower-cased), the role switch, the pre-request and the query.
    Returns the query's rows; raises Rejected with the SQLSTATE on any error
    (PT401 -> HTTP 401, PT403 -> 403, 42501 -> 403)."""
    headers_json = json.dumps({name.lower(): value for name, value in headers.items()})
    read_only = method in ("GET", "HEAD")
    conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY" if read_only else "BEGIN")
    try:
        conn.execute(
            "SELECT set_config('request.method', %s, true),"
            " set_config('request.path', %s, true),"
            " set_config('request.headers', %s, true)",
            [method, path, headers_json],
        )
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        if pre_request:
            conn.execute(sql.SQL("SELECT {}()").format(sql.Identifier(*pre_request.split("."))))
        cur = conn.execute(query, params)
        rows = cur.fetchall() if cur.description else cur.rowcount
    except psycopg.Error as err:
        conn.execute("ROLLBACK")
        raise Rejected(err) from None
    conn.execute("COMMIT")
    return rows


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn):
        try:
            fn()
        except Exception as err:  # any failure is a failed check, never a crash
            self.failed += 1
            detail = str(err) or type(err).__name__
            print(f"FAIL - {name}: {detail}")
            if not isinstance(err, AssertionError):
                traceback.print_exc(file=sys.stderr)
        else:
            self.passed += 1
            print(f"ok   - {name}")


def expect_rejected(fn, sqlstate, reason=None):
    try:
        result = fn()
    except Rejected as err:
        assert err.sqlstate == sqlstate, f"expected {sqlstate}, got {err}"
        if reason:
            assert f"api_keys: {reason}:" in err.message, f"expected reason {reason}, got {err.message}"
        return err
    raise AssertionError(f"expected {sqlstate}, got success: {result!r}")


def main():
    dsn = os.environ.get("API_KEYS_EXAMPLE_DSN")
    if not dsn:
        print("API_KEYS_EXAMPLE_DSN is not set (a superuser connection string)", file=sys.stderr)
        print("0 passed, 1 failed")
        return 2
    roles = role_names()
    checks = Checks()

    # Operator side, as a superuser: schema, data, keys.
    admin = psycopg.connect(dsn, autocommit=True)
    loaded = ensure_schema(admin, roles)
    print(f"schema.sql {'loaded' if loaded else 'already present'}; roles {', '.join(roles.values())}")
    run_id = secrets.token_hex(4)
    org_a, org_b = f"acme-{run_id}", f"globex-{run_id}"
    for org, titles in ((org_a, ["a: write docs", "a: ship it"]), (org_b, ["b: secret plan"])):
        for title in titles:
            admin.execute("INSERT INTO app.todos (org_id, title) VALUES (%s, %s)", [org, title])
    _, key_a = issue_key(admin, org_a, ["todos:read", "todos:write"], "backend A")
    _, key_b = issue_key(admin, org_b, ["todos:read", "todos:write"], "backend B")
    _, key_a_read_only = issue_key(admin, org_a, ["todos:read"], "read-only A")
    revoked_id, key_revoked = issue_key(admin, org_a, ["todos:read"], "revoked A")
    admin.execute("SELECT api_keys.api_key_revoke(%s)", [revoked_id])

    def todos_of(org):
        return admin.execute("SELECT org_id, title FROM app.todos WHERE org_id = %s ORDER BY id", [org]).fetchall()

    # Request side, as PostgREST or a backend would: log in as authenticator.
    auth_dsn = os.environ.get("API_KEYS_EXAMPLE_AUTHENTICATOR_DSN")
    if auth_dsn:
        conn = psycopg.connect(auth_dsn, autocommit=True)
    else:
        conn = psycopg.connect(dsn, user=roles["authenticator"], autocommit=True)
    api = roles["api"]
    list_todos = "SELECT org_id, title, done FROM app.todos ORDER BY id"

    def get(headers, query=list_todos, params=()):
        return request(conn, api, "GET", "/todos", headers, query, params)

    def post(headers, query, params=(), pre_request="api_keys.api_key_authenticate"):
        return request(conn, api, "POST", "/todos", headers, query, params, pre_request)

    def a_sees_only_a():
        rows = get({"X-Api-Key": key_a})
        assert rows, "no rows"
        assert all(r[0] == org_a for r in rows), f"foreign rows: {rows}"
        assert [r[1] for r in rows] == [t for _, t in todos_of(org_a)], rows

    def b_sees_only_b():
        rows = get({"x-api-key": key_b})
        assert [r[1] for r in rows] == ["b: secret plan"], rows

    def a_can_insert():
        rows = post({"x-api-key": key_a}, "INSERT INTO app.todos (title) VALUES (%s) RETURNING org_id, title",
                    ["a: from python"])
        assert rows == [(org_a, "a: from python")], rows
        assert (org_a, "a: from python") in todos_of(org_a)

    def a_cannot_insert_for_b():
        before = todos_of(org_b)
        err = expect_rejected(
            lambda: post({"x-api-key": key_a}, "INSERT INTO app.todos (org_id, title) VALUES (%s, %s)",
                         [org_b, "a: sneaky"]),
            "42501",
        )
        assert "row-level security" in err.message, err.message
        assert todos_of(org_b) == before

    def a_cannot_update_b():
        updated = post({"x-api-key": key_a}, "UPDATE app.todos SET done = true WHERE org_id = %s", [org_b])
        assert updated == 0, f"updated {updated} of B's rows"

    def revoked_gets_401():
        expect_rejected(lambda: get({"x-api-key": key_revoked}), "PT401", "revoked")

    def no_key_gets_401():
        expect_rejected(lambda: get({"accept": "application/json"}), "PT401", "malformed")

    def bearer_works():
        rows = get({"Authorization": f"Bearer {key_b}"})
        assert [r[1] for r in rows] == ["b: secret plan"], rows

    def read_only_key_gets_403_for_a_write():
        expect_rejected(
            lambda: post({"x-api-key": key_a_read_only}, "INSERT INTO app.todos (title) VALUES ('x')",
                         pre_request="app_private.authenticate_request"),
            "PT403", "insufficient_scope",
        )

    def no_leak_to_next_transaction():
        get({"x-api-key": key_a})
        conn.execute("BEGIN")
        try:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(api)))
            owner, visible = conn.execute(
                "SELECT api_keys.current_owner_id(), (SELECT count(*) FROM app.todos)").fetchone()
        finally:
            conn.execute("ROLLBACK")
        assert (owner, visible) == (None, 0), f"leaked: owner {owner!r}, {visible} rows visible"

    checks.run("org A's key sees only org A's todos", a_sees_only_a)
    checks.run("org B's key sees only org B's todos", b_sees_only_b)
    checks.run("org A's key can insert a todo, owned by org A", a_can_insert)
    checks.run("org A's key cannot insert a todo for org B", a_cannot_insert_for_b)
    checks.run("org A's key cannot update org B's todos", a_cannot_update_b)
    checks.run("a revoked key gets PT401 (revoked)", revoked_gets_401)
    checks.run("a request without a key gets PT401", no_key_gets_401)
    checks.run("a key in Authorization: Bearer works too", bearer_works)
    checks.run("a read-only key gets PT403 for a write (per-route pre-request)", read_only_key_gets_403_for_a_write)
    checks.run("the identity does not leak into the next transaction", no_leak_to_next_transaction)

    conn.close()
    admin.close()
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        sys.exit(1)
