-- kbatch schema v8: living projects. `add` places new items into a finished project (joining
-- the nearest cluster when close enough, else clustering them into new clusters), `refit`
-- runs Lloyd epochs over every item from the current centroids. Both are jobs whose commit
-- units continue the project's unit numbers in batch_runs (phases 'assign' and 'pool' for
-- add; 'refine', 'final' and 'group' for refit), so `resume` continues whichever job stopped.
--
-- 1. runs.create_job: the job that created the run, which the export names as the job that
--    added every original item. Runs made before this migration get their project's latest
--    create job, when jobs were recorded (schema v6); otherwise it stays NULL.
-- 2. job_plans: what an add or a refit planned when it started: its units
--    (first_unit .. first_unit + n_units), its items (an add's new items are the item indices
--    first_item .. first_item + n_items, which are also their plan positions), the clusters
--    its pool created (written by the commit that creates them), its resolved options as JSON,
--    and for a refit each item's cluster before it, to count the items that changed cluster
--    (cluster ids as u32 by plan position, a blob checked by a keyed blake3).
-- 3. admission: a cluster's admission threshold, the squared distance to its centroid within
--    which a new item joins it (the distance most of its own members are within). Derived from
--    the committed labels when an add first needs it, then kept; a refit clears them, as it
--    moves the centroids.

ALTER TABLE runs ADD COLUMN create_job INTEGER;

UPDATE runs SET create_job = (
    SELECT max(j.job_id) FROM jobs j JOIN projects p ON p.name = j.project
    WHERE p.project_id = runs.project_id AND j.kind = 'create'
);

CREATE TABLE job_plans (
    run_id            INTEGER NOT NULL REFERENCES runs (run_id),
    job_id            INTEGER NOT NULL,
    kind              TEXT NOT NULL,
    first_unit        INTEGER NOT NULL,
    n_units           INTEGER NOT NULL,
    first_item        INTEGER NOT NULL,
    n_items           INTEGER NOT NULL,
    new_clusters      INTEGER NOT NULL DEFAULT 0,
    plan              TEXT NOT NULL,
    baseline          BLOB,
    baseline_checksum TEXT,
    PRIMARY KEY (run_id, job_id)
);

CREATE TABLE admission (
    run_id      INTEGER NOT NULL REFERENCES runs (run_id),
    cluster_id  INTEGER NOT NULL,
    sq_dist     REAL NOT NULL,
    PRIMARY KEY (run_id, cluster_id)
) WITHOUT ROWID;
