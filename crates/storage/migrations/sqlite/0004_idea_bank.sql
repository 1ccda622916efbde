-- Idea Bank: categories (seeded with the original's six), ideas (tags and metadata as JSON text; legacy_id keeps
-- imports idempotent), and the audit log of every change.
CREATE TABLE idea_categories (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    color TEXT NOT NULL,
    sort_order INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

INSERT INTO idea_categories (name, display_name, color, sort_order, created_at, updated_at) VALUES
    ('documentacao', 'Documentação', '#3B82F6', 1, '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00'),
    ('coleta-dados', 'Coleta de dados', '#10B981', 2, '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00'),
    ('banco-dados', 'Banco de dados', '#8B5CF6', 3, '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00'),
    ('analise-dados', 'Análise de dados', '#F59E0B', 4, '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00'),
    ('gestao-riscos', 'Gestão de riscos', '#EF4444', 5, '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00'),
    ('dashboard', 'Dashboard', '#06B6D4', 6, '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00');

CREATE TABLE ideas (
    id TEXT PRIMARY KEY,
    legacy_id TEXT UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    priority TEXT NOT NULL,
    status TEXT NOT NULL,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ideas_created ON ideas (created_at);

CREATE TABLE idea_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idea_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    changes TEXT NOT NULL,
    ts TEXT NOT NULL
);
CREATE INDEX idea_audit_idea ON idea_audit (idea_id);
