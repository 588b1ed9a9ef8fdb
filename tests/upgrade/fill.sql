-- Upgrade stage (scripts/upgrade-test.sh), step 1: fill a database that has
-- api_keys 0.1.0 with configuration and keys of every kind, through 0.1.0's
-- SQL API only. Run as a superuser with psql in autocommit mode (each
-- statement commits, so the usage flusher can see and update the keys).
--
-- Everything the later steps need is kept in schema upgrade_fixture, outside
-- the extension: issued tokens with their key ids, the verify calls to
-- replay, and (capture.sql, settle.sql) what they answered before the update.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE SCHEMA upgrade_fixture;

-- Every issued token (plaintext), by label; also a few tokens that were never
-- issued (malformed, bad checksum, purged).
CREATE TABLE upgrade_fixture.tokens (
    label  text PRIMARY KEY,
    key_id uuid,
    token  text
);

-- The verify calls replayed before and after the update: every token with
-- every (required_scopes, environment) pair below, under strict environment
-- isolation off and on (capture.sql).
CREATE TABLE upgrade_fixture.verify_args (
    args_id         integer PRIMARY KEY,
    required_scopes text[],
    environment     text
);
INSERT INTO upgrade_fixture.verify_args VALUES
    (1, '{}', NULL),
    (2, NULL, NULL),
    (3, '{charges:read}', NULL),
    (4, '{charges:read}', 'test'),
    (5, '{charges:write}', 'live'),
    (6, '{charges:read,refunds:write}', 'live'),
    (7, '{dashboard}', NULL),
    (8, '{legacy:scope}', 'test');

-- What each call answered: the whole verification row as text.
CREATE TABLE upgrade_fixture.verify_before (
    token_label text NOT NULL,
    args_id     integer NOT NULL,
    strict      boolean NOT NULL,
    valid       boolean,
    code        text,
    row_text    text,
    PRIMARY KEY (token_label, args_id, strict)
);
CREATE TABLE upgrade_fixture.verify_after (LIKE upgrade_fixture.verify_before INCLUDING ALL);

-- Verifications made only to give keys a usage history.
CREATE TABLE upgrade_fixture.warmup (
    token_label text NOT NULL,
    n           integer NOT NULL,
    valid       boolean,
    code        text
);

-- Lines describing how rows of a snapshot table differ from the live table
-- (matched on key_col): missing rows, and every snapshot column whose value
-- changed. Columns the live table gained are ignored.
CREATE FUNCTION upgrade_fixture.kept_diff(snapshot regclass, live regclass, key_col text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH s AS (SELECT to_jsonb(x) AS j FROM %1$s x),
             l AS (SELECT to_jsonb(y) AS j FROM %2$s y)
        SELECT format('%%s %%s: row missing after the update', %2$L, s.j->%3$L)
          FROM s WHERE NOT EXISTS (SELECT 1 FROM l WHERE l.j->%3$L = s.j->%3$L)
        UNION ALL
        SELECT format('%%s %%s: column %%s was %%s, now %%s', %2$L, s.j->%3$L, e.key, e.value,
                      coalesce((l.j->e.key)::text, '(no such column)'))
          FROM s JOIN l ON l.j->%3$L = s.j->%3$L
         CROSS JOIN LATERAL jsonb_each(s.j) e
         WHERE (l.j->e.key) IS DISTINCT FROM e.value
        $q$, snapshot, live, key_col);
END
$$;

-- 1. Before any registry or environment exists: keys that keep no
-- environment and a scope that is later not registered (back-compat keys).
INSERT INTO upgrade_fixture.tokens
SELECT 'untyped_plain', id, token
  FROM api_keys.api_key_issue('user', '1', name => 'legacy key',
                              scopes => ARRAY['legacy:scope', 'charges:read'],
                              metadata => '{"plan": "free", "tags": ["a", "b"]}');
INSERT INTO upgrade_fixture.tokens
SELECT 'untyped_expiring', id, token
  FROM api_keys.api_key_issue('user', '1', scopes => ARRAY['charges:read'], expires_in => '30_days');
INSERT INTO upgrade_fixture.tokens
SELECT 'untyped_expires_at', id, token
  FROM api_keys.api_key_issue('user', '1', name => 'until 2090',
                              expires_at => '2090-01-01 00:00:00+00');

