"""Deployment artifact sizes as ``sam build`` makes them: each function and the layer, in bytes on disk and
zipped (what is uploaded), and whether any of them carries boto3 (the runtime ships it)."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from bench import REPO

BUILD = REPO / ".aws-sam" / "build"
SAM = REPO / ".venv-sam" / "bin" / "sam"
SOURCES = (REPO / "functions", REPO / "layers" / "cartrecovery" / "cartrecovery", REPO / "templates")
BUNDLED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
XRAY_SDK = ("aws_xray_sdk",)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _zipped_bytes(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _files(folder):
            archive.write(path, path.relative_to(folder))
    return buffer.tell()


def _newest_mtime(folders: tuple[Path, ...]) -> float:
    return max(p.stat().st_mtime for folder in folders for p in _files(folder) if "__pycache__" not in p.parts)


def _carrying(packages: tuple[str, ...]) -> list[str]:
    """The artifacts that contain any of ``packages``."""
    return sorted(
        folder.name
        for folder in BUILD.iterdir()
        if folder.is_dir() and any(next(folder.rglob(f"{name}/__init__.py"), None) for name in packages)
    )


def _build() -> str | None:
    """Run ``make build``; None on success, else why not."""
    try:
        subprocess.run(["make", "build"], cwd=REPO, capture_output=True, timeout=300, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"make build failed: {exc}"
    return None


def run() -> dict[str, Any]:
    if not BUILD.is_dir():
        if not SAM.exists():
            return {"artifacts": None, "reason": "no .aws-sam/build and no SAM CLI in .venv-sam (run make build)"}
        failure = _build()
        if failure:
            return {"artifacts": None, "reason": failure}
    artifacts = {}
    for folder in sorted(p for p in BUILD.iterdir() if p.is_dir()):
        files = _files(folder)
        artifacts[folder.name] = {
            "bytes": sum(p.stat().st_size for p in files),
            "zipped_bytes": _zipped_bytes(folder),
            "files": len(files),
        }
    built_at = (BUILD.parent / "build.toml").stat().st_mtime if (BUILD.parent / "build.toml").exists() else 0.0
    return {
        "artifacts": artifacts,
        "boto3_inside": _carrying(BUNDLED_BY_RUNTIME),
        "xray_sdk_inside": _carrying(XRAY_SDK),
        "stale": _newest_mtime(SOURCES) > built_at,
        "build_dir": os.path.relpath(BUILD, REPO),
    }
