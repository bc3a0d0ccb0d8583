-- kbatch schema v3: vectors computed by a sentence embedder, stored with the batch that
-- embedded them, so each keyword is embedded once: refinement, the final pass and resume read
-- them back instead of running the model again.

-- The vectors of plan positions [start_position, end_position): `dim` little-endian f32 per
-- position; `checksum` is the blake3 of `vectors`, hex.
CREATE TABLE item_vectors (
    run_id          INTEGER NOT NULL REFERENCES runs (run_id),
    start_position  INTEGER NOT NULL,
    end_position    INTEGER NOT NULL,
    dim             INTEGER NOT NULL,
    vectors         BLOB NOT NULL,
    checksum        TEXT NOT NULL,
    UNIQUE (run_id, start_position)
);