-- 2. Scope registry (with an exclusive scope) and environments.
SELECT api_keys.api_key_scope_define('charges:read', 'read charges');
SELECT api_keys.api_key_scope_define('charges:write', 'create charges');
SELECT api_keys.api_key_scope_define('refunds:write');
SELECT api_keys.api_key_scope_define('dashboard', 'sign-in to the dashboard only', exclusive => true);
SELECT api_keys.api_key_scope_define('legacy:scope', 'kept for old keys');
SELECT api_keys.api_key_environment_define('test', 'test');
SELECT api_keys.api_key_environment_define('live', 'live');

-- 3. Key types: a secret type with a per-owner limit (no ceiling), a public
-- non-revocable publishable type with a ceiling, a restricted type with a
-- ceiling, a non-revocable non-public service type.
SELECT api_keys.api_key_type_define('secret', 'sk', per_owner_limit => 3);
SELECT api_keys.api_key_type_define('publishable', 'pk', ARRAY['charges:read'],
                                    revocable => false, public => true, per_owner_limit => 1);
SELECT api_keys.api_key_type_define('restricted', 'rk', ARRAY['charges:read', 'refunds:write']);
SELECT api_keys.api_key_type_define('service', 'svc', revocable => false);

-- 4. Owner policies.
SELECT api_keys.api_key_owner_policy_set('org', max_keys => 20, require_name => true,
                                         default_scopes => ARRAY['charges:read']);
SELECT api_keys.api_key_owner_policy_set('user', max_keys => 10);
SELECT api_keys.api_key_owner_policy_set('team', default_scopes => ARRAY['charges:read', 'refunds:write']);

-- 5. Keys of every kind. Stored scopes stay within their type's ceiling, so
-- the effective scopes (stored ∩ current ceiling) equal the stored ones.
INSERT INTO upgrade_fixture.tokens
SELECT 'secret_live', id, token
  FROM api_keys.api_key_issue('org', 'acme', name => 'server', key_type => 'secret', environment => 'live',
                              scopes => ARRAY['charges:read', 'charges:write'],
                              metadata => '{"region": "eu", "n": 1}');
INSERT INTO upgrade_fixture.tokens
SELECT 'secret_test_default_scopes', id, token
  FROM api_keys.api_key_issue('org', 'acme', name => 'ci', key_type => 'secret', environment => 'test');
INSERT INTO upgrade_fixture.tokens
SELECT 'secret_live_expiring', id, token
  FROM api_keys.api_key_issue('org', 'acme', name => 'rotating', key_type => 'secret', environment => 'live',
                              scopes => ARRAY['charges:write'], expires_in => '90_days');
INSERT INTO upgrade_fixture.tokens
SELECT 'publishable_test', id, token
  FROM api_keys.api_key_issue('org', 'acme', name => 'web test', key_type => 'publishable', environment => 'test');
INSERT INTO upgrade_fixture.tokens
SELECT 'publishable_live', id, token
  FROM api_keys.api_key_issue('org', 'acme', name => 'web live', key_type => 'publishable', environment => 'live',
                              scopes => ARRAY['charges:read'], metadata => '{"origin": "https://acme.example"}');
INSERT INTO upgrade_fixture.tokens
SELECT 'restricted_live', id, token
  FROM api_keys.api_key_issue('org', 'acme', name => 'refunds bot', key_type => 'restricted', environment => 'live',
                              scopes => ARRAY['charges:read', 'refunds:write']);
INSERT INTO upgrade_fixture.tokens
SELECT 'service_live', id, token
  FROM api_keys.api_key_issue('org', 'acme', name => 'billing service', key_type => 'service',
                              environment => 'live', scopes => ARRAY['charges:read', 'charges:write', 'refunds:write']);
INSERT INTO upgrade_fixture.tokens
SELECT 'untyped_live_dashboard', id, token
  FROM api_keys.api_key_issue('user', '2', name => 'dashboard', environment => 'live', scopes => ARRAY['dashboard']);
INSERT INTO upgrade_fixture.tokens
SELECT 'untyped_test', id, token
  FROM api_keys.api_key_issue('user', '2', environment => 'test', scopes => ARRAY['charges:read', 'legacy:scope'],
                              metadata => '{"nested": {"deep": [1, 2, {"x": null}]}}');
INSERT INTO upgrade_fixture.tokens
SELECT 'team_default_scopes', id, token
  FROM api_keys.api_key_issue('team', 'red', name => 'team key', environment => 'live');

-- revoked
INSERT INTO upgrade_fixture.tokens
SELECT 'secret_revoked', id, token
  FROM api_keys.api_key_issue('org', 'beta', name => 'leaked', key_type => 'secret', environment => 'live',
                              scopes => ARRAY['charges:read']);
