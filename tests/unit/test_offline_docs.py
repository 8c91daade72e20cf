"""ingestion/quality/offline_docs.py on small sites written here, and its URL map against the
GE templates that are installed: a GE upgrade that loads a new CDN file fails here first."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path

import pytest

from ingestion.quality.offline_docs import (
    CDN_FILES,
    VENDOR,
    AssetsMissing,
    external_references,
    make_offline,
    needed_files,
)

JQUERY = "https://code.jquery.com/jquery-3.7.1.min.js"
POPPER = "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"
FONTS = "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css"
LOGO = (
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png"
    "?d=20261202T1&amp;dataContextId=61f41d40"
)


def _page(extra: str = "") -> str:
    return f"""<html><head>
<link rel="stylesheet" href="{FONTS}">
<script src="{JQUERY}"></script>
<script src="{POPPER}" integrity="sha384-ApNbgh9B" crossorigin="anonymous"></script>
{extra}</head><body><img src="{LOGO}" alt="GE">
<a href="https://greatexpectations.io">a link a person may follow</a></body></html>"""


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    """A stand-in node_modules with every file and folder the pages need."""
    root = tmp_path / "node_modules"
    for relative in needed_files():
        path = root / relative
        if relative.endswith("webfonts"):
            path.mkdir(parents=True)
            (path / "fa-solid-900.woff2").write_bytes(b"font")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"/* {relative} */")
    return root


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "local_site"
    (site / "validations" / "suite" / "run").mkdir(parents=True)
    (site / "static" / "styles").mkdir(parents=True)
    (site / "index.html").write_text(_page())
    (site / "validations" / "suite" / "run" / "result.html").write_text(_page())
    (site / "static" / "styles" / "default.css").write_text(
        ".logo { background: url('https://great-expectations-web-assets.s3.us-east-2"
        ".amazonaws.com/full_logo_dark.png') 0 0 no-repeat; }"
    )
    return site


def test_pages_point_at_copied_files_at_every_depth(site: Path, assets: Path) -> None:
    assert make_offline(site, assets) == []
    index = (site / "index.html").read_text()
    nested = (site / "validations" / "suite" / "run" / "result.html").read_text()
    assert 'src="static/vendor/jquery/dist/jquery.min.js"' in index
    assert 'src="../../../static/vendor/jquery/dist/jquery.min.js"' in nested
    assert 'href="static/vendor/@fortawesome/fontawesome-free/css/all.min.css"' in index
    assert 'src="static/images/logo-long.png"' in index and "dataContextId" not in index
    assert 'href="https://greatexpectations.io"' in index  # links people follow stay
    assert "url('../images/logo-long.png')" in (site / "static/styles/default.css").read_text()
    for relative in needed_files():
        assert (site / VENDOR / relative).exists(), relative
    assert (site / VENDOR / "@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").exists()


def test_integrity_is_the_local_files(site: Path, assets: Path) -> None:
    make_offline(site, assets)
    popper = (assets / CDN_FILES[POPPER]).read_bytes()
    expected = "sha384-" + base64.b64encode(hashlib.sha384(popper).digest()).decode()
    assert f'integrity="{expected}"' in (site / "index.html").read_text()
    assert "sha384-ApNbgh9B" not in (site / "index.html").read_text()


def test_running_twice_changes_nothing(site: Path, assets: Path) -> None:
    make_offline(site, assets)
    first = (site / "index.html").read_text()
    make_offline(site, assets)
    assert (site / "index.html").read_text() == first


def test_an_unknown_cdn_file_is_reported_not_guessed(site: Path, assets: Path) -> None:
    extra = (
        '<script src="https://cdn.example/new-lib@2"></script><img srcset="//cdn.example/x.png">'
    )
    (site / "index.html").write_text(_page(extra))
    assert make_offline(site, assets) == [
        "index.html: https://cdn.example/new-lib@2",
        "index.html: //cdn.example/x.png",
    ]


def test_missing_packages_are_named(site: Path, tmp_path: Path) -> None:
    with pytest.raises(AssetsMissing, match="make install"):
        make_offline(site, tmp_path / "nowhere")
    assert JQUERY in (site / "index.html").read_text()  # left as GE wrote it
    assert external_references(site)


def test_every_cdn_file_in_the_installed_ge_templates_is_mapped() -> None:
    spec = importlib.util.find_spec("great_expectations")  # found, not imported (seconds)
    assert spec and spec.submodule_search_locations
    package = Path(list(spec.submodule_search_locations)[0])
    templates = package / "render" / "view" / "templates"
    loaded = set()
    for template in templates.glob("*.j2"):
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", template.read_text()):
            loaded.update(re.findall(r'(?:src|href)="(https?://[^"]+)"', tag))
    assert loaded, "GE's templates moved: look for their CDN links again"
    assert loaded <= set(CDN_FILES), sorted(loaded - set(CDN_FILES))
