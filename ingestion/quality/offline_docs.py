"""Make GE's Data Docs render with no network: its CDN links become local files.

Why: GE 1.x's page templates load bootstrap, jQuery, bootstrap-table, Font Awesome and
Vega from public CDNs (and its logo from an S3 bucket, tagged with the data context's id).
Offline, or behind a firewall, the index then shows two links and "Clear Filters" and no
results table, because bootstrap-table's JavaScript never ran. After GE writes the site, the
files those links name are copied from the npm packages that ingestion/quality/assets/
package.json pins (installed by `make install` with `npm ci`; the Docker image collects them
at build time) into `static/vendor/` beside the pages, and every page's link is rewritten to
a relative path, so the site works from any folder, over `file://` or behind the proxy.

The mapping is exact: a CDN URL that GE starts to use after an upgrade is not rewritten and
shows up in `external_references` (the tests fail on it), rather than being guessed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

ASSETS_ENV = "VALUEVERSE_QUALITY_ASSETS"
DEFAULT_ASSETS = Path(__file__).resolve().parent / "assets" / "node_modules"
VENDOR = Path("static") / "vendor"

# The CDN URLs in GE 1.24's templates -> the file in node_modules (versions: package.json).
# Two deliberate differences: popper.js is 1.16.1, not GE's 1.12.9, because bootstrap 4.3.1
# requires ^1.14.7 (npm refuses the pair); the filter-control CSS GE takes from
# bootstrap-table 1.19.0 comes from 1.19.1, the version of the JavaScript it styles.
CDN_FILES: dict[str, str] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js":
        "popper.js/dist/umd/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        "bootstrap/dist/js/bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        "bootstrap/dist/css/bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "@fortawesome/fontawesome-free/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}  # fmt: skip
# Loaded by those files relative to themselves (Font Awesome's CSS: ../webfonts/).
CDN_FOLDERS = ["@fortawesome/fontawesome-free/webfonts"]

# GE's logo: from S3 with the data context's id in the query (a request per page view that
# tells GE who looks), or as a CSS background; GE ships the light logo in static/images.
_S3_IMAGE = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/"
                       r"[A-Za-z0-9_.-]+\.png(\?[^\"')\s]*)?")  # fmt: skip
LOCAL_LOGO = Path("static") / "images" / "logo-long.png"
_TAG_WITH_URL = re.compile(r"<(script|link)\b[^>]*>")
_INTEGRITY = re.compile(r'\s(integrity)="[^"]*"')


class AssetsMissing(Exception):
    """The npm packages are not installed where the report's files are read from."""


def assets_dir(environ: dict[str, str] | None = None) -> Path:
    """node_modules (or a folder collected from it) with the packages: $VALUEVERSE_QUALITY_ASSETS,
    else ingestion/quality/assets/node_modules (where `make install` puts them)."""
    env = os.environ if environ is None else environ
    configured = (env.get(ASSETS_ENV) or "").strip()
    return Path(configured) if configured else DEFAULT_ASSETS


def needed_files() -> list[str]:
    """Every path under node_modules the rewritten pages load (files and folders)."""
    return sorted(set(CDN_FILES.values())) + CDN_FOLDERS


def collect(source: Path, dest: Path) -> None:
    """Copy only what the pages load from `source` (node_modules) to `dest`, same layout: the
    Docker image keeps these few MB instead of the packages' 100 MB."""
    for relative in needed_files():
        origin = source / relative
        if not origin.exists():
            raise AssetsMissing(f"{origin} missing: run `make install` (npm ci)")
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True)
        else:
            shutil.copy2(origin, target)


def make_offline(site: Path, assets: Path | None = None) -> list[str]:
    """Vendor the assets into `site` and point every page at them; returns what still
    points off the machine (external_references), empty when the site is self-contained."""
    collect(assets or assets_dir(), site / VENDOR)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        rewritten = _rewrite(text, page.parent, site)
        if rewritten != text:
            page.write_text(rewritten, encoding="utf-8")
    for sheet in (site / "static" / "styles").glob("*.css"):
        text = sheet.read_text(encoding="utf-8")
        local = _relative(site / LOCAL_LOGO, sheet.parent)
        rewritten = _S3_IMAGE.sub(local, text)
        if rewritten != text:
            sheet.write_text(rewritten, encoding="utf-8")
    return external_references(site)


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def _rewrite(text: str, folder: Path, site: Path) -> str:
    for url, relative in CDN_FILES.items():
        local = _relative(site / VENDOR / relative, folder)
        text = text.replace(f'"{url}"', f'"{local}"')
    text = _S3_IMAGE.sub(_relative(site / LOCAL_LOGO, folder), text)
    return _TAG_WITH_URL.sub(lambda tag: _integrity(tag.group(0), folder), text)


def _integrity(tag: str, folder: Path) -> str:
    """A rewritten tag's Subresource Integrity hash, recomputed for the local file (GE's hash
    is the CDN file's; for popper.js it is another version, and the browser would refuse it)."""
    if "integrity=" not in tag:
        return tag
    src = re.search(r'\s(?:src|href)="([^"]+)"', tag)
    if not src or "://" in src.group(1):
        return tag
    digest = hashlib.sha384((folder / src.group(1)).read_bytes()).digest()
    value = "sha384-" + base64.b64encode(digest).decode()
    return _INTEGRITY.sub(f' integrity="{value}"', tag)


class _Loads(HTMLParser):
    """URLs a browser fetches by itself while showing a page (not links a person follows)."""

    ATTRS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = self.ATTRS.get(tag)
        self.urls += [v for k, v in attrs if v and (k == wanted or k == "srcset")]


def external_references(site: Path) -> list[str]:
    """Lines "page: url" for each script, stylesheet, image or frame a page (or a stylesheet of
    the site's own) would load from another host."""
    found = []
    for page in sorted(site.rglob("*.html")):
        parser = _Loads()
        parser.feed(page.read_text(encoding="utf-8"))
        remote = [u for u in parser.urls if re.match(r"(?i)(https?:)?//", u.strip())]
        found += [f"{page.relative_to(site)}: {url}" for url in remote]
    for sheet in sorted((site / "static").rglob("*.css")):
        for url in re.findall(r"""url\(\s*['"]?((?:https?:)?//[^'")\s]+)""", sheet.read_text()):
            found.append(f"{sheet.relative_to(site)}: {url}")
    return found


if __name__ == "__main__":  # the Docker build: python -m ingestion.quality.offline_docs SRC DEST
    collect(Path(sys.argv[1]), Path(sys.argv[2]))
