"""Persistence: save/load, atomic saves, pickling, and resumable training checkpoints."""
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from deepfm_graph import DeepFM, gini_norm, persistence

pytestmark = pytest.mark.slow  # fits, saves and resumes models, some in subprocesses

ROOT = Path(__file__).resolve().parents[1]


def test_save_load_round_trip_keeps_predictions_params_and_attributes(raw_model, tmp_path):
    m, fd = raw_model.model, raw_model.fd
    m.save(tmp_path / "model", feature_dictionary=fd)
    loaded = DeepFM.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict(raw_model.Xi, raw_model.Xv), m.predict(raw_model.Xi, raw_model.Xv))
    assert loaded.get_params() == m.get_params()
    for name in ("feature_size_", "field_size_", "n_epochs_", "best_epoch_", "train_result_", "epoch_seconds_"):
        assert getattr(loaded, name) == getattr(m, name), name
    assert loaded.feature_dictionary_.to_dict() == fd.to_dict()
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["format_version"] == persistence.FORMAT_VERSION and "tensorflow" in meta["versions"]
    assert meta["feature_dictionary"]["fingerprint"] == persistence.fingerprint(fd)


def test_builtin_callable_is_saved_by_name_and_custom_one_is_refused(raw_model, tmp_path):
    def fitted_with(metric):
        model = clone(raw_model.model).set_params(eval_metric=metric, epoch=1)
        return model.fit(raw_model.Xi, raw_model.Xv, raw_model.y)

    fitted_with(gini_norm).save(tmp_path / "named")
    assert json.loads((tmp_path / "named" / "model.json").read_text())["params"]["eval_metric"] == "gini_norm"
    with pytest.raises(ValueError, match="cannot save eval_metric"):
        fitted_with(lambda y, p: 0.0).save(tmp_path / "custom")
    assert not (tmp_path / "custom").exists()


def test_failed_save_leaves_the_previous_save_intact(raw_model, tmp_path, monkeypatch):
    m = raw_model.model
    m.save(tmp_path / "model")
    before = sorted(p.name for p in tmp_path.iterdir())
    other = DeepFM(**(m.get_params() | {"random_seed": 99})).fit(raw_model.Xi, raw_model.Xv, raw_model.y)

    def crash(path, obj):  # the weights are already written when the JSON files are
        raise OSError("disk full")

    monkeypatch.setattr(persistence, "_write_json", crash)
    with pytest.raises(OSError, match="disk full"):
        other.save(tmp_path / "model")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary directory left
    np.testing.assert_array_equal(DeepFM.load(tmp_path / "model").predict(raw_model.Xi, raw_model.Xv),
                                  m.predict(raw_model.Xi, raw_model.Xv))
    other.save(tmp_path / "model")  # a successful save replaces it
    assert json.loads((tmp_path / "model" / "model.json").read_text())["params"]["random_seed"] == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_pickle_carries_weights_not_the_session(raw_model):
    data = pickle.dumps(raw_model.model)
    twin = pickle.loads(data)
    assert twin.session_ is not raw_model.model.session_
    np.testing.assert_array_equal(twin.predict(raw_model.Xi, raw_model.Xv),
                                  raw_model.model.predict(raw_model.Xi, raw_model.Xv))
    state = raw_model.model.__getstate__()
    assert "session_" not in state and "_graph" not in state
    assert isinstance(state["_weights"]["feature_embeddings"], np.ndarray)


def test_unfitted_estimator_pickles_as_its_params_and_clone_still_works(raw_model):
    unfitted = DeepFM(epoch=3, deep_layers=(4,), dropout_deep=(1.0, 1.0))
    assert unfitted.__getstate__() == unfitted.get_params()
    assert pickle.loads(pickle.dumps(unfitted)).get_params() == unfitted.get_params()
    twin = clone(raw_model.model)
    assert not hasattr(twin, "session_") and twin.get_params() == raw_model.model.get_params()


# ---------------------------------------------------------------- training checkpoints
RESUME_PARAMS = {"embedding_size": 4, "deep_layers": (8, 8), "epoch": 5, "batch_size": 64, "batch_norm": 1,
                 "learning_rate": 0.01, "random_seed": 11, "patience": 2}


def split(planted):
    Xi, Xv, y, feature_size = planted
    return feature_size, (Xi[:1500], Xv[:1500], y[:1500], Xi[1500:2000], Xv[1500:2000], y[1500:2000])


