"""Paths the tests share (a plain module: `conftest` is ambiguous once subfolders have their own)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"
