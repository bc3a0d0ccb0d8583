-- kbatch schema v5: page-level groups inside topics, and every column of a keyword input.
--
-- 1. batch_runs learns the phase 'group': a grouping unit splits a range of topics into
--    page-level groups. SQLite cannot alter a CHECK constraint, so the table is rebuilt (with
--    its checkpoints, which reference it); the rebuilt table checks no phase names: the enum
--    `Phase` in src/store/records.rs is the one list, and reading an unknown phase is an
--    error, so later phases need no rebuild.
--    It also gains embed_time_ms: the part of a clustering batch's processing time spent
--    embedding its keywords, so that an ETA can cost embedding and clustering apart.
-- 2. The columns of a keyword file that kbatch does not read itself are kept for the export:
--    runs.extra_columns holds their headers and items.extra each item's values, both as JSON
--    arrays of strings, in the file's order.
-- 3. item_groups: per grouping unit, the groups of its topics' items as one checksummed blob
--    (per grouped item: item index u32, group id u32, little-endian); groups: each group's
--    topic, title and the item it is named after.

CREATE TABLE batch_runs_v4 (
    run_id              INTEGER NOT NULL REFERENCES runs (run_id),
    batch_number        INTEGER NOT NULL,
    phase               TEXT NOT NULL,
    epoch               INTEGER,
    batch_size          INTEGER NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processing', 'completed', 'failed',
                                          'skipped')),
    items_processed     INTEGER NOT NULL DEFAULT 0,
    clusters_touched    INTEGER NOT NULL DEFAULT 0,
    titles_touched      INTEGER NOT NULL DEFAULT 0,
    batch_inertia       REAL,
    ewa_inertia         REAL,
    converged           INTEGER NOT NULL DEFAULT 0,
    lloyd_iterations    INTEGER NOT NULL DEFAULT 0,
    reassigned          INTEGER NOT NULL DEFAULT 0,
    centroid_shift      REAL,
    started_at          TEXT,
    completed_at        TEXT,
    processing_time_ms  INTEGER,
    embed_time_ms       INTEGER,
    error_message       TEXT,
    PRIMARY KEY (run_id, batch_number)
) WITHOUT ROWID;

INSERT INTO batch_runs_v4 (run_id, batch_number, phase, epoch, batch_size, status,
    items_processed, clusters_touched, titles_touched, batch_inertia, ewa_inertia, converged,
    lloyd_iterations, reassigned, centroid_shift, started_at, completed_at, processing_time_ms,
    error_message) SELECT run_id, batch_number, phase, epoch, batch_size, status,
    items_processed, clusters_touched, titles_touched, batch_inertia, ewa_inertia, converged,
    lloyd_iterations, reassigned, centroid_shift, started_at, completed_at, processing_time_ms,
    error_message
FROM batch_runs;

CREATE TABLE batch_checkpoints_v4 (
    run_id        INTEGER NOT NULL,
    batch_number  INTEGER NOT NULL,
    state         BLOB NOT NULL,
    checksum      TEXT NOT NULL,
    PRIMARY KEY (run_id, batch_number),
    FOREIGN KEY (run_id, batch_number) REFERENCES batch_runs (run_id, batch_number)
);

INSERT INTO batch_checkpoints_v4 SELECT run_id, batch_number, state, checksum
FROM batch_checkpoints;

DROP TABLE batch_checkpoints;
DROP TABLE batch_runs;
ALTER TABLE batch_runs_v4 RENAME TO batch_runs;
ALTER TABLE batch_checkpoints_v4 RENAME TO batch_checkpoints;

ALTER TABLE runs ADD COLUMN extra_columns TEXT;
ALTER TABLE items ADD COLUMN extra TEXT;

-- The groups of topics [start_topic, end_topic), as written by grouping unit `written_by`.
CREATE TABLE item_groups (
    run_id          INTEGER NOT NULL REFERENCES runs (run_id),
    written_by      INTEGER NOT NULL,
    start_topic     INTEGER NOT NULL,
    end_topic       INTEGER NOT NULL,
    members         BLOB NOT NULL,
    checksum        TEXT NOT NULL,
    PRIMARY KEY (run_id, written_by)
);

CREATE TABLE groups (
    run_id          INTEGER NOT NULL REFERENCES runs (run_id),
    group_id        INTEGER NOT NULL,
    topic_id        INTEGER NOT NULL,
    -- The member the group is named after, and its text.
    title_item      INTEGER NOT NULL,
    title           TEXT NOT NULL,
    written_by      INTEGER NOT NULL,
    PRIMARY KEY (run_id, group_id),
    UNIQUE (run_id, title)
) WITHOUT ROWID;
