"""Peak memory and time of the RetinaVLM importer, against each process's own baseline.

Writes synthetic releases shaped like the real one (ResNet-50 at full width, int8 Llama linear
weights with row scales, fp16 embeddings, two shards) with `--layers` and 3x as many Llama
layers, imports each in a fresh process with `--max-shard-gb` output shards, and prints the
resident-memory peak above the process's baseline (torch and transformers imported), next to the
model's size. Reading one tensor at a time, the peak should follow the shard size and the largest
tensor, not the model size.

    python benchmarks/retinavlm_import_memory.py [--layers 2] [--hidden 2048] [--intermediate 5632] \
        [--max-shard-gb 0.25]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, time
from models.retinavlm_import import import_retinavlm, peak_rss_mb
baseline = peak_rss_mb()
started = time.perf_counter()
report = import_retinavlm(sys.argv[1], sys.argv[2], sys.argv[3], "bench", dtype="bfloat16",
                          max_shard_bytes=int(float(sys.argv[4]) * 1024**3))
print(json.dumps({"baseline_mb": baseline, "peak_mb": peak_rss_mb(),
                  "seconds": time.perf_counter() - started, "written_bytes": report["written_bytes"],
                  "shards": len(report["written_shards"])}))
"""


def _release(folder: Path, layers: int, hidden: int, intermediate: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.retinavlm_reference import write_synthetic_release

    heads = max(1, hidden // 128)
    release = write_synthetic_release(
        folder, llama={"hidden_size": hidden, "intermediate_size": intermediate,
                       "num_hidden_layers": layers, "num_attention_heads": heads,
                       "num_key_value_heads": max(1, heads // 4)},
        widths={"stem": 64, "planes": [64, 128, 256, 512]})
    return release.source, release.llm_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--max-shard-gb", type=float, default=0.25)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layers in (args.layers, 3 * args.layers):
            source, llm = _release(Path(tmp) / f"l{layers}", layers, args.hidden, args.intermediate)
            source_bytes = sum(p.stat().st_size for p in source.glob("*.safetensors"))
            command = [sys.executable, "-c", CHILD, str(source), str(llm), str(Path(tmp) / f"out{layers}"),
                       str(args.max_shard_gb)]
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            row.update(layers=layers, source_mb=source_bytes / 2**20,
                       written_mb=row.pop("written_bytes") / 2**20)
            row["extra_mb"] = row["peak_mb"] - row["baseline_mb"]
            rows.append(row)
    for row in rows:
        print(f"{row['layers']:3d} layers: source {row['source_mb']:7.0f} MB, written "
              f"{row['written_mb']:7.0f} MB bf16 in {row['shards']} shard(s), {row['seconds']:6.1f} s; "
              f"peak RSS {row['peak_mb']:6.0f} MB = baseline {row['baseline_mb']:5.0f} + "
              f"{row['extra_mb']:5.0f} MB ({row['extra_mb'] / row['written_mb']:.2f}x output)")
    small, large = rows
    print(f"model x{large['written_mb'] / small['written_mb']:.1f} -> extra peak memory "
          f"x{large['extra_mb'] / max(small['extra_mb'], 1):.2f}; write speed "
          f"{large['written_mb'] / large['seconds']:.0f} MB/s")


if __name__ == "__main__":
    main()
