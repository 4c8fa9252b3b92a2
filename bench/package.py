"""Deployment artifact sizes as ``sam build`` makes them: each function and the layer, in bytes on disk and
zipped (what is uploaded), and whether any of them carries boto3 (the runtime ships it).

A missing build, or one older than its sources, is made first with ``make build``, which installs the SAM
CLI into ``.venv-sam`` on first use (about a minute; later builds take seconds): figures of a stale build
would describe code that is no longer there."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from bench import REPO

BUILD = REPO / ".aws-sam" / "build"
LAYER = REPO / "layers" / "cartrecovery"
SOURCES = (REPO / "functions", LAYER / "cartrecovery", REPO / "templates")
BUILD_INPUTS = (REPO / "template.yaml", LAYER / "Makefile", LAYER / "requirements.txt")
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


def _sources_mtime() -> float:
    sources = [p for folder in SOURCES for p in _files(folder) if "__pycache__" not in p.parts]
    return max(p.stat().st_mtime for p in [*sources, *BUILD_INPUTS])


def _built_at() -> float:
    marker = BUILD.parent / "build.toml"
    return marker.stat().st_mtime if BUILD.is_dir() and marker.exists() else 0.0


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
        subprocess.run(["make", "build"], cwd=REPO, capture_output=True, text=True, timeout=600, check=True)
    except subprocess.CalledProcessError as exc:
        return f"make build failed: {_first_error(exc.stderr or exc.stdout or '')}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"make build failed: {exc}"
    return None


def _first_error(output: str) -> str:
    """The line that says what went wrong (SAM's and pip's begin with "Error"), not make's own epilogue."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("make")]
    return next((line for line in lines if line.startswith("Error")), lines[-1] if lines else "no output")


def run() -> dict[str, Any]:
    failure = None
    sources_changed_at = _sources_mtime()  # the sources do not change while they are built
    if _built_at() < sources_changed_at:
        failure = _build()
        if not BUILD.is_dir():
            return {"artifacts": None, "reason": failure or "make build left no .aws-sam/build"}
    artifacts = {}
    for folder in sorted(p for p in BUILD.iterdir() if p.is_dir()):
        files = _files(folder)
        artifacts[folder.name] = {
            "bytes": sum(p.stat().st_size for p in files),
            "zipped_bytes": _zipped_bytes(folder),
            "files": len(files),
        }
    return {
        "artifacts": artifacts,
        "boto3_inside": _carrying(BUNDLED_BY_RUNTIME),
        "xray_sdk_inside": _carrying(XRAY_SDK),
        # True only when a rebuild failed: the figures are then those of the older build.
        "stale": _built_at() < sources_changed_at,
        "build_failure": failure,
        "build_dir": os.path.relpath(BUILD, REPO),
    }
