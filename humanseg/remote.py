"""`humanseg remote segment DIR --server URL --out DIR`: a whole folder through a humanseg server.

Uploads the folder's images (subfolders included) in chunks into one batch, shows progress while
the jobs finish, downloads the chosen results as each job succeeds, named like `humanseg segment`
names them (OUT/<subfolder>/<stem>.cutout.png, <stem>.mask.png, <stem>.alpha.png, ...),
and ends with a summary; the exit status is 1 when some images failed. OUT/.humanseg-remote.json records the
run, so the same command resumes an interrupted one: uploaded files are not sent again (each
chunk carries an Idempotency-Key, so a chunk whose answer was lost is answered again, not
duplicated) and downloaded results are not fetched again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from humanseg.client import ApiError, Batch, Client
from humanseg.core.variants import MAX_MARGIN_PX, MAX_SIDE, MIN_SIDE, NAMED_COLOURS, OptionError, parse

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}  # core.images.IMAGE_SUFFIXES (the client imports no server code)
KINDS = ("mask", "alpha", "cutout", "overlay", "thumb")
# File names as `humanseg segment` writes them: each says its kind (a mask named <stem>.png passed for the photo).
SUFFIXES = {"mask": ".mask.png", "alpha": ".alpha.png", "cutout": ".cutout.png", "overlay": ".overlay.jpg",
            "thumb": ".thumb.jpg"}
FORMAT_EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp"}
CUTOUT_OPTIONS = ("bg", "format", "quality", "size", "crop", "margin")  # as on a result URL
MADE_BY_WORKER = {"cutout", "overlay"}  # asked for at upload, so the workers make them
STATE = ".humanseg-remote.json"
# What the server accepts for each cut-out option (core.variants.parse, which main() checks them with).
OPTION_HELP = {
    "bg": "cut-out background: transparent (default), #RRGGBB, " + ", ".join(sorted(NAMED_COLOURS))
          + ", or image:<id> (an id from POST /api/v1/backgrounds)",
    "format": "png (default), webp, or jpeg (jpg) with a --bg",
    "quality": "1-100, for jpeg (default 90) and webp (lossy when given); not png",
    "size": f"longest side in px, {MIN_SIDE} to {MAX_SIDE}, or full (default)",
    "crop": "true or false (default): crop to the person",
    "margin": f"with --crop true: px (0-{MAX_MARGIN_PX}, e.g. 20) or %% of the person (e.g. 5%%)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="humanseg remote", description="Use a humanseg server.")
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segment", help="cut out every image of a folder through a server")
    seg.add_argument("source", type=Path, help="folder of JPEG, PNG or WebP images")
    seg.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    seg.add_argument("--out", required=True, type=Path, help="folder for the results")
    seg.add_argument("--outputs", default="cutout",
                     help=f"comma-separated results to download ({', '.join(KINDS)}); default cutout")
    seg.add_argument("--api-key", default=os.environ.get("HUMANSEG_API_KEY"),
                     help="API key when the server requires one (default: $HUMANSEG_API_KEY)")
    for name in CUTOUT_OPTIONS:  # the cut-out's options, as on a result URL: --bg white --format jpeg --size 1000
        seg.add_argument(f"--{name}", default=None, help=OPTION_HELP[name])
    seg.add_argument("--chunk", type=int, default=50, help="images per upload request (default 50)")
    seg.add_argument("--batch-name", default=None, help="batch name (default: the folder's name)")
    seg.add_argument("--model", default=None,
                     help="the server's model to use (its /api/v1/models; default: its default)")
    seg.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (default 3600)")
    seg.add_argument("--every", type=float, default=1.0, help="seconds between polls (default 1)")
    seg.add_argument("--restart", action="store_true", help="ignore a previous run's record")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `humanseg remote ...`."""
    args = _parser().parse_args(argv)
    kinds = [k.strip() for k in args.outputs.split(",") if k.strip()]
    if not kinds or set(kinds) - set(KINDS) or args.chunk < 1:
        print(f"humanseg remote: --outputs takes {', '.join(KINDS)}; --chunk at least 1",
              file=sys.stderr)
        return 2
    if not args.source.is_dir():
        print(f"humanseg remote: {args.source} is not a folder", file=sys.stderr)
        return 2
    problem = option_problem(args, kinds)
    if problem:  # before a byte is sent: a refused option must not leave a finished batch behind
        print(f"humanseg remote: {problem}", file=sys.stderr)
        return 2
    client = Client(args.server, args.api_key)
    try:
        return Run(client, args, kinds, sys.stderr).run()
    except ApiError as exc:
        print(f"humanseg remote: the server refused: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nhumanseg remote: interrupted; the same command resumes (record in {args.out / STATE})",
              file=sys.stderr)
        return 130
    except TimeoutError as exc:
        print(f"humanseg remote: {exc}; the same command resumes", file=sys.stderr)
        return 2
    except OSError as exc:  # requests' connection errors are OSErrors too
        print(f"humanseg remote: cannot reach {args.server}: {_reason(exc)}", file=sys.stderr)
        return 2
    except (ValueError, KeyError) as exc:  # an answer that is not humanseg's JSON
        print(f"humanseg remote: {args.server} did not answer like a humanseg server ({type(exc).__name__})",
              file=sys.stderr)
        return 2
    finally:
        client.close()


