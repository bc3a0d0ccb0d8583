-- kbatch schema v6: a record of every command that writes (create, resume, add, refit,
-- delete): what ran, when, how far it got, what failed and why.
--
-- A job names its project by name, not by id: the record of a `delete` outlives the project.
-- `items_total` and `items_done` count items (an item counts once in every pass that
-- processes it), never batches; `items_done` is updated in the transaction that commits each
-- unit. `summary` is a JSON object (what the job did, by kind); `error` the failure's text.
-- `pid` is the process that runs the job: a `running` job whose process is gone was killed,
-- and reads as `interrupted`.

CREATE TABLE jobs (
    job_id       INTEGER PRIMARY KEY,
    project      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    pid          INTEGER,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at   TEXT,
    finished_at  TEXT,
    items_total  INTEGER NOT NULL DEFAULT 0,
    items_done   INTEGER NOT NULL DEFAULT 0,
    summary      TEXT,
    error        TEXT
);

CREATE INDEX jobs_by_project ON jobs (project, job_id);
