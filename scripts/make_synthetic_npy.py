#!/usr/bin/env python3
"""Writes synthetic clustered float32 data as .npy (standard library only): k centres uniform in
[-10, 10]^d, unit Gaussian noise, like scikit-learn's make_blobs. For scale benchmarks.

    python3 scripts/make_synthetic_npy.py OUT.npy --rows 200000 --dim 128 --centres 256 [--seed 0]
"""

import argparse
import array
import random
import struct


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--centres", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    centres = [[rng.uniform(-10, 10) for _ in range(args.dim)] for _ in range(args.centres)]
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (args.rows, args.dim)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(args.out, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        for start in range(0, args.rows, 10000):
            chunk = array.array("f")
            for _ in range(min(10000, args.rows - start)):
                centre = centres[rng.randrange(args.centres)]
                chunk.extend(x + rng.gauss(0.0, 1.0) for x in centre)
            chunk.tofile(f)


if __name__ == "__main__":
    main()
