-- The documentation registry's systems (name unique, so imports are idempotent).
CREATE TABLE systems (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    system_type TEXT NOT NULL CHECK (system_type IN ('api', 'webapp', 'docs', 'tool')),
    url TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'error', 'unknown')),
    last_check TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
