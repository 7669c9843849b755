-- chatserver's PostgreSQL roles and database (docs/operations.md, "PostgreSQL").
--
-- Two roles, least privilege:
--   owner  owns the tables; runs `chatserver store migrate` (and `store copy`)
--          before a new version starts. Its password is not on the chat nodes.
--   app    what every node and every other `chatserver` command logs in as:
--          reads and writes rows, creates and alters nothing. So a taken-over
--          node cannot drop the audit table or switch off its append-only
--          triggers (only a table's owner can), and a node of a new version
--          stops with "permission denied" until the owner has migrated.
--
-- Run once, as the postgres superuser, naming the three:
--   psql -v owner=chat_owner -v app=chat -v db=chat -f setup.sql
-- then give each role its password (asked for, so it lands in no file or
-- shell history):
--   psql -c '\password chat_owner'   and   psql -c '\password chat'
-- To restore a backup: the same command with a database name that does not
-- exist (drop or rename the broken one first), then pg_restore into it.

\set ON_ERROR_STOP on

-- The roles are made only if missing, so that a restore (the same command
-- with an existing pair of roles and a new, empty database) runs this again.
-- The database is always new: CREATE DATABASE stops on an existing one.
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', name)
  FROM (VALUES (:'owner'), (:'app')) AS wanted (name)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec
-- A statement log would hold password hashes, sealed TOTP seeds and
-- return-code lookup keys: off for both roles whatever postgresql.conf says
-- (only a superuser can change these, not the roles themselves).
ALTER ROLE :"owner" SET log_statement = 'none';
ALTER ROLE :"owner" SET log_min_duration_statement = -1;
ALTER ROLE :"app" SET log_statement = 'none';
ALTER ROLE :"app" SET log_min_duration_statement = -1;

CREATE DATABASE :"db" OWNER :"owner" TEMPLATE template0 ENCODING 'UTF8';
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"app";

\connect :"db"
-- PostgreSQL 13 and 14 let every role create tables in public; 15 does not.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO :"owner";
GRANT USAGE ON SCHEMA public TO :"app";
-- Every table and sequence the owner's migrations create, now and later.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
