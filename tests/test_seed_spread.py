"""Training-seed spread (ptycho_core.evaluate.seed_spread, scripts/training_seed_spread.py): pooled sd with its
bound, and copies that must be draws of one study whose scores rest on their own trainings."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ptycho_core import layout
from ptycho_core.config import load_study
from ptycho_core.evaluate.seed_spread import (
    DrawError,
    check_distinct_trainings,
    check_draws,
    draw_scores,
    pooled_spread,
    read_study,
)
from ptycho_core.io.records import METRIC_ROWS
from ptycho_core.io.sentinel import write_sentinel

ROOT = Path(__file__).resolve().parents[1]


def test_the_pooled_sd_is_the_within_replicate_spread_whatever_the_replicate_means():
    values = np.array([[0.8, 0.9, 1.0], [0.2, 0.3, 0.4]])  # each replicate sd 0.1, means 0.9 and 0.3
    s = pooled_spread(values)
    assert s.sd == pytest.approx(0.1) and s.df == 4
    assert s.upper95 == pytest.approx(np.sqrt(0.04 / 0.710723), rel=1e-5)  # chi-square 5 % quantile, 4 df


def test_the_upper_bound_covers_the_true_sd_at_its_stated_rate():
    """3 replicates x 3 draws, true sd 0.05: the bound lies above 0.05 in 95 % of studies (2,000, 3 binomial sd)."""
    rng = np.random.default_rng(7)
    n = 2000
    covered = sum(pooled_spread(rng.normal(rng.uniform(0, 1, (3, 1)), 0.05, (3, 3))).upper95 >= 0.05 for _ in range(n))
    assert abs(covered / n - 0.95) <= 3 * np.sqrt(0.95 * 0.05 / n)


@pytest.mark.parametrize("shape", [(3, 1), (0, 3), (3,)])
def test_fewer_than_two_draws_or_no_replicate_is_refused(shape):
    with pytest.raises(ValueError, match="draws >= 2"):
        pooled_spread(np.zeros(shape))


def _copy(root: Path, draw: int, **training) -> Path:
    """A finished copy of config/test.yaml's study under training.seed_draw ``draw``: its configuration, and the
    Baseline's bundle, reconstruction and score of every cell, chained by their sentinels."""
    study = load_study(ROOT / "config" / "test.yaml")
    study = replace(study, training=replace(study.training, seed_draw=draw, **training))
    d = root / f"draw{draw}"
    d.mkdir()
    (d / layout.STUDY_CONFIG).parent.mkdir(parents=True)
    (d / layout.STUDY_CONFIG).write_text(json.dumps(study.to_dict()))
    cwd = os.getcwd()
    os.chdir(d)
    try:
        for label in study.dose_labels():
            for seed in study.seeds:
                for view in study.views:
                    cell = layout.Cell(label, seed, view.name)
                    b, r, s = (
                        layout.bundle(cell.with_method("Baseline")),
                        layout.reconstruction(cell.with_method("Baseline")),
                        layout.scores(cell),
                    )
                    for path, text in (
                        (b.model, f"model {draw} {label} {seed}"),
                        (b.sidecar, json.dumps({"refused": []})),
                        (r.recon, f"recon {draw}"),
                    ):
                        Path(path).parent.mkdir(parents=True, exist_ok=True)
                        Path(path).write_text(text)
                    common = {"checks": {}, "config_hash": "x", "wall_time_s": 0.0}
                    write_sentinel(
                        b.sentinel,
                        step="train_per_dose",
                        inputs=[],
                        outputs=[b.model],
                        section_hashes=study.section_hashes("training"),
                        **common,
                    )
                    write_sentinel(
                        r.sentinel, step="reconstruct_network", inputs=[b.model], outputs=[r.recon], **common
                    )
                    Path(s.metrics).parent.mkdir(parents=True, exist_ok=True)
                    value = 0.9 - 0.1 * seed - 0.01 * draw
                    METRIC_ROWS.write(
                        s.metrics, [{"method": "Baseline", "quantity": "phase", "metric": "ms_ssim", "value": value}]
                    )
                    write_sentinel(s.sentinel, step="score", inputs=[r.recon], outputs=[s.metrics], **common)
    finally:
        os.chdir(cwd)
    return d


