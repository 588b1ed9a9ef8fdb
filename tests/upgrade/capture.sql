-- Upgrade stage (scripts/upgrade-test.sh): replay every verify call of the
-- fixture (each token × each upgrade_fixture.verify_args row, under strict
-- environment isolation off and on) and keep the whole verification row as
-- text in upgrade_fixture.verify_<phase>, phase = before | after:
--   psql -v phase=before -f capture.sql
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DELETE FROM upgrade_fixture.verify_:phase;

SET api_keys.strict_environment_isolation = off;
SET api_keys.environment = '';
INSERT INTO upgrade_fixture.verify_:phase (token_label, args_id, strict, valid, code, row_text)
SELECT t.label, a.args_id, false, v.valid, v.code, v::text
  FROM upgrade_fixture.tokens t
 CROSS JOIN upgrade_fixture.verify_args a
 CROSS JOIN LATERAL api_keys.api_key_verify(t.token, a.required_scopes, a.environment) v
 ORDER BY t.label, a.args_id;

SET api_keys.strict_environment_isolation = on;
INSERT INTO upgrade_fixture.verify_:phase (token_label, args_id, strict, valid, code, row_text)
SELECT t.label, a.args_id, true, v.valid, v.code, v::text
  FROM upgrade_fixture.tokens t
 CROSS JOIN upgrade_fixture.verify_args a
 CROSS JOIN LATERAL api_keys.api_key_verify(t.token, a.required_scopes, a.environment) v
 ORDER BY t.label, a.args_id;
RESET api_keys.strict_environment_isolation;
RESET api_keys.environment;
