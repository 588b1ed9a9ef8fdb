-- Upgrade stage: a one-line summary of what check (b) compared.
\set ON_ERROR_STOP 1
SELECT format('%s keys (%s verifications counted before the update, %s now); audit_log: %s rows before the update, %s now',
              (SELECT count(*) FROM upgrade_fixture.keys_before),
              (SELECT sum(requests_count) FROM upgrade_fixture.keys_before),
              (SELECT sum(requests_count) FROM api_keys.keys),
              (SELECT count(*) FROM upgrade_fixture.audit_before),
              (SELECT count(*) FROM api_keys.audit_log));
