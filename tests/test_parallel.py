"""i2s.parallel.pmap: same results, in input order, on local processes and on a dask.distributed cluster."""
import numpy as np
import pytest

from i2s import mrcca
from i2s.parallel import pmap
from test_mrcca import protocol_toy


def _weighted(item, table, scale=1.0):
    return float(table[item].sum() * scale), item


def test_local_backends_agree_and_keep_order():
    table = np.arange(40.0).reshape(10, 4)
    items = [7, 2, 9, 0, 5]
    want = [(float(table[i].sum() * 3), i) for i in items]
    for backend in ({"backend": "local", "n_jobs": 1}, {"backend": "local", "n_jobs": 2}):
        assert pmap(_weighted, items, backend, shared={"table": table, "scale": 3.0}) == want


def test_unknown_backend_and_missing_scheduler_fail_loudly():
    with pytest.raises(ValueError, match="backend"):
        pmap(_weighted, [0], {"backend": "slurm"}, shared={"table": np.ones((1, 1))})
    with pytest.raises(ValueError, match="scheduler"):
        pmap(_weighted, [0], {"backend": "dask"}, shared={"table": np.ones((1, 1))})


def test_mrcca_sweep_on_a_dask_cluster_equals_the_local_run():
    distributed = pytest.importorskip("distributed")
    data = protocol_toy(n_seg=160, seed=3)
    grid = [{"K": 2, "d": [3, 5], "seed": s, "val_fraction": 0.2} for s in (0, 1)] + \
           [{"K": 3, "d": [4], "seed": 0, "references": "global"}]
    local = mrcca.sweep(grid, {"backend": "local", "n_jobs": 2}, **data)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        remote = mrcca.sweep(grid, {"backend": "dask", "scheduler": cluster.scheduler_address}, **data)
    assert list(remote[["K", "d", "seed"]].itertuples(index=False)) == list(local[["K", "d", "seed"]].itertuples(index=False))
    scores = [c for c in local.columns if "cca" in c]
    np.testing.assert_array_equal(remote[scores].to_numpy(), local[scores].to_numpy())
