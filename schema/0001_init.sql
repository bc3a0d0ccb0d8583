-- kbatch schema v1. Append-only: never edit a migration that has shipped; add 0002_*.sql.
-- Keys are deterministic (run, batch number, item index); no random ids anywhere.

CREATE TABLE projects (
    project_id  INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE runs (
    run_id        INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects (project_id),
    -- Everything that determines the result, as JSON; resume reads it back, never the CLI.
    config_json   TEXT NOT NULL,
    seed          INTEGER NOT NULL,
    input_path    TEXT NOT NULL,
    input_blake3  TEXT NOT NULL,
    n_items       INTEGER NOT NULL,
    dim           INTEGER NOT NULL,
    n_clusters    INTEGER NOT NULL,
    -- Clustering batches; the final pass adds as many commit units again.
    n_batches     INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'interrupted', 'succeeded', 'failed')),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at    TEXT,
    finished_at   TEXT,
    error         TEXT,
    UNIQUE (project_id)
);

-- Items in input order. `position` is the item's place in the seeded batch plan.
CREATE TABLE items (
    run_id        INTEGER NOT NULL REFERENCES runs (run_id),
    item_idx      INTEGER NOT NULL,
    item_id       TEXT NOT NULL,
    text          TEXT,
    volume        INTEGER,
    batch_number  INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    -- No index on item_id: ids are checked unique at ingest, and an index here would cost
    -- a random B-tree insert per item at create.
    PRIMARY KEY (run_id, item_idx)
) WITHOUT ROWID;

-- One row per commit unit: clustering batches 0..n_batches, then the final re-assignment pass.
CREATE TABLE batch_runs (
    run_id              INTEGER NOT NULL REFERENCES runs (run_id),
    batch_number        INTEGER NOT NULL,
    phase               TEXT NOT NULL CHECK (phase IN ('cluster', 'final')),
    batch_size          INTEGER NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    items_processed     INTEGER NOT NULL DEFAULT 0,
    clusters_touched    INTEGER NOT NULL DEFAULT 0,
    titles_touched      INTEGER NOT NULL DEFAULT 0,
    batch_inertia       REAL,
    ewa_inertia         REAL,
    converged           INTEGER NOT NULL DEFAULT 0,
    -- Lloyd iterations (batch 0) and empty or starved clusters moved (any clustering batch).
    lloyd_iterations    INTEGER NOT NULL DEFAULT 0,
    reassigned          INTEGER NOT NULL DEFAULT 0,
    started_at          TEXT,
    completed_at        TEXT,
    processing_time_ms  INTEGER,
    error_message       TEXT,
    PRIMARY KEY (run_id, batch_number)
) WITHOUT ROWID;

-- The model after a clustering batch. Only the newest is kept: older rows are deleted in the
-- transaction that commits the next one.
CREATE TABLE batch_checkpoints (
    run_id        INTEGER NOT NULL,
    batch_number  INTEGER NOT NULL,
    state         BLOB NOT NULL,
    -- blake3 of `state`, hex.
    checksum      TEXT NOT NULL,
    PRIMARY KEY (run_id, batch_number),
    FOREIGN KEY (run_id, batch_number) REFERENCES batch_runs (run_id, batch_number)
) WITHOUT ROWID;

-- Inserted once per item by the batch that clusters it; the final pass updates it in place.
-- Keyed by plan position, so a batch writes one contiguous key range: a commit touches few
-- pages however large the table grows (keyed by item, a permuted batch would touch them all).
CREATE TABLE assignments (
    run_id        INTEGER NOT NULL REFERENCES runs (run_id),
    position      INTEGER NOT NULL,
    item_idx      INTEGER NOT NULL,
    cluster_id    INTEGER NOT NULL,
    distance      REAL NOT NULL,
    -- The commit unit that last wrote this row.
    written_by    INTEGER NOT NULL,
    PRIMARY KEY (run_id, position)
) WITHOUT ROWID;

CREATE TABLE clusters (
    run_id        INTEGER NOT NULL REFERENCES runs (run_id),
    cluster_id    INTEGER NOT NULL,
    -- NULL only inside a commit, while titles are being swapped.
    title         TEXT,
    size          INTEGER NOT NULL,
    total_volume  INTEGER NOT NULL,
    updated_in    INTEGER NOT NULL,
    PRIMARY KEY (run_id, cluster_id),
    UNIQUE (run_id, title)
) WITHOUT ROWID;
