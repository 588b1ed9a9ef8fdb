-- api_keys 0.1.0 -> 0.2.0. Brings a 0.1.0 database to what a fresh 0.2.0
-- install creates (the upgrade stage, scripts/upgrade-test.sh, compares the
-- two catalogs). Runs inside ALTER EXTENSION api_keys UPDATE, as the
-- extension's owner (a superuser).
\echo Use "ALTER EXTENSION api_keys UPDATE" to load this file. \quit
