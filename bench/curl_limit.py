"""The physical limit: curl straight at the emulator's URLs with a pre-fetched token.

Everything curl needs (token, download URLs, page links, upload fragments) is prepared before the
clock starts; what is timed is curl moving bytes. ``--cacert`` trusts the emulator's CA only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import ChildResult, run_child

CURL = "curl"
# Same fragment size as the provider's default and the hand-written script (a multiple of 320 KiB).
UPLOAD_FRAGMENT_BYTES = 32 * 320 * 1024


@dataclass(frozen=True)
class CurlLimit:
    """curl runs against one emulator; ``token`` is an access token fetched beforehand."""

    info: dict[str, Any]
    token: str
    env: dict[str, str]
    workdir: Path
    log: Path

    def _curl(self, *arguments: str) -> list[str]:
        return [CURL, "--silent", "--show-error", "--fail", "--cacert", self.info["ca_bundle"], *arguments]

    def _run(self, argv: Sequence[str]) -> ChildResult:
        return run_child(argv, env=self.env, log=self.log)

    def _auth_header(self) -> Path:
        # A header file keeps the token out of the process list.
        path = self.workdir / "auth-header.txt"
        path.write_text(f"Authorization: Bearer {self.token}\n", encoding="utf-8")
        return path

    def cold(self) -> ChildResult:
        url = f"{self.info['graph_url']}/v1.0/sites/root"
        return self._run(self._curl("--output", "/dev/null", "--header", f"@{self._auth_header()}", url))

    def calls(self, count: int) -> ChildResult:
        config = self.workdir / "calls.cfg"
        url = f"{self.info['graph_url']}/v1.0/sites/root"
        config.write_text(f'url = "{url}"\noutput = "/dev/null"\n' * count, encoding="utf-8")
        return self._run(self._curl("--header", f"@{self._auth_header()}", "--config", str(config)))

    def download_many(self, urls: Sequence[tuple[str, str]], target: Path, parallel: int) -> ChildResult:
        """``urls`` are (name, pre-authenticated URL); one curl per share, ``xargs -P parallel``."""
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shares = [urls[i::parallel] for i in range(parallel)]
        configs = []
        for index, share in enumerate(shares):
            config = self.workdir / f"small-{parallel}-{index}.cfg"
            config.write_text(
                "".join(f'url = "{url}"\noutput = "{target / name}"\n' for name, url in share), encoding="utf-8"
            )
            configs.append(str(config))
        if parallel == 1:
            return self._run(self._curl("--config", configs[0]))
        listing = self.workdir / f"small-{parallel}.list"
        listing.write_text("\n".join(configs) + "\n", encoding="utf-8")
        command = " ".join(
            [f"xargs -a {listing} -P {parallel} -n 1", *self._curl(), "--config"]
        )  # every argument is a path or a flag of ours: no quoting needed
        return self._run(["sh", "-c", command])

    def download_one(self, url: str, target: Path, *, durable: bool) -> ChildResult:
        """One file; ``durable`` also fsyncs it (coreutils ``sync FILE``), as the provider does."""
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        command = " ".join(self._curl("--output", str(target), f"'{url}'"))
        if durable:
            command += f" && sync {target}"
        return self._run(["sh", "-c", command])

    def upload(self, source: Path, fragments_dir: Path, remote: str) -> ChildResult:
        """Create the session (with the token), then PUT every fragment in one curl (``--next``)."""
        size = source.stat().st_size
        fragments = self._split(source, fragments_dir)
        created = subprocess.run(
            self._curl(
                "--header",
                f"@{self._auth_header()}",
                "--header",
                "Content-Type: application/json",
                "--data",
                json.dumps({"item": {"@microsoft.graph.conflictBehavior": "replace"}}),
                f"{self.info['graph_url']}/v1.0/drives/{self.info['drive_id']}/root:/{remote}:/createUploadSession",
            ),
            capture_output=True,
            text=True,
            check=True,
            env=self.env,
            timeout=60,
        )
        upload_url = json.loads(created.stdout)["uploadUrl"]
        config = self.workdir / "upload.cfg"
        lines: list[str] = []
        offset = 0
        for index, fragment in enumerate(fragments):
            length = fragment.stat().st_size
            if index:
                lines.append("next")
            # Options reset at every "next": each request names its CA and --fail again.
            lines += [
                f'cacert = "{self.info["ca_bundle"]}"',
                "fail",
                f'upload-file = "{fragment}"',
                f'header = "Content-Range: bytes {offset}-{offset + length - 1}/{size}"',
                'output = "/dev/null"',
                f'url = "{upload_url}"',
            ]
            offset += length
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self._run(self._curl("--config", str(config)))

    @staticmethod
    def _split(source: Path, fragments_dir: Path) -> list[Path]:
        """Fragments of the upload file on disk, made once (before any clock starts)."""
        marker = fragments_dir / ".complete"
        if not marker.exists():
            shutil.rmtree(fragments_dir, ignore_errors=True)
            fragments_dir.mkdir(parents=True)
            with source.open("rb") as handle:
                index = 0
                while chunk := handle.read(UPLOAD_FRAGMENT_BYTES):
                    (fragments_dir / f"{index:05d}.part").write_bytes(chunk)
                    index += 1
            marker.write_text(str(source.stat().st_size), encoding="utf-8")
        return sorted(fragments_dir.glob("*.part"))

    def fetch_pages(self, urls: Sequence[str]) -> ChildResult:
        config = self.workdir / "pages.cfg"
        config.write_text("".join(f'url = "{url}"\noutput = "/dev/null"\n' for url in urls), encoding="utf-8")
        return self._run(self._curl("--header", f"@{self._auth_header()}", "--config", str(config)))
