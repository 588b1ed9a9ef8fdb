-- Upgrade stage (scripts/upgrade-test.sh): after fill.sql and
-- capture.sql (phase=before), wait until the usage flusher has written every
-- valid verification made so far into api_keys.keys (requests_count,
-- last_used_at), then snapshot what the update must keep: keys,
-- configuration tables and the audit trail.
\set ON_ERROR_STOP 1

-- per issued key: its requests_count and the valid verifications made
CREATE VIEW upgrade_fixture.usage_per_key AS
SELECT t.label, k.requests_count,
       (SELECT count(*) FROM upgrade_fixture.warmup w WHERE w.token_label = t.label AND w.valid)
     + (SELECT count(*) FROM upgrade_fixture.verify_before b WHERE b.token_label = t.label AND b.valid) AS valid
  FROM upgrade_fixture.tokens t JOIN api_keys.keys k ON k.id = t.key_id;

DO $settle$
DECLARE
    expected bigint := (SELECT count(*) FROM upgrade_fixture.warmup WHERE valid)
                     + (SELECT count(*) FROM upgrade_fixture.verify_before WHERE valid);
    got bigint;
    deadline timestamptz := clock_timestamp() + interval '60 seconds';
BEGIN
    LOOP
        PERFORM api_keys.api_key_usage_flush();
        SELECT coalesce(sum(requests_count), 0) INTO got FROM api_keys.keys;
        EXIT WHEN got >= expected;
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'upgrade fixture: usage was not flushed within 60 s: sum(requests_count) = %, expected %',
                got, expected
                USING DETAIL = (SELECT string_agg(format('%s: requests_count %s, valid verifications %s',
                                                         x.label, x.requests_count, x.valid), E'\n' ORDER BY x.label)
                                  FROM upgrade_fixture.usage_per_key x WHERE x.requests_count <> x.valid),
                      HINT = (SELECT format('api_key_usage_stats(): %s', s) FROM api_keys.api_key_usage_stats() s);
        END IF;
        PERFORM pg_sleep(0.2);
    END LOOP;
    IF got <> expected THEN
        RAISE EXCEPTION 'upgrade fixture: sum(requests_count) = %, expected exactly %', got, expected;
    END IF;
    IF EXISTS (SELECT 1 FROM api_keys.keys WHERE requests_count > 0 AND last_used_at IS NULL) THEN
        RAISE EXCEPTION 'upgrade fixture: a used key has no last_used_at';
    END IF;
    RAISE NOTICE 'usage flushed: % verifications over % keys', got,
        (SELECT count(*) FROM api_keys.keys WHERE requests_count > 0);
END
$settle$;

CREATE TABLE upgrade_fixture.keys_before AS SELECT * FROM api_keys.keys;
CREATE TABLE upgrade_fixture.key_types_before AS SELECT * FROM api_keys.key_types;
CREATE TABLE upgrade_fixture.environments_before AS SELECT * FROM api_keys.environments;
CREATE TABLE upgrade_fixture.scopes_before AS SELECT * FROM api_keys.scopes;
CREATE TABLE upgrade_fixture.owner_policies_before AS SELECT * FROM api_keys.owner_policies;
CREATE TABLE upgrade_fixture.audit_before AS SELECT * FROM api_keys.audit_log;
