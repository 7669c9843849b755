-- The referral partner directory (the slussfunktion), edited by operators in
-- the running server (docs/design/partners.md). Seeded once from the
-- partners_file when the table is empty; afterwards this table is the truth.
-- A code is never deleted (it is in audit entries and statistics): an entry
-- that ends is retired. Lists (districts, search words) are joined by '\n'.
-- revision: the directory version at which the row last changed.
CREATE TABLE partners (
    code TEXT PRIMARY KEY,
    name_sv TEXT NOT NULL,
    name_en TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    municipality TEXT NOT NULL DEFAULT '',
    districts TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    hours_sv TEXT NOT NULL,
    hours_en TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '',
    words_sv TEXT NOT NULL DEFAULT '',
    words_en TEXT NOT NULL DEFAULT '',
    retired INTEGER NOT NULL DEFAULT 0 CHECK (retired IN (0, 1)),
    verified_by TEXT NOT NULL DEFAULT '',
    verified_at TEXT NOT NULL DEFAULT '',
    revision INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- At most one row: the directory's version, raised by every change in the
-- same transaction, so every node can tell whether its copy is current. No
-- row means version 0 (a directory never written; `store copy` needs the
-- table empty after migrating).
CREATE TABLE partner_directory (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
