-- kbatch schema v4: a blob's checksum is bound to where it belongs, and the file says it is
-- kbatch's.
--
-- 1. Every checksum (batch_checkpoints, assignment_blocks, item_vectors) becomes the blake3
--    keyed hash of the blob under a key derived from its place: its run, its kind, and its
--    unit (checkpoints), its plan positions and writing unit (labels) or its plan positions
--    and dimension (vectors); see src/store/codec.rs. A blob copied to another run or place
--    then fails its check like a corrupt one. The Rust step of this migration
--    (src/store/migrate.rs) re-seals each blob whose old checksum (the plain blake3 of its
--    bytes) still holds, and leaves a blob that fails it as it is, so it stays reported corrupt.
-- 2. PRAGMA application_id marks the file as kbatch's ("KBAT"): any other SQLite file is
--    refused before kbatch writes to it.

PRAGMA application_id = 1262633300;
