"""The development broker's log directory is formatted with a fresh cluster id each
time a stack starts in a new directory; the id is URL-safe base64, so it may start
with "-", which the storage tool must not read as an option."""

from __future__ import annotations

import pytest

from tools import kafka


@pytest.mark.parametrize("cluster_id", ["-7nYdWq3RYe2JcVd0sX1Ag", "MkU3OEVBNTcwNTJENDM2Qg"])
def test_a_new_log_directory_is_formatted_whatever_its_cluster_id(tmp_path, cluster_id):
    log_dir = tmp_path / "kafka"
    config = kafka.prepare(log_dir, 19092, 19093, cluster_id=cluster_id)
    meta = (log_dir / "meta.properties").read_text()
    assert f"cluster.id={cluster_id}" in meta
    assert f"log.dirs={log_dir}" in config.read_text()