SELECT api_keys.api_key_revoke(key_id) FROM upgrade_fixture.tokens WHERE label = 'secret_revoked';

-- expired: issued with a 7-day expiry, then moved into the past (superuser)
INSERT INTO upgrade_fixture.tokens
SELECT 'secret_expired', id, token
  FROM api_keys.api_key_issue('org', 'beta', name => 'old', key_type => 'secret', environment => 'test',
                              scopes => ARRAY['charges:read'], expires_in => '7_days');
UPDATE api_keys.keys k SET expires_at = now() - interval '1 hour'
  FROM upgrade_fixture.tokens t WHERE t.label = 'secret_expired' AND k.id = t.key_id;
INSERT INTO upgrade_fixture.tokens
SELECT 'untyped_expired', id, token
  FROM api_keys.api_key_issue('user', '3', environment => 'test', expires_in => '1_days');
UPDATE api_keys.keys k SET expires_at = now() - interval '2 days'
  FROM upgrade_fixture.tokens t WHERE t.label = 'untyped_expired' AND k.id = t.key_id;

-- revoke_all: two keys of one owner, and a non-revocable one that stays
INSERT INTO upgrade_fixture.tokens
SELECT 'team_blue_1', id, token
  FROM api_keys.api_key_issue('team', 'blue', environment => 'test');
INSERT INTO upgrade_fixture.tokens
SELECT 'team_blue_2', id, token
  FROM api_keys.api_key_issue('team', 'blue', environment => 'live', scopes => ARRAY['refunds:write']);
INSERT INTO upgrade_fixture.tokens
SELECT 'team_blue_service', id, token
  FROM api_keys.api_key_issue('team', 'blue', key_type => 'service', environment => 'live');
SELECT api_keys.api_key_revoke_all('team', 'blue');

-- update: new name, scopes and metadata on an active key
SELECT api_keys.api_key_update(key_id, name => 'server (renamed)', scopes => ARRAY['charges:read'],
                               metadata => '{"region": "us", "rotated": false}')
  FROM upgrade_fixture.tokens WHERE label = 'secret_live';

-- purged owner: its token becomes not_found
INSERT INTO upgrade_fixture.tokens
SELECT 'purged', id, token
  FROM api_keys.api_key_issue('user', 'gone', environment => 'live');
SELECT api_keys.api_key_purge_owner('user', 'gone');

-- tokens that never were: malformed, bad checksum, empty, NULL
INSERT INTO upgrade_fixture.tokens (label, token) VALUES
    ('malformed', 'not a token'),
    ('empty', ''),
    ('null', NULL);
INSERT INTO upgrade_fixture.tokens (label, token)
SELECT 'bad_checksum', left(token, -1) || CASE WHEN right(token, 1) = 'A' THEN 'B' ELSE 'A' END
  FROM upgrade_fixture.tokens WHERE label = 'secret_live';

-- 6. Usage: verify some keys several times (settle.sql waits until the
-- flusher has written these counts to api_keys.keys).
INSERT INTO upgrade_fixture.warmup (token_label, n, valid, code)
SELECT t.label, g, v.valid, v.code
  FROM upgrade_fixture.tokens t
  JOIN (VALUES ('secret_live', 5), ('publishable_test', 3), ('untyped_plain', 2), ('restricted_live', 4),
               ('service_live', 1), ('secret_revoked', 2), ('untyped_test', 7)) AS w(label, uses)
    ON w.label = t.label
 CROSS JOIN LATERAL generate_series(1, w.uses) g
 -- the environment argument (NULL) refers to g, so that the function scan
 -- runs once per g instead of being evaluated once and rescanned
 CROSS JOIN LATERAL api_keys.api_key_verify(t.token, '{}', nullif(g, g)::text) v;

DO $check$
BEGIN
    IF (SELECT count(*) FROM upgrade_fixture.tokens WHERE key_id IS NOT NULL) < 20 THEN
        RAISE EXCEPTION 'upgrade fixture: fewer keys issued than expected';
    END IF;
    IF (SELECT count(*) FROM upgrade_fixture.warmup WHERE valid) <> 22 THEN
        RAISE EXCEPTION 'upgrade fixture: expected 22 valid warm-up verifications, got %',
            (SELECT count(*) FROM upgrade_fixture.warmup WHERE valid);
    END IF;
END
$check$;