def option_problem(args: argparse.Namespace, kinds: list[str]) -> str | None:
    """Why the server would refuse these cut-out options (checked as it checks them); None when it would not."""
    given = [(name, value) for name in CUTOUT_OPTIONS if (value := getattr(args, name, None)) is not None]
    if given and "cutout" not in kinds:
        return (f"{', '.join('--' + name for name, _ in given)} apply to the cut-out: "
                "add cutout to --outputs")
    try:
        parse("cutout", given)
    except OptionError as exc:
        if exc.reason.startswith("jpeg has no transparency"):
            return "--format jpeg has no transparency: give --bg (e.g. --bg white), or use png or webp"
        return f"--{exc.parameter}: {exc.reason}"
    return None


def _reason(exc: Exception) -> str:
    """The innermost reason of a connection error (requests nests urllib3's several levels deep)."""
    while exc.args and isinstance(exc.args[0], Exception) and exc.args[0] is not exc:
        exc = exc.args[0]
    reason = getattr(exc, "reason", None)
    return str(reason or exc).split(": ", 1)[-1]


def output_names(files: list[str]) -> dict[str, str]:
    """Each source file's output stem (relative path without its suffix), or name_ext where two files of
    one folder share a stem (a.jpg and a.png)."""
    stems = [str(Path(f).with_suffix("")) for f in files]
    return {f: (s if stems.count(s) == 1 else s + "_" + Path(f).suffix.lstrip(".").lower())
            for f, s in zip(files, stems, strict=False)}


