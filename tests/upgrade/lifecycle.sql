-- Upgrade stage, check (e): keys issued under 0.1.0 rotate after the
-- update (with a grace: both tokens verify, the old one names its
-- replacement; without: the old one is revoked at once; a non-revocable
-- one is refused), and keys are imported beside them. Runs after checks (a) and (b), in a transaction that is
-- rolled back. Prints one line per failure, nothing when all is well.
\set ON_ERROR_STOP 1
BEGIN;
CREATE TEMP TABLE failures (line text);
CREATE TEMP TABLE rotated AS
SELECT t.label, t.key_id AS old_id, t.token AS old_token, r.id AS new_id, r.token AS new_token,
       r.key_type, r.environment, r.scopes
  FROM upgrade_fixture.tokens t,
       LATERAL api_keys.api_key_rotate(t.key_id, CASE t.label WHEN 'untyped_plain' THEN interval '0 seconds'
                                                               ELSE interval '60 seconds' END) r
 WHERE t.label IN ('untyped_plain', 'secret_live', 'restricted_live', 'untyped_test');

INSERT INTO failures
SELECT format('%s: rotated %s keys, expected 4', 'rotate', count(*)) FROM rotated HAVING count(*) <> 4;
INSERT INTO failures
SELECT format('%s: the new token answers %s', r.label, v.code)
  FROM rotated r, LATERAL api_keys.api_key_verify(r.new_token) v
 WHERE v.code <> 'valid' OR v.key_id IS DISTINCT FROM r.new_id;
INSERT INTO failures
SELECT format('%s: the old token answers %s, expected %s', r.label, v.code,
              CASE r.label WHEN 'untyped_plain' THEN 'revoked' ELSE 'valid' END)
  FROM rotated r, LATERAL api_keys.api_key_verify(r.old_token) v
 WHERE v.code <> CASE r.label WHEN 'untyped_plain' THEN 'revoked' ELSE 'valid' END;
INSERT INTO failures
SELECT format('%s: replaced_by is %s, expected %s', r.label, (api_keys.api_key_get(r.old_id)).replaced_by, r.new_id)
  FROM rotated r
 WHERE (api_keys.api_key_get(r.old_id)).replaced_by IS DISTINCT FROM r.new_id;
INSERT INTO failures
SELECT format('%s: the replacement has type %s, environment %s, scopes %s; the old key %s, %s, %s',
              r.label, r.key_type, r.environment, r.scopes, o.key_type, o.environment, o.scopes)
  FROM rotated r, LATERAL api_keys.api_key_get(r.old_id) o
 WHERE (r.key_type, r.environment, r.scopes) IS DISTINCT FROM (o.key_type, o.environment, o.scopes);

DO $$
DECLARE
    svc uuid := (SELECT key_id FROM upgrade_fixture.tokens WHERE label = 'service_live');
BEGIN
    PERFORM api_keys.api_key_rotate(svc);
    INSERT INTO failures VALUES ('service_live: a non-revocable key was rotated');
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END
$$;

-- import beside the 0.1.0 keys: a legacy prefix and an imported digest;
-- the old tokens answer as before, the imported one verifies.
DO $$
BEGIN
    PERFORM api_keys.api_key_legacy_prefix_define('gem_');
    PERFORM api_keys.api_key_import('org', 'acme', pg_catalog.sha256('gem_imported_secret'::bytea), 'gem', 'cret',
                                    name => 'from the gem', environment => 'live', scopes => ARRAY['charges:read']);
END
$$;
INSERT INTO failures
SELECT format('import: the imported token answers %s', v.code)
  FROM api_keys.api_key_verify('gem_imported_secret', ARRAY['charges:read']) v
 WHERE v.code <> 'valid' OR v.owner_id IS DISTINCT FROM 'acme';
INSERT INTO failures
SELECT format('import: %s answers %s now, %s before the update', b.token_label, v.code, b.code)
  FROM upgrade_fixture.verify_before b
  JOIN upgrade_fixture.tokens t ON t.label = b.token_label
  JOIN upgrade_fixture.verify_args a ON a.args_id = b.args_id,
       LATERAL api_keys.api_key_verify(t.token, a.required_scopes, a.environment) v
 WHERE NOT b.strict AND t.label NOT IN (SELECT label FROM rotated) AND t.label <> 'purged'
   AND v.code IS DISTINCT FROM b.code;

SELECT line FROM failures ORDER BY 1;
ROLLBACK;
