"""Mappings and index names of the Elasticsearch backend, checked against the documented DSL shapes.

References: dense_vector (https://www.elastic.co/guide/en/elasticsearch/reference/current/dense-vector.html),
nested (…/nested.html), index templates (…/index-templates.html).
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from core.documents import EmbeddingSpace
from index.elastic_mappings import (
    META_SPACE_KEY,
    docs_alias,
    docs_index_name,
    docs_template,
    index_generation,
    mapping_for,
    space_from_meta,
    vector_field,
)

SPACE = EmbeddingSpace(model="sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", dim=384)
BUILTIN_TOKEN_FILTERS = {"lowercase", "asciifolding"}


def _analyzers_used(props: dict, out: set[str]) -> set[str]:
    for spec in props.values():
        if "analyzer" in spec:
            out.add(spec["analyzer"])
        for sub in spec.get("fields", {}).values():
            if "analyzer" in sub:
                out.add(sub["analyzer"])
        if "properties" in spec:
            _analyzers_used(spec["properties"], out)
    return out


def test_every_mapping_file_is_valid_json() -> None:
    folder = resources.files("index").joinpath("mappings")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    assert names == ["analysis.json", "documents.json"]
    for name in names:
        json.loads(folder.joinpath(name).read_text(encoding="utf-8"))


def test_documents_mapping_has_space_vector_field() -> None:
    body = mapping_for(SPACE)
    mappings = body["mappings"]
    assert mappings["dynamic"] == "false"
    passages = mappings["properties"]["passages"]
    assert passages["type"] == "nested"
    assert passages["dynamic"] == "strict"  # a vector of another space is rejected, not silently kept
    vec = passages["properties"][vector_field(SPACE)]
    assert vector_field(SPACE) == f"vec_{SPACE.slug}"
    assert vec == {
        "type": "dense_vector",
        "element_type": "float",
        "dims": 384,
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": "int8_hnsw", "m": 16, "ef_construction": 100},
    }
    # No comments leak into the request body.
    assert "_comment" not in json.dumps(body)
    for field in ("id", "source_id", "kind", "language", "content_hash"):
        assert mappings["properties"][field]["type"] == "keyword"
    assert mappings["properties"]["published"]["type"] == "date_nanos"


def test_space_is_stored_in_meta_and_read_back_from_get_mapping_response() -> None:
    body = mapping_for(SPACE)
    assert body["mappings"]["_meta"][META_SPACE_KEY] == SPACE.to_dict()
    name = docs_index_name("narrawatch", SPACE, 1)
    # Shape of GET /<index>/_mapping: {"<index>": {"mappings": {...}}}
    response = {name: {"mappings": body["mappings"]}}
    assert space_from_meta(response, name) == SPACE
    other = EmbeddingSpace(model=SPACE.model, dim=384, precision="int8")
    assert space_from_meta(response, name) != other
    assert space_from_meta({name: {"mappings": {}}}, name) is None


def test_every_analyzer_used_is_defined() -> None:
    for body in (mapping_for(SPACE),):
        analysis = body["settings"]["index"]["analysis"]
        used = _analyzers_used(body["mappings"]["properties"], set())
        assert used <= set(analysis["analyzer"]), used - set(analysis["analyzer"])
        for analyzer in analysis["analyzer"].values():
            for f in analyzer["filter"]:
                assert f in BUILTIN_TOKEN_FILTERS or f in analysis["filter"]
            for cf in analyzer.get("char_filter", []):
                assert cf in analysis["char_filter"]
    stemmed = mapping_for(SPACE)["settings"]["index"]["analysis"]["analyzer"]["nw_stemmed"]["filter"]
    assert {"nw_ru_stem", "nw_en_stem"} <= set(stemmed)


def test_names_and_template() -> None:
    name = docs_index_name("narrawatch", SPACE, 3)
    assert name == f"narrawatch-docs-{SPACE.slug}-3"
    assert name == name.lower() and len(name.encode()) < 255
    assert index_generation(name) == 3
    assert docs_alias("narrawatch") == "narrawatch-docs"
    template = docs_template("narrawatch")
    assert template["index_patterns"] == ["narrawatch-docs-*"]
    assert "analysis" in template["template"]["settings"]["index"]
    assert vector_field(SPACE) not in template["template"]["mappings"]["properties"]["passages"]["properties"]
    with pytest.raises(ValueError):
        docs_index_name("narrawatch", SPACE, 0)


def test_dims_out_of_range_rejected() -> None:
    with pytest.raises(ValueError):
        mapping_for(EmbeddingSpace(model="huge", dim=5000))


def test_spaces_differing_only_in_precision_get_different_fields_and_indexes() -> None:
    int8 = EmbeddingSpace(model=SPACE.model, dim=384, precision="int8-per-channel")
    assert vector_field(int8) != vector_field(SPACE)
    assert docs_index_name("nw", int8, 1) != docs_index_name("nw", SPACE, 1)