def test_draw_copies_give_their_scores_and_must_differ_only_in_the_draw(tmp_path):
    d0, d1 = _copy(tmp_path, 0), _copy(tmp_path, 1)
    studies = [read_study(d0), read_study(d1)]
    check_draws(studies, [d0, d1])
    scores = draw_scores(d1, studies[1], {"Baseline"}, "phase", "ms_ssim")
    label = next(iter(studies[0].dose_labels()))
    assert scores.values[(label, "dense", "Baseline")] == {0: pytest.approx(0.89)}
    assert not scores.failed and scores.training_hash == studies[1].section_hashes("training")["training"]
    check_distinct_trainings(
        [draw_scores(d, s, {"Baseline"}, "phase", "ms_ssim") for d, s in zip((d0, d1), studies)], [d0, d1]
    )
    with pytest.raises(DrawError, match="expected distinct draws"):
        check_draws([studies[0], studies[0]], [d0, d0])
    d2 = _copy(tmp_path, 2, epochs=5)
    with pytest.raises(DrawError, match=r"sections \['training'\] differ"):
        check_draws([studies[0], read_study(d2)], [d0, d2])


def test_a_score_that_does_not_rest_on_the_copy_s_own_training_is_refused(tmp_path):
    d1 = _copy(tmp_path, 1)
    study = read_study(d1)
    cell = layout.Cell(next(iter(study.dose_labels())), 0, "dense").with_method("Baseline")
    model = d1 / layout.bundle(cell).model
    model.write_text("retrained, never reconstructed")  # the reconstruction is stale
    with pytest.raises(DrawError, match="is not scored on the network of"):
        draw_scores(d1, study, {"Baseline"}, "phase", "ms_ssim")


def test_a_copy_whose_trainings_were_not_all_rerun_is_refused(tmp_path):
    d0, d1 = _copy(tmp_path, 0), _copy(tmp_path, 1)
    study = read_study(d1)
    label = next(iter(study.dose_labels()))
    # one bundle of the copy still carries draw 0's training (its training was not rerun)
    stale = layout.bundle(layout.Cell(label, 0, "dense").with_method("Baseline")).sentinel
    (d1 / stale).write_text((d0 / stale).read_text())
    with pytest.raises(DrawError, match="not every training of this copy was rerun"):
        draw_scores(d1, study, {"Baseline"}, "phase", "ms_ssim")
    # a copy never rerun at all repeats the training hash of the study it was copied from
    same = [draw_scores(d0, read_study(d0), {"Baseline"}, "phase", "ms_ssim")] * 2
    with pytest.raises(DrawError, match="repeats another's"):
        check_distinct_trainings(same, [d0, d1])


def test_a_refused_training_is_a_failed_run_of_its_draw(tmp_path):
    d1 = _copy(tmp_path, 1)
    study = read_study(d1)
    label = next(iter(study.dose_labels()))
    # the network is saved, scored as produced and its bundle names the failed check
    sidecar = d1 / layout.bundle(layout.Cell(label, 0, "dense").with_method("Baseline")).sidecar
    sidecar.write_text(json.dumps({"refused": ["train Baseline: check 'loss decreased' failed: initial 1, best 1"]}))
    scores = draw_scores(d1, study, {"Baseline"}, "phase", "ms_ssim")
    # the Baseline trains once per dose: its failed training fails the dose's every view
    assert scores.failed == {(label, "dense", "Baseline"): [0], (label, "sparse", "Baseline"): [0]}
    assert (label, "dense", "Baseline") not in scores.values


def test_a_training_that_left_no_bundle_is_a_failed_run_of_its_draw(tmp_path):
    """Studies from before bundle version 2, where the train step refused a failed network outright."""
    d1 = _copy(tmp_path, 1)
    study = read_study(d1)
    label = next(iter(study.dose_labels()))
    (d1 / layout.bundle(layout.Cell(label, 0, "dense").with_method("Baseline")).sentinel).unlink()
    scores = draw_scores(d1, study, {"Baseline"}, "phase", "ms_ssim")
    # the Baseline trains once per dose: its refused training fails the dose's every view
    assert scores.failed == {(label, "dense", "Baseline"): [0], (label, "sparse", "Baseline"): [0]}
    assert (label, "dense", "Baseline") not in scores.values


def test_the_script_prints_the_pooled_spread_and_exits_2_on_copies_of_another_study(tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("tss", ROOT / "scripts" / "training_seed_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    d0, d1 = _copy(tmp_path, 0), _copy(tmp_path, 1)
    monkeypatch.setattr("sys.argv", ["tss", str(d0), str(d1), "--methods", "Baseline"])
    assert module.main() == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| dense | Baseline |" in line)
    fields = row.split(" | ")
    assert fields[3] == "0.900 0.890" and float(fields[4]) == pytest.approx(0.01 / np.sqrt(2), abs=1e-3)
    assert fields[-1] == "0"  # no failed training
    monkeypatch.setattr("sys.argv", ["tss", str(d0), str(_copy(tmp_path, 2, epochs=5))])
    assert module.main() == 2
    assert "not the study of" in capsys.readouterr().err
