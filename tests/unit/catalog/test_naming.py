"""Entity names are injective by construction, and console links stay on the repository's page."""

from __future__ import annotations

import json
import re
import shutil
import string
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.catalog.naming import SHORTENED_MARKER, console_url, repository_entity_name
from service.model import SourceId
from service.names import is_valid_entity_name

from ...records import AWS

US = SourceId("123456789012", "us-east-1")
# Backstage's own rule for metadata.name, written out here rather than imported.
NAME_RULE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
ECR_GRAMMAR = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")

_RUN = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=24)
_COMPONENT = st.builds(
    lambda first, rest: first + "".join(sep + run for sep, run in rest),
    _RUN,
    st.lists(st.tuples(st.sampled_from("._-"), _RUN), max_size=5),
)
# Every name ECR accepts: components joined by "/", up to 256 characters.
ECR_NAMES = (
    st.lists(_COMPONENT, min_size=1, max_size=6).map("/".join).filter(lambda name: len(name) <= 256)
)


def _is_shortened(name: str) -> bool:
    return SHORTENED_MARKER in name


@settings(max_examples=500)
@given(ECR_NAMES, ECR_NAMES)
def test_plain_and_shortened_names_are_disjoint(first: str, second: str) -> None:
    for repository_name in (first, second):
        assert ECR_GRAMMAR.fullmatch(repository_name)
        name = repository_entity_name(US, repository_name)
        assert len(name) <= 63 and NAME_RULE.match(name) and is_valid_entity_name(name)
        plain = repository_name.replace("/", "--") + ".us-east-1.123456789012"
        if len(plain) <= 63:
            # The plain form, which never holds the marker: so it is no shortened name.
            assert name == plain and not _is_shortened(name)
        else:
            assert _is_shortened(name) and name.endswith(".us-east-1.123456789012")
    if first != second:
        # Plain names are equal only for equal names ("/" -> "--" is reversible), a plain one
        # never equals a shortened one, and shortened ones differ in 64 bits of SHA-256.
        assert repository_entity_name(US, first) != repository_entity_name(US, second)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_any_other_name_is_shortened_with_the_marker_and_is_valid(repository_name: str) -> None:
    name = repository_entity_name(US, repository_name)
    assert NAME_RULE.match(name) and len(name) <= 63
    assert _is_shortened(name) != bool(
        ECR_GRAMMAR.fullmatch(repository_name) and len(repository_name) <= 63 - 23
    )


def test_the_issue_23_pair_gets_two_names() -> None:
    victim = "payments-service-production-images-long-name"
    # What the victim was served as before: a plain name of exactly that form took it over.
    attacker = "payments-service-production-ima-7c3d37f8"
    victim_name = repository_entity_name(US, victim)
    attacker_name = repository_entity_name(US, attacker)
    assert attacker_name == attacker + ".us-east-1.123456789012"
    assert victim_name == "payments-service-produ_-7c3d37f893fe7f77.us-east-1.123456789012"
    assert victim_name.lower() != attacker_name.lower()


def test_a_name_without_a_readable_head_still_carries_the_marker() -> None:
    # Before, "--" became "<8 hex>.<region>.<account>", which a plain hex name also gives.
    name = repository_entity_name(US, "--")
    digest = name.split(SHORTENED_MARKER)[1].split(".")[0]
    assert name.startswith("ecr" + SHORTENED_MARKER) and len(digest) == 16
    assert repository_entity_name(US, digest) != name
    assert repository_entity_name(US, "ecr") != name


HOSTILE_NAMES = [
    ".",
    "..",
    "../..",
    "a/..",
    "a/../../../../b",
    "./a",
    "a/./b",
    "..%2f..",
    "%2e%2e",
    "%2E%2E/%2e%2e",
    ".%2e/x",
    "a\\..\\..\\b",
    "a/..\\..",
    "a/../?x=1#y",
    "a\t/\n../..",
    "team-a/payments-api",
]
PREFIX = "/ecr/repositories/private/123456789012/"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_console_links_stay_on_the_repositorys_page_for_a_whatwg_parser() -> None:
    urls = [console_url(US, AWS, name) for name in HOSTILE_NAMES]
    links = [url for url in urls if url is not None]
    # Only a name that is itself a dot segment has no page of its own.
    assert [n for n, u in zip(HOSTILE_NAMES, urls, strict=True) if u is None] == [".", ".."]
    script = (
        "const urls = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(urls.map(u => { const p = new URL(u);"
        " return [p.host, p.pathname, p.search]; })))"
    )
    result = subprocess.run(
        ["node", "-e", script, json.dumps(links)], capture_output=True, check=True, timeout=60
    )
    parsed = json.loads(result.stdout)
    for url, (host, pathname, search) in zip(links, parsed, strict=True):
        assert host == "us-east-1.console.aws.amazon.com", url
        assert pathname.startswith(PREFIX) and len(pathname) > len(PREFIX), url
        assert ".." not in pathname.split("/") and search == "?region=us-east-1", url
    # A plain ECR name keeps its slashes: the console's own form.
    assert parsed[-1][1] == PREFIX + "team-a/payments-api"
