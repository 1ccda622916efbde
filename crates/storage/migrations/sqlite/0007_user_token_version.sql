-- Bumped when a password changes or a user is disabled: bearer tokens carry the version they were issued at, so
-- older ones stop working at once.
ALTER TABLE users ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0;
