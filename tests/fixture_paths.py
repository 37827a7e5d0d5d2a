"""Paths the tests share (a plain module: `conftest` is ambiguous once subfolders have their own)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"
# The partner's real sample files: the shared copy when it is beside the repository, else the
# snapshot committed in events/ (so these tests never depend on a checkout layout).
PARTNER_SAMPLES = SHARED_SAMPLES if SHARED_SAMPLES.is_dir() else EVENTS / "partner_samples"
