"""The development broker's log directory is formatted with a fresh cluster id each
time a stack starts in a new directory: a copy of the directory the storage tool
formatted once (tools.kafka.formatted_template), with ids of its own. The id is URL-safe
base64, so it may start with "-", which the storage tool must not read as an option."""

from __future__ import annotations

import pytest

from tools import kafka


def meta(log_dir) -> dict[str, str]:
    lines = (log_dir / "meta.properties").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize("cluster_id", ["-7nYdWq3RYe2JcVd0sX1Ag", "MkU3OEVBNTcwNTJENDM2Qg"])
def test_a_new_log_directory_is_formatted_whatever_its_cluster_id(tmp_path, cluster_id):
    log_dir = tmp_path / "kafka"
    config = kafka.prepare(log_dir, 19092, 19093, cluster_id=cluster_id)
    assert meta(log_dir)["cluster.id"] == cluster_id
    assert f"log.dirs={log_dir}" in config.read_text()


def test_each_new_log_directory_gets_ids_of_its_own_and_the_templates_checkpoint(tmp_path):
    first, second = tmp_path / "a" / "kafka", tmp_path / "b" / "kafka"
    kafka.prepare(first, 19092, 19093)
    kafka.prepare(second, 19094, 19095)
    a, b = meta(first), meta(second)
    assert a["cluster.id"] != b["cluster.id"] and a["directory.id"] != b["directory.id"]
    assert (a["version"], a["node.id"]) == ("1", kafka.SETTINGS["node.id"])
    checkpoint = "__cluster_metadata-0/00000000000000000000-0000000000.checkpoint"
    assert (first / checkpoint).read_bytes() == (kafka.formatted_template() / checkpoint).read_bytes()


def test_a_formatted_directory_is_kept_as_it_is(tmp_path):
    log_dir = tmp_path / "kafka"
    kafka.prepare(log_dir, 19092, 19093, cluster_id="MkU3OEVBNTcwNTJENDM2Qg")
    (log_dir / "bookrental.stock.v1-0").mkdir()  # what a run leaves: its topics' logs
    kafka.prepare(log_dir, 19096, 19097)
    assert meta(log_dir)["cluster.id"] == "MkU3OEVBNTcwNTJENDM2Qg" and (log_dir / "bookrental.stock.v1-0").is_dir()


def test_the_storage_tool_takes_a_cluster_id_that_starts_with_a_dash(tmp_path):
    log_dir = tmp_path / "kafka"
    config = tmp_path / "kafka.properties"
    config.write_text(kafka.config_text(log_dir, 19092, 19093))
    kafka.storage_format(log_dir, config, "-7nYdWq3RYe2JcVd0sX1Ag")
    assert meta(log_dir)["cluster.id"] == "-7nYdWq3RYe2JcVd0sX1Ag"
