-- kbatch schema v7: the share of item-to-centroid distances a pass unit did not compute
-- because its items' bounds settled them (refinement epochs and the final pass; NULL for
-- clustering batches and for units committed before pruning existed).
ALTER TABLE batch_runs ADD COLUMN distances_skipped REAL;