class Run:
    """One run of `remote segment`, resumable through its record in OUT."""

    def __init__(self, client: Client, args: argparse.Namespace, kinds: list[str], out: TextIO):
        self.client, self.args, self.kinds, self.out = client, args, kinds, out
        self.dest: Path = args.out
        found = [p for p in args.source.rglob("*") if p.is_file() and not p.name.startswith(".")]
        self.files = sorted(p.relative_to(args.source).as_posix() for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
        self.skipped = sorted(p.relative_to(args.source).as_posix() for p in found
                              if p.suffix.lower() not in IMAGE_SUFFIXES)
        self.names = output_names(self.files)
        self.options = {k: v for k in CUTOUT_OPTIONS if (v := getattr(args, k, None)) is not None}
        self._seen_succeeded = 0
        self.state = self._load()
        self._shown = ""

    def _load(self) -> dict[str, Any]:
        path = self.dest / STATE
        fresh = {"server": self.args.server, "source": str(self.args.source.resolve()),
                 "run": uuid.uuid4().hex, "batch_id": None, "chunks": 0, "jobs": {},
                 "downloaded": {}}
        if self.args.restart or not path.exists():
            return fresh
        state = json.loads(path.read_text())
        same = state.get("server") == fresh["server"] and state.get("source") == fresh["source"]
        return state if same else fresh

    def _save(self) -> None:
        self.dest.mkdir(parents=True, exist_ok=True)
        tmp = self.dest / (STATE + ".part")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(self.dest / STATE)

    def run(self) -> int:
        """Upload, follow and download; the exit status."""
        if self.skipped:  # said once, so a file left out is never a surprise
            shown = ", ".join(self.skipped[:3]) + (", ..." if len(self.skipped) > 3 else "")
            print(f"skipping {len(self.skipped)} file(s) that are not JPEG, PNG or WebP images: {shown}",
                  file=self.out)
        if not self.files:
            print(f"humanseg remote: no JPEG, PNG or WebP images in {self.args.source}", file=self.out)
            return 2
        self._check_batch()
        self._upload()
        batch = self.client.wait_batch(self.state["batch_id"], timeout=self.args.timeout,
                                       every=self.args.every, on_progress=self._progress)
        self._download(batch)  # the last poll's successes
        return self._summary(batch)

    def _check_batch(self) -> None:
        """A recorded batch that the server no longer has: start the run again."""
        if self.state["batch_id"] is None:
            return
        try:
            self.client.batch(self.state["batch_id"], page_size=1)
        except ApiError as exc:
            if exc.status != 404:
                raise
            print("the recorded batch is gone from the server; starting again", file=self.out)
            self.state = {**self.state, "run": uuid.uuid4().hex, "batch_id": None, "chunks": 0,
                          "jobs": {}, "downloaded": {}}

    def _upload(self) -> None:
        # Files refused before are offered again: they may have been fixed since.
        rejected = self.state["rejected"] = {}
        pending = [f for f in self.files if f not in self.state["jobs"]]
        for start in range(0, len(pending), self.args.chunk):
            chunk = pending[start:start + self.args.chunk]
            while chunk:
                refused = self._send(chunk)
                if not refused:
                    break
                rejected.update(refused)  # the server names each bad file; send the rest again
                chunk = [f for f in chunk if f not in refused]
                self.state["chunks"] += 1  # another body: another Idempotency-Key
                self._save()

    def _send(self, chunk: list[str]) -> dict[str, str]:
        """Upload one chunk; the files the server refused (name: reason), else {}."""
        self._save()  # the run id and chunk number are on disk before the request goes
        try:
            created = self.client.upload(
                [self.args.source / f for f in chunk], batch_id=self.state["batch_id"],
                batch_name=None if self.state["batch_id"] else
                (self.args.batch_name or self.args.source.resolve().name),
                outputs=[k for k in self.kinds if k in MADE_BY_WORKER], model=self.args.model,
                idempotency_key=f"remote-{self.state['run']}-{self.state['chunks']}")
        except ApiError as exc:
            err = (exc.body or {}).get("error", {}) if isinstance(exc.body, dict) else {}
            named = {p["file"]: p["message"] for p in err.get("files") or [] if p.get("file") in chunk}
            if exc.status >= 500 or not named:
                raise
            return named
        self.state["batch_id"] = created.batch_id
        self.state["jobs"].update({f: j.id for f, j in zip(chunk, created.jobs, strict=False)})
        self.state["chunks"] += 1
        self._save()
        print(f"uploaded {len(self.state['jobs'])}/{len(self.files)}", file=self.out, flush=True)
        return {}

    def _progress(self, batch: Batch) -> None:
        succeeded = batch.counts.get("succeeded", 0)
        if succeeded > self._seen_succeeded:  # new results: fetch them now, not when the batch ends
            self._seen_succeeded = succeeded
            self._download_jobs(self.client.jobs(batch_id=batch.id, status="succeeded"))
        c = batch.counts
        finished = c.get("succeeded", 0) + c.get("failed", 0) + c.get("cancelled", 0)
        width = 30
        filled = int(width * finished / batch.job_count) if batch.job_count else width
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{batch.job_count} finished, "
                f"{c.get('failed', 0)} failed, {c.get('cancelled', 0)} cancelled")
        if line != self._shown:  # one line per change: readable in logs and on terminals
            self._shown = line
            end = "\r" if self.out.isatty() and not batch.done else "\n"
            print(line, end=end, file=self.out, flush=True)

    def _download(self, batch: Batch) -> None:
        self._download_jobs(batch.jobs)

    def target(self, name: str, kind: str) -> Path:
        """Where one result of one source file goes."""
        suffix = SUFFIXES[kind]
        if kind == "cutout" and "format" in self.options:
            suffix = ".cutout" + FORMAT_EXTENSIONS.get(self.options["format"].lower(), ".png")
        return self.dest / (self.names[name] + suffix)

    def _download_jobs(self, jobs) -> None:
        by_id = {job_id: f for f, job_id in self.state["jobs"].items()}
        for job in jobs:
            name = by_id.get(job.id)
            if name is None or job.status != "succeeded":
                continue
            done = self.state["downloaded"].setdefault(name, [])
            for kind in self.kinds:
                if kind in done:
                    continue
                path = self.target(name, kind)
                path.parent.mkdir(parents=True, exist_ok=True)
                self.client.download(job.id, kind, path, **(self.options if kind == "cutout" else {}))
                done.append(kind)
                self._save()

    def _summary(self, batch: Batch) -> int:
        by_id = {job_id: f for f, job_id in self.state["jobs"].items()}
        bad = [(by_id.get(j.id, j.filename), j.status, j.error or "") for j in batch.jobs
               if j.status != "succeeded"]
        bad += [(name, "rejected", reason) for name, reason in self.state.get("rejected", {}).items()]
        ok = len(batch.jobs) - sum(1 for _, status, _ in bad if status != "rejected")
        print(f"{ok} succeeded, {len(bad)} failed: results in {self.dest}", file=self.out)
        for name, status, reason in sorted(bad):
            print(f"  {name}: {status}: {reason}".rstrip(), file=self.out)
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
