"""Peak resident memory of one variant in a fresh process: ``python -m keelml.export.memprobe SPEC.json``.

The spec names a bundle file (or a torch artifact and its loader), a batch, a sequence length and
threads; the probe loads the model, runs one batch and prints ``{"peak_rss_mb": ...}``.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def peak_rss_kb() -> float:
    """Peak RSS of this process image: VmHWM (ru_maxrss would include the forking parent's RSS on Linux)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # macOS: no /proc (bytes there)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    from keelml.export.inputs import make_inputs, torch_runner
    from keelml.export.runtime import load_model

    data = Path(spec["path"]).read_bytes()
    if spec["kind"] == "torch":
        run = torch_runner(spec["loader"], data, threads=spec["threads"])
        feeds = make_inputs(spec["info"], spec["batch"], spec["seq"])
        run(feeds)
    else:
        model = load_model(data, threads=spec["threads"])
        model.run(make_inputs(model.info.to_json(), spec["batch"], spec["seq"]))
    sys.stdout.write(json.dumps({"peak_rss_mb": peak_rss_kb() / 1024.0}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
