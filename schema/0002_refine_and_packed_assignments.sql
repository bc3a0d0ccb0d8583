-- kbatch schema v2: Lloyd refinement epochs, and assignments packed per commit unit.
--
-- 1. batch_runs learns the phase 'refine' (with its epoch), the status 'skipped' (refinement
--    epochs left out once the centroids stopped moving) and the epoch's centroid shift.
--    SQLite cannot alter a CHECK constraint, so the table is rebuilt; its checkpoints, which
--    reference it, are rebuilt with it.
-- 2. Per-item assignment rows become one blob per block of plan positions. A commit writes a
--    few blobs instead of one B-tree row per item; the row-per-item table cost more than the
--    clustering itself at small batch sizes. The data is converted by the Rust step of this
--    migration (src/store/migrate.rs), which runs after this file.
-- 3. items rows are written only for inputs that carry ids, texts or volumes; a `.npy` row's id
--    is its index.
-- 4. clusters keeps only titles (see the end of this file).

CREATE TABLE batch_runs_v2 (
    run_id              INTEGER NOT NULL REFERENCES runs (run_id),
    batch_number        INTEGER NOT NULL,
    phase               TEXT NOT NULL CHECK (phase IN ('cluster', 'refine', 'final')),
    -- Refinement epoch (0-based) of a 'refine' unit; NULL otherwise.
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
    -- cluster: the mini-batch early stop froze the centroids; refine: refinement ends here.
    converged           INTEGER NOT NULL DEFAULT 0,
    lloyd_iterations    INTEGER NOT NULL DEFAULT 0,
    reassigned          INTEGER NOT NULL DEFAULT 0,
    -- The last chunk of a refinement epoch: the relative centroid shift of its Lloyd update.
    centroid_shift      REAL,
    started_at          TEXT,
    completed_at        TEXT,
    processing_time_ms  INTEGER,
    error_message       TEXT,
    PRIMARY KEY (run_id, batch_number)
) WITHOUT ROWID;

INSERT INTO batch_runs_v2 (run_id, batch_number, phase, batch_size, status, items_processed,
                           clusters_touched, titles_touched, batch_inertia, ewa_inertia,
                           converged, lloyd_iterations, reassigned, started_at, completed_at,
                           processing_time_ms, error_message)
SELECT run_id, batch_number, phase, batch_size, status, items_processed, clusters_touched,
       titles_touched, batch_inertia, ewa_inertia, converged, lloyd_iterations, reassigned,
       started_at, completed_at, processing_time_ms, error_message
FROM batch_runs;

CREATE TABLE batch_checkpoints_v2 (
    run_id        INTEGER NOT NULL,
    batch_number  INTEGER NOT NULL,
    state         BLOB NOT NULL,
    checksum      TEXT NOT NULL,
    PRIMARY KEY (run_id, batch_number),
    FOREIGN KEY (run_id, batch_number) REFERENCES batch_runs (run_id, batch_number)
);

INSERT INTO batch_checkpoints_v2 SELECT run_id, batch_number, state, checksum
FROM batch_checkpoints;

DROP TABLE batch_checkpoints;
DROP TABLE batch_runs;
ALTER TABLE batch_runs_v2 RENAME TO batch_runs;
ALTER TABLE batch_checkpoints_v2 RENAME TO batch_checkpoints;

-- The assignments of plan positions [start_position, end_position), as written by commit unit
-- `written_by`: per position, the cluster id (u32) then the squared distance to its centroid
-- (f32), little-endian. `checksum` is the blake3 of `labels`, hex. Blocks never overlap: a unit
-- that covers several older blocks replaces them.
CREATE TABLE assignment_blocks (
    run_id          INTEGER NOT NULL REFERENCES runs (run_id),
    start_position  INTEGER NOT NULL,
    end_position    INTEGER NOT NULL,
    written_by      INTEGER NOT NULL,
    labels          BLOB NOT NULL,
    checksum        TEXT NOT NULL,
    UNIQUE (run_id, start_position)
);

-- 4. Cluster sizes and volumes are derived from the assignments when exported; a commit writes
--    a cluster's row only when its title changes (rewriting every touched cluster's counts was
--    a third of the commit time at k = 1,000).
ALTER TABLE clusters DROP COLUMN size;
ALTER TABLE clusters DROP COLUMN total_volume;