def test_resume_after_sigkill_mid_epoch_matches_an_uninterrupted_run(planted, tmp_path):
    feature_size, data = split(planted)
    params = RESUME_PARAMS | {"feature_size": feature_size}
    np.savez(tmp_path / "data.npz", *data)
    marker, checkpoints = tmp_path / "epoch-1-trained", tmp_path / "checkpoints"
    script = textwrap.dedent(f"""
        import time, numpy as np
        from deepfm_graph import DeepFM
        train_epoch = DeepFM._train_epoch

        def slow_train_epoch(self, X, y, epoch):
            train_epoch(self, X, y, epoch)
            if epoch == 1:  # epoch 1 trained but neither scored nor checkpointed: wait for the kill
                open(r"{marker}", "w").close()
                time.sleep(600)

        DeepFM._train_epoch = slow_train_epoch
        d = np.load(r"{tmp_path / 'data.npz'}")
        DeepFM(**{params!r}).fit(*(d[f"arr_{{i}}"] for i in range(6)), early_stopping=True,
                                 checkpoint_dir=r"{checkpoints}")
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert json.loads((checkpoints / "last" / "training.json").read_text())["completed_epochs"] == 1

    resumed = DeepFM(**params).fit(*data, early_stopping=True, checkpoint_dir=checkpoints, resume=True)
    full = DeepFM(**params).fit(*data, early_stopping=True)
    assert resumed.valid_result_ == full.valid_result_ and resumed.best_epoch_ == full.best_epoch_
    assert resumed.n_epochs_ == full.n_epochs_
    np.testing.assert_array_equal(resumed.predict(*data[3:5]), full.predict(*data[3:5]))
    best = DeepFM.load(checkpoints / "best")
    assert best.n_epochs_ == full.best_epoch_ + 1
    assert best.evaluate(*data[3:]) == pytest.approx(full.valid_result_[full.best_epoch_], abs=1e-12)


def test_resume_from_a_finished_shorter_run_continues_to_the_same_model(planted, tmp_path):
    feature_size, data = split(planted)
    params = RESUME_PARAMS | {"feature_size": feature_size, "patience": None, "batch_norm": 0}
    DeepFM(**(params | {"epoch": 2})).fit(*data, checkpoint_dir=tmp_path)
    resumed = DeepFM(**params).fit(*data, checkpoint_dir=tmp_path, resume=True)
    full = DeepFM(**params).fit(*data)
    assert resumed.train_result_ == full.train_result_ and len(resumed.epoch_seconds_) == params["epoch"]
    np.testing.assert_array_equal(resumed.get_weights()["feature_embeddings"],
                                  full.get_weights()["feature_embeddings"])
    assert json.loads((tmp_path / "last" / "training.json").read_text())["completed_epochs"] == params["epoch"]


def test_set_params_after_fit_does_not_change_what_is_saved_pickled_or_exported(planted, tmp_path):
    import tensorflow as tf2

    Xi, Xv, y, feature_size = planted
    model = DeepFM(feature_size=feature_size, embedding_size=4, deep_layers=(8, 8), epoch=1, batch_size=256,
                   eval_train=False, random_seed=1).fit(Xi[:1000], Xv[:1000], y[:1000])
    expected = model.predict(Xi[:200], Xv[:200])
    model.set_params(deep_layers=(5,), dropout_deep=(0.5, 0.5))  # not refitted: the model stays as fitted
    model.save(tmp_path / "model")
    np.testing.assert_array_equal(DeepFM.load(tmp_path / "model").predict(Xi[:200], Xv[:200]), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(Xi[:200], Xv[:200]), expected)
    served = tf2.saved_model.load(str(model.export_saved_model(tmp_path / "export")))
    out = served.signatures["serving_default"](feat_index=tf2.constant(Xi[:200]), feat_value=tf2.constant(Xv[:200]))
    np.testing.assert_allclose(out["predictions"].numpy(), expected, rtol=1e-6)


def test_resume_from_corrupted_checkpoints_names_the_path_not_tensorflow(planted, tmp_path):
    Xi, Xv, y, feature_size = planted
    data = (Xi[:600], Xv[:600], y[:600], Xi[600:900], Xv[600:900], y[600:900])

    def fit(resume):
        return DeepFM(feature_size=feature_size, embedding_size=4, deep_layers=(8,), dropout_deep=(1.0, 1.0),
                      epoch=2, batch_size=256, eval_train=False, random_seed=1).fit(
            *data, early_stopping=True, checkpoint_dir=tmp_path / "ckpt", resume=resume)

    fit(resume=False)
    for path in (tmp_path / "ckpt" / "best").glob("weights.data*"):
        path.write_bytes(b"truncated")
    with pytest.raises(ValueError, match="cannot read the weights of the save at .*best"):
        fit(resume=True)
    (tmp_path / "ckpt" / "last" / persistence.TRAINING_FILE).write_text('{"stopped": false}')
    with pytest.raises(ValueError, match="training state is corrupted"):
        fit(resume=True)
